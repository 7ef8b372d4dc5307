package main

// --load-id: a load made exactly-once and resumable by the library's ledger
// (batch.Ledger; docs/transactions.md). Every transaction of the load
// records, in the same transaction as its rows, the rows [a, b) of the
// input it committed, in --ledger-table; a later run with the same id
// passes over them (they count as written, and "resumed").
//
// The library recalls the rejects of the committed ranges (the server's
// refusals) from the ledger into the Result, but not to batch.OnReject,
// which this tool uses to write the rejects file as it goes. So the tool
// reads the ledger itself too, once, before the load: the ranges committed
// and their rejects, in the ledger table's documented layout (first_row,
// end_row, rejects as a JSON array of [row, errno, sqlstate, message]).
// A rerun then rewrites the rejects file for the whole input: the records
// refused here (which are in no ledger range: the tool meets them again
// and refuses them again), the server's refusals in this run, and those
// recalled from the ledger, each with its original error, each once, in
// input order.
//
// Checks that a rerun reads the input the earlier runs read (a mismatch
// exits 1; nothing extra is stored, so what they cannot see is not seen):
//   - the library's: the same TABLE (written the same way) and the same
//     columns, in the same order (batch.ErrLedgerMismatch);
//   - a record refused here in a range an earlier run committed: that run
//     had it written or refused by the server, so it was another record;
//   - an input with fewer records than the ranges committed (seen at its
//     end: the rows before were sent by then);
//   - the Result's Resumed against the ledger as the tool read it.
//
// Not seen: another input of the same columns with at least as many
// records (its committed ranges are passed over, whatever they now hold;
// its other records are written), another --mode, --null or format of the
// same columns. Two runs of the same id at once are refused instead: each
// holds a named lock (GET_LOCK) on a connection of its own for its whole
// load (on the server it connects to; Galera does not share such locks).

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
)

// defaultLedgerTable is the ledger table without --ledger-table.
const defaultLedgerTable = "batchload_ledger"

// maxLoadID is the longest --load-id, the library's limit (the ledger's
// key is a VARCHAR(191)).
const maxLoadID = 191

// ledgerView is what a load's ledger held when it started.
type ledgerView struct {
	table, loadID string
	spans         []batch.Range     // the ranges committed, sorted
	rejects       []batch.Rejection // the server's refusals in them, sorted by row
	next          int               // reading: the first span not ending at or before the row read
	lock          *sql.Conn         // holds the load's named lock
	lockName      string
}

// openLedger takes the load's named lock and reads what earlier runs of
// the load committed. A ledger table that does not exist yet holds
// nothing (the library creates it).
func openLedger(ctx context.Context, db *sql.DB, table, loadID string) (*ledgerView, error) {
	v := &ledgerView{table: table, loadID: loadID}
	if err := v.takeLock(ctx, db); err != nil {
		return nil, err
	}
	if err := v.read(ctx, db); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

// takeLock takes the named lock of the load id in the ledger table, at
// once or not at all, on a connection kept for the whole load.
func (v *ledgerView) takeLock(ctx context.Context, db *sql.DB) error {
	sum := sha256.Sum256([]byte(v.table + "\x00" + v.loadID))
	v.lockName = "batchload:" + hex.EncodeToString(sum[:16]) // 42 bytes: MySQL takes up to 64
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", v.lockName).Scan(&got); err != nil {
		conn.Close()
		return fmt.Errorf("--load-id %s: taking its lock: %w", v.loadID, err)
	}
	if got.Int64 != 1 {
		var holder sql.NullInt64
		_ = conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", v.lockName).Scan(&holder)
		conn.Close()
		who := ""
		if holder.Valid {
			who = fmt.Sprintf(" (server connection %d)", holder.Int64)
		}
		return fmt.Errorf("--load-id %s: another load of the same id is running%s; wait for it, or stop it and run this one again", v.loadID, who)
	}
	v.lock = conn
	return nil
}

// close releases the lock and its connection.
func (v *ledgerView) close() {
	if v == nil || v.lock == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = v.lock.ExecContext(ctx, "DO RELEASE_LOCK(?)", v.lockName)
	v.lock.Close()
	v.lock = nil
}

