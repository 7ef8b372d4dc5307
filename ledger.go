package batch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// This file is the ledger (the Ledger option): a table in which every
// transaction of a load records, atomically with its rows, which input rows
// it committed. It is read once when a load starts (a resume skips what is
// recorded) and after a COMMIT whose reply was lost (the record settles the
// group). docs/transactions.md describes it for users.

// maxLoadID is the longest load id: the ledger's key is (load_id,
// first_row), and InnoDB keys stay within 767 bytes with 191 utf8mb4
// characters.
const maxLoadID = 191

// ledgerSpec is the Ledger option: where the ledger is and the load's id.
type ledgerSpec struct {
	table, loadID string
}

// ledgerDDL creates the ledger table. One row per committed transaction:
// the input rows [first_row, end_row) of load load_id are settled, written
// of them written, the others rejected (rejects: a JSON array of [row,
// errno, sqlstate, message]). target and input_rows describe the load's
// input, to refuse a resume with another one.
const ledgerDDL = ` (
  load_id      VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  first_row    BIGINT NOT NULL,
  end_row      BIGINT NOT NULL,
  written      BIGINT NOT NULL,
  target       TEXT NOT NULL,
  input_rows   BIGINT NOT NULL,
  rejects      LONGTEXT NULL,
  committed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (load_id, first_row)
) ENGINE=InnoDB`

// ledger is a load's ledger once opened: its statements and what the load
// writes into each of its rows.
type ledger struct {
	spec   ledgerSpec
	name   string // the ledger table, quoted
	target string // the table and columns, as `t`(`a`,`b`)
	input  int    // input rows, or -1 when unknown (a Writer)
	insert string
	lookup string
}

func newLedger(spec ledgerSpec, st *statement, input int) *ledger {
	var b strings.Builder
	quoteTable(&b, spec.table)
	name := b.String()
	b.Reset()
	quoteTable(&b, st.table)
	b.WriteByte('(')
	for i, c := range st.columns {
		if i > 0 {
			b.WriteByte(',')
		}
		quoteIdent(&b, c)
	}
	b.WriteByte(')')
	return &ledger{spec: spec, name: name, target: b.String(), input: input,
		insert: "INSERT INTO " + name + " (load_id, first_row, end_row, written, target, input_rows, rejects) VALUES (?, ?, ?, ?, ?, ?, ?)",
		lookup: "SELECT COUNT(*) FROM " + name + " WHERE load_id = ? AND first_row = ? AND end_row = ?"}
}

// entry is one ledger row as read back.
type entry struct {
	span    Range
	written int64
	rejects []Rejection
}

// prepare creates the ledger table if missing, checks that it and the
// target are transactional, and reads what earlier runs of the load
// committed, sorted by row.
func (l *ledger) prepare(ctx context.Context, q DB, info tableInfo) ([]entry, error) {
	if _, err := q.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+l.name+ledgerDDL); err != nil {
		return nil, fmt.Errorf("batch: creating the ledger table: %w", err)
	}
	linfo, err := readTableInfo(ctx, q, l.spec.table, nil)
	if err != nil {
		return nil, err
	}
	if !linfo.transactional() {
		return nil, detail(ErrNotTransactional, "ledger table %q, engine %q", l.spec.table, linfo.engine)
	}
	if !info.transactional() {
		return nil, detail(ErrNotTransactional, "table, engine %q (Ledger)", info.engine)
	}
	return l.read(ctx, q)
}

