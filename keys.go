package batch

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// tableInfo is what the package knows of the target table: its storage
// engine and the unique keys whose every column is inserted. It decides two
// things: whether parallel workers must keep per-key order (REPLACE, IGNORE
// and ON DUPLICATE KEY UPDATE let a later row change what an earlier one
// wrote), and whether a chunk with an unknown outcome can be resent or
// checked (retry.go).
type tableInfo struct {
	engine string      // "InnoDB", ... ; empty if unknown
	found  bool        // information_schema lists the table (a view too)
	keys   []uniqueKey // unique keys fully covered by the inserted columns
}

type uniqueKey struct {
	name    string
	cols    []int // positions in the inserted column list
	prefix  []int // SUB_PART of each column (0: whole value)
	notNull bool  // every column is NOT NULL (PRIMARY KEY, or declared so)
}

// readTableInfo reads the engine and unique keys of table from
// information_schema, on the session's connection.
func readTableInfo(ctx context.Context, q DB, table string, cols []string) (tableInfo, error) {
	var info tableInfo
	var schema any // nil: the connection's current database
	name := table
	if s, n, ok := strings.Cut(table, "."); ok {
		schema, name = s, n
	}
	pos := make(map[string]int, len(cols))
	for i, c := range cols {
		pos[strings.ToLower(c)] = i
	}
	// Two queries, each with the schema and table as constants in its WHERE:
	// MariaDB then opens only that table's .frm ("Scanned 0 databases"). A
	// join on t.TABLE_SCHEMA = s.TABLE_SCHEMA scans every database (60-180 ms
	// on an empty server), long enough to be killed or cut again and again.
	var engine sql.NullString
	switch err := q.QueryRowContext(ctx, `SELECT ENGINE FROM information_schema.TABLES
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`, schema, name).Scan(&engine); err {
	case nil:
		info.found = true
	case sql.ErrNoRows:
	default:
		return info, fmt.Errorf("batch: reading the table's keys: %w", err)
	}
	info.engine = engine.String
	rows, err := q.QueryContext(ctx, `SELECT s.INDEX_NAME, s.COLUMN_NAME, COALESCE(s.SUB_PART, 0), c.IS_NULLABLE
FROM information_schema.STATISTICS s
JOIN information_schema.COLUMNS c ON c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0
  AND c.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND c.TABLE_NAME = ?
ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX`, schema, name, schema, name)
	if err != nil {
		return info, fmt.Errorf("batch: reading the table's keys: %w", err)
	}
	defer rows.Close()
	if info.keys, err = scanKeys(rows, pos); err != nil {
		return info, fmt.Errorf("batch: reading the table's keys: %w", err)
	}
	return info, nil
}

// scanKeys reads the unique keys, one column per row in key order, and
// keeps those whose every column is inserted (pos: inserted column
// positions by lower-case name).
func scanKeys(rows *sql.Rows, pos map[string]int) ([]uniqueKey, error) {
	var keys []uniqueKey
	var cur *uniqueKey
	covered := false
	flush := func() {
		if cur != nil && covered {
			keys = append(keys, *cur)
		}
	}
	for rows.Next() {
		var index, column, nullable sql.NullString
		var sub int
		if err := rows.Scan(&index, &column, &sub, &nullable); err != nil {
			return nil, err
		}
		if cur == nil || cur.name != index.String {
			flush()
			cur = &uniqueKey{name: index.String, notNull: true}
			covered = true
		}
		p, ok := pos[strings.ToLower(column.String)]
		covered = covered && ok
		cur.cols = append(cur.cols, p)
		cur.prefix = append(cur.prefix, sub)
		cur.notNull = cur.notNull && nullable.String == "NO"
	}
	flush()
	return keys, rows.Err()
}

// readInfo reads the target table's keys on s, or on a fresh session if s
// dies meanwhile. It returns the session to go on with.
func (e *engine) readInfo(ctx context.Context, s *session, a *attempts) (*session, error) {
	s, err := e.setupRetrying(ctx, s, a, "reading the table's keys", func(s *session) error {
		info, err := readTableInfo(ctx, s.h, e.st.table, e.st.columns)
		if err == nil {
			e.info, e.infoKnown = info, true
		}
		return err
	})
	if err != nil && s != nil {
		e.log.Warn("batch: cannot read the table's keys; chunks with a lost reply will be reported, not resent", "err", err)
		return s, nil
	}
	return s, err
}