// read reads the load's ledger rows.
func (v *ledgerView) read(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "SELECT first_row, end_row, COALESCE(rejects, '') FROM "+quoteTable(v.table)+
		" WHERE load_id = ? ORDER BY first_row", v.loadID)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1146 { // no such table: no earlier run
		return nil
	}
	if err != nil {
		return fmt.Errorf("--load-id %s: reading the ledger %s: %w", v.loadID, v.table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r batch.Range
		var rejects string
		if err := rows.Scan(&r.First, &r.End, &rejects); err != nil {
			return fmt.Errorf("--load-id %s: reading the ledger %s: %w", v.loadID, v.table, err)
		}
		rj, err := decodeRejects(rejects)
		if err != nil {
			return fmt.Errorf("--load-id %s: reading the ledger %s: row [%d, %d): %w", v.loadID, v.table, r.First, r.End, err)
		}
		v.spans = append(v.spans, r)
		v.rejects = append(v.rejects, rj...)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("--load-id %s: reading the ledger %s: %w", v.loadID, v.table, err)
	}
	sortRejections(v.rejects)
	return nil
}

// decodeRejects reads the ledger's rejects column: a JSON array of [row,
// errno, sqlstate, message], the server's errors (docs/transactions.md).
func decodeRejects(s string) ([]batch.Rejection, error) {
	if s == "" {
		return nil, nil
	}
	var raw [][]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("its rejects: %w", err)
	}
	out := make([]batch.Rejection, 0, len(raw))
	for _, r := range raw {
		var row int
		var state string
		me := &mysql.MySQLError{}
		if len(r) != 4 || json.Unmarshal(r[0], &row) != nil || json.Unmarshal(r[1], &me.Number) != nil ||
			json.Unmarshal(r[2], &state) != nil || json.Unmarshal(r[3], &me.Message) != nil {
			return nil, errors.New("its rejects: a malformed entry")
		}
		copy(me.SQLState[:], state)
		out = append(out, batch.Rejection{Row: row, Err: me})
	}
	return out, nil
}

// sortRejections sorts rejections by row.
func sortRejections(rs []batch.Rejection) {
	for i := 1; i < len(rs); i++ { // nearly sorted already: the spans are
		for j := i; j > 0 && rs[j].Row < rs[j-1].Row; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// quoteTable quotes "name" or "schema.name" as the library does.
func quoteTable(table string) string {
	q := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
	if schema, name, ok := strings.Cut(table, "."); ok {
		return q(schema) + "." + q(name)
	}
	return q(table)
}

// end is the end of the last range committed (0: none).
func (v *ledgerView) end() int {
	if v == nil || len(v.spans) == 0 {
		return 0
	}
	return v.spans[len(v.spans)-1].End
}

// resumed is how many rows below n the earlier runs wrote: the ranges
// committed, but the rows the server refused in them.
func (v *ledgerView) resumed(n int) int64 {
	if v == nil {
		return 0
	}
	var rows int64
	for _, r := range clipRanges(v.spans, n) {
		rows += int64(r.Len())
	}
	return rows - int64(v.rejectsBelow(n))
}

// rejectsBelow counts the recalled rejects of rows below n.
func (v *ledgerView) rejectsBelow(n int) int {
	if v == nil {
		return 0
	}
	k := 0
	for k < len(v.rejects) && v.rejects[k].Row < n {
		k++
	}
	return k
}

// committed reports whether row, read in input order, is in a range an
// earlier run committed.
func (v *ledgerView) committed(row int) bool {
	if v == nil {
		return false
	}
	for v.next < len(v.spans) && v.spans[v.next].End <= row {
		v.next++
	}
	return v.next < len(v.spans) && v.spans[v.next].First <= row
}

// mismatch is the error of a rerun that reads another input.
func (v *ledgerView) mismatch(format string, args ...any) error {
	return fmt.Errorf("--load-id %s: %s: %w%s", v.loadID, fmt.Sprintf(format, args...), batch.ErrLedgerMismatch, v.hint())
}

// hint says what to do about a mismatch.
func (v *ledgerView) hint() string {
	return fmt.Sprintf(" (give another --load-id, or forget the earlier runs of this one: DELETE FROM %s WHERE load_id = '%s')",
		quoteTable(v.table), strings.NewReplacer(`\`, `\\`, "'", "''").Replace(v.loadID))
}

// explain adds the load id and the hint to the library's
// batch.ErrLedgerMismatch.
func (v *ledgerView) explain(err error) error {
	if v == nil || err == nil || !errors.Is(err, batch.ErrLedgerMismatch) {
		return err
	}
	return fmt.Errorf("--load-id %s: %w%s", v.loadID, err, v.hint())
}

// checkLoadID checks a --load-id: 1 to maxLoadID printable ASCII
// characters without spaces, so that it can be shown, logged and typed
// again.
func checkLoadID(id string) error {
	if id == "" || len(id) > maxLoadID || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return usagef("--load-id %q: want 1 to %d printable ASCII characters without spaces", id, maxLoadID)
	}
	return nil
}