// read returns the load's ledger rows, refusing those of another input.
func (l *ledger) read(ctx context.Context, q DB) ([]entry, error) {
	rows, err := q.QueryContext(ctx, "SELECT first_row, end_row, written, target, input_rows, COALESCE(rejects, '') FROM "+
		l.name+" WHERE load_id = ? ORDER BY first_row", l.spec.loadID)
	if err != nil {
		return nil, fmt.Errorf("batch: reading the ledger: %w", err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var en entry
		var target, rejects string
		var input int
		if err := rows.Scan(&en.span.First, &en.span.End, &en.written, &target, &input, &rejects); err != nil {
			return nil, fmt.Errorf("batch: reading the ledger: %w", err)
		}
		if err := l.matches(target, input, en.span); err != nil {
			return nil, err
		}
		if en.rejects, err = decodeRejects(rejects); err != nil {
			return nil, err
		}
		out = append(out, en)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("batch: reading the ledger: %w", err)
	}
	return out, nil
}

// matches refuses a ledger row written by a load of another input.
func (l *ledger) matches(target string, input int, span Range) error {
	switch {
	case target != l.target:
		return detail(ErrLedgerMismatch, "load %q was for another table or other columns", l.spec.loadID)
	case input >= 0 && l.input >= 0 && input != l.input:
		return detail(ErrLedgerMismatch, "load %q had %d input rows, this one has %d", l.spec.loadID, input, l.input)
	case l.input >= 0 && span.End > l.input:
		return detail(ErrLedgerMismatch, "load %q committed rows up to %d, this input has %d", l.spec.loadID, span.End, l.input)
	}
	return nil
}

// record inserts the ledger row of a group, in the group's transaction.
func (l *ledger) record(ctx context.Context, conn *sql.Conn, span Range, written int64, rejects []Rejection) error {
	var rj any // NULL without rejects
	if len(rejects) > 0 {
		rj = encodeRejects(rejects)
	}
	_, err := conn.ExecContext(ctx, l.insert, l.spec.loadID, span.First, span.End, written, l.target, l.input, rj)
	return err
}

// committed looks up the ledger row of a group on q.
func (l *ledger) committed(ctx context.Context, q DB, span Range) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, l.lookup, l.spec.loadID, span.First, span.End).Scan(&n); err != nil {
		return false, fmt.Errorf("batch: looking up the ledger after a lost COMMIT reply: %w", err)
	}
	return n > 0, nil
}

// encodeRejects writes rejections as a JSON array of [row, errno, sqlstate,
// message].
func encodeRejects(rs []Rejection) string {
	out := make([][]any, len(rs))
	for i, r := range rs {
		var me *mysql.MySQLError
		if errors.As(r.Err, &me) {
			out[i] = []any{r.Row, me.Number, string(me.SQLState[:]), me.Message}
		} else {
			out[i] = []any{r.Row, 0, "", r.Err.Error()}
		}
	}
	b, _ := json.Marshal(out) // ints and strings only
	return string(b)
}

// decodeRejects reads what encodeRejects wrote back into the server's errors.
func decodeRejects(s string) ([]Rejection, error) {
	if s == "" {
		return nil, nil
	}
	var raw [][]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("batch: reading the ledger's rejects: %w", err)
	}
	out := make([]Rejection, 0, len(raw))
	for _, r := range raw {
		var row int
		me := &mysql.MySQLError{}
		var state string
		if len(r) != 4 || json.Unmarshal(r[0], &row) != nil || json.Unmarshal(r[1], &me.Number) != nil ||
			json.Unmarshal(r[2], &state) != nil || json.Unmarshal(r[3], &me.Message) != nil {
			return nil, errors.New("batch: reading the ledger's rejects: malformed entry")
		}
		copy(me.SQLState[:], state)
		out = append(out, Rejection{Row: row, Err: me})
	}
	return out, nil
}

// DeleteLedger removes the rows of load loadID from the ledger table, for
// example once the load finished and nothing will resume it. A later load
// with the same id then starts from the beginning.
func DeleteLedger(ctx context.Context, db DB, table, loadID string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	var b strings.Builder
	quoteTable(&b, table)
	if _, err := db.ExecContext(ctx, "DELETE FROM "+b.String()+" WHERE load_id = ?", loadID); err != nil {
		return fmt.Errorf("batch: deleting the ledger rows: %w", err)
	}
	return nil
}

// openLedger prepares the load's ledger on s (or a fresh session, which it
// returns, if s dies meanwhile), records what earlier runs of the load
// committed, and returns those input ranges (sorted), which the load passes
// over.
func (e *engine) openLedger(ctx context.Context, s *session, a *attempts) (*session, []Range, error) {
	if e.ledger == nil {
		return s, nil, nil
	}
	var entries []entry
	s, err := e.setupRetrying(ctx, s, a, "opening the ledger", func(s *session) error {
		if !e.infoKnown {
			info, err := readTableInfo(ctx, s.h, e.st.table, e.st.columns)
			if err != nil {
				return err
			}
			e.info, e.infoKnown = info, true
		}
		var err error
		entries, err = e.ledger.prepare(ctx, s.h, e.info)
		return err
	})
	if err != nil {
		return s, nil, err
	}
	skip := make([]Range, len(entries))
	for i, en := range entries {
		skip[i] = en.span
		e.tally.resume(en)
	}
	if len(entries) > 0 {
		e.log.Info("batch: resuming a load from its ledger", "load_id", e.ledger.spec.loadID, "ranges", len(entries))
	}
	return s, skip, nil
}