// transactional reports whether one statement is all-or-nothing.
func (t tableInfo) transactional() bool {
	return strings.EqualFold(t.engine, "InnoDB")
}

// hasNotNullKey reports whether the inserted columns supply a whole NOT NULL
// unique key, so that a row sent twice collides with itself.
func (t tableInfo) hasNotNullKey() bool { return t.notNullKey().cols != nil }

// notNullKey is the first unique key whose every column is NOT NULL (see
// hasNotNullKey).
func (t tableInfo) notNullKey() uniqueKey {
	for _, k := range t.keys {
		if k.notNull {
			return k
		}
	}
	return uniqueKey{}
}

// keyHashes appends to dst one hash per unique key per row of c. Two rows that
// the server would see as duplicates on some key get the same hash; the
// converse need not hold (a collision only costs waiting). Strings are
// compared as a case-insensitive, PAD SPACE collation would: lower-cased,
// trailing spaces dropped; accent-insensitive collations are not modelled.
func (t tableInfo) keyHashes(dst []uint64, c chunk, cols int) []uint64 {
	h := fnv.New64a()
	var buf [9]byte
	for r := 0; r < c.rows(); r++ {
		row := c.vals.row(r)
	keys:
		for ki, k := range t.keys {
			h.Reset()
			buf[0] = byte(ki)
			h.Write(buf[:1])
			for i, col := range k.cols {
				v := row[col]
				if v == nil {
					continue keys // NULL never collides in a unique key
				}
				writeKeyValue(h, &buf, v, k.prefix[i])
			}
			dst = append(dst, h.Sum64())
		}
	}
	return dst
}

func writeKeyValue(h interface{ Write([]byte) (int, error) }, buf *[9]byte, v any, prefix int) {
	putNum := func(tag byte, u uint64) {
		buf[0] = tag
		binary.LittleEndian.PutUint64(buf[1:], u)
		h.Write(buf[:9])
	}
	switch x := v.(type) {
	case int64:
		putNum(1, uint64(x))
	case uint64:
		if x > math.MaxInt64 {
			putNum(2, x)
		} else {
			putNum(1, x) // the same number as an int64
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			putNum(1, uint64(int64(x)))
		} else {
			putNum(3, math.Float64bits(x))
		}
	case bool:
		if x {
			putNum(1, 1)
		} else {
			putNum(1, 0)
		}
	case time.Time:
		putNum(4, uint64(x.UnixNano()))
	case string:
		s := strings.ToLower(strings.TrimRight(x, " "))
		if prefix > 0 && utf8.RuneCountInString(s) > prefix {
			s = string([]rune(s)[:prefix])
		}
		buf[0] = 5
		h.Write(buf[:1])
		h.Write([]byte(s))
	case []byte:
		if prefix > 0 && len(x) > prefix {
			x = x[:prefix]
		}
		buf[0] = 5
		h.Write(buf[:1])
		h.Write(x)
	}
}

// keyOrder keeps chunks that share a key from being in flight at once, so
// that with several workers the later row still wins, as in a sequential
// load.
type keyOrder struct {
	mu      sync.Mutex
	busy    map[uint64]int
	changed chan struct{}
}

func newKeyOrder() *keyOrder {
	return &keyOrder{busy: map[uint64]int{}, changed: make(chan struct{})}
}

// acquire waits until no chunk in flight has any of hs, then marks hs busy.
func (o *keyOrder) acquire(ctx context.Context, hs []uint64) error {
	for {
		o.mu.Lock()
		free := true
		for _, h := range hs {
			if o.busy[h] > 0 {
				free = false
				break
			}
		}
		if free {
			for _, h := range hs {
				o.busy[h]++
			}
			o.mu.Unlock()
			return nil
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (o *keyOrder) release(hs []uint64) {
	if len(hs) == 0 {
		return
	}
	o.mu.Lock()
	for _, h := range hs {
		if o.busy[h]--; o.busy[h] <= 0 {
			delete(o.busy, h)
		}
	}
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}
