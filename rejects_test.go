package batch_test

// Tests of bad-row isolation (MaxRejects, OnReject): every row-value error
// is provoked for real on a MariaDB server, and after each load the table,
// Result.Rejected and the Result ranges are compared with what they must be,
// exactly.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/batchsql/batch"
)

// ---- helpers ----

// rejCols are the columns every load of these tests writes.
var rejCols = []string{"id", "v"}

// rejWant is a rejection as the tests compare it: the input row and the
// server's error number.
type rejWant struct {
	Row   int
	Errno uint16
}

// rejRow is a row of a test table as rejTable reads it: v as text.
type rejRow = idRow[string]

// rejOutcome is the part of a Result these tests predict exactly.
type rejOutcome struct {
	Written, Unknown, NotSent []batch.Range
	Rejected                  []rejWant
	Rows                      int64
	Rejects                   int
}

// rejInsert loads rows (id, v) into table with batch.Insert.
func rejInsert(db batch.DB, table string, rows [][]any, opts ...batch.Option) (batch.Result, error) {
	return batch.Insert(context.Background(), db, batch.Values(table, rejCols, rows), opts...)
}

// rejIDRows returns the rows (i+1, vals[i]).
func rejIDRows(vals ...any) [][]any {
	rows := make([][]any, len(vals))
	for i, v := range vals {
		rows[i] = []any{int64(i + 1), v}
	}
	return rows
}

// rejWants is the rejections of rows, all with error number errno.
func rejWants(errno uint16, rows ...int) []rejWant {
	out := make([]rejWant, len(rows))
	for i, r := range rows {
		out[i] = rejWant{r, errno}
	}
	return out
}

// rejGot is rs as rejWants; each error must be the server's.
func rejGot(t testing.TB, rs []batch.Rejection) []rejWant {
	t.Helper()
	var out []rejWant
	for _, r := range rs {
		var me *mysql.MySQLError
		if !errors.As(r.Err, &me) {
			t.Errorf("rejection of row %d: %v (%T) is not a *mysql.MySQLError", r.Row, r.Err, r.Err)
			continue
		}
		out = append(out, rejWant{r.Row, me.Number})
	}
	return out
}

// rejOutcomeOf is the predictable part of res.
func rejOutcomeOf(t testing.TB, res batch.Result) rejOutcome {
	t.Helper()
	return rejOutcome{Written: res.Written, Unknown: res.Unknown, NotSent: res.NotSent,
		Rejected: rejGot(t, res.Rejected), Rows: res.Rows, Rejects: res.Rejects}
}

// rejText is value v as rejTable reads it back.
func rejText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// rejTable reads table (id, v as text, "NULL" for NULL) sorted by id.
func rejTable(t testing.TB, db *sql.DB, table string) []rejRow {
	t.Helper()
	rows := readQuery(t, db, "SELECT id, IFNULL(CAST(v AS CHAR), 'NULL') FROM `"+table+"` ORDER BY id")
	defer rows.Close()
	var out []rejRow
	for rows.Next() {
		var r rejRow
		if err := rows.Scan(&r.ID, &r.V); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}

// rejGood is what a table that held existing must hold after a plain
// INSERT of rows wrote every row but bad: existing and the other rows,
// sorted by id.
func rejGood(existing []rejRow, rows [][]any, bad []rejWant) []rejRow {
	out := slices.Clone(existing)
	for i, r := range rows {
		if !slices.ContainsFunc(bad, func(b rejWant) bool { return b.Row == i }) {
			out = append(out, rejRow{ID: r[0].(int64), V: rejText(r[1])})
		}
	}
	slices.SortFunc(out, func(a, b rejRow) int { return int(a.ID - b.ID) })
	return out
}

// rejRangeRows is what a table that held existing holds after a plain
// INSERT wrote the rows of ranges, as rejTable reads it.
func rejRangeRows(existing []rejRow, rows [][]any, ranges []batch.Range) []rejRow {
	var written [][]any
	for _, r := range ranges {
		written = append(written, rows[r.First:r.End]...)
	}
	return rejGood(existing, written, nil)
}

// rejSetRows inserts rows into table before a load.
func rejSetRows(t testing.TB, db *sql.DB, table string, rows []rejRow) {
	t.Helper()
	for _, r := range rows {
		mustExec(t, db, "INSERT INTO `"+table+"` (id, v) VALUES (?, ?)", r.ID, r.V)
	}
}

// rejCover fails t unless every row of [0, n) is in exactly one of
// Written, Unknown, NotSent (sorted, disjoint, non-adjacent ranges) and
// rejected (sorted by row), and Rows is the sum of Written.
func rejCover(t testing.TB, res batch.Result, rejected []batch.Rejection, n int) {
	t.Helper()
	owner := make([]string, n)
	mark := func(kind string, r batch.Range) {
		for i := r.First; i < r.End; i++ {
			switch {
			case i < 0 || i >= n:
				t.Errorf("Result.%s has row %d, outside the input [0, %d)", kind, i, n)
				return
			case owner[i] != "":
				t.Errorf("row %d is in both %s and %s", i, owner[i], kind)
			}
			owner[i] = kind
		}
	}
	written := 0
	for _, l := range []struct {
		kind string
		rs   []batch.Range
	}{{"Written", res.Written}, {"Unknown", res.Unknown}, {"NotSent", res.NotSent}} {
		for i, r := range l.rs {
			if r.First >= r.End || i > 0 && l.rs[i-1].End >= r.First {
				t.Errorf("Result.%s = %v: not sorted, disjoint, non-adjacent, non-empty ranges", l.kind, l.rs)
			}
			mark(l.kind, r)
		}
	}
	for _, r := range res.Written {
		written += r.Len()
	}
	for i, r := range rejected {
		if i > 0 && rejected[i-1].Row >= r.Row {
			t.Errorf("rejections not sorted by row: row %d after row %d", r.Row, rejected[i-1].Row)
		}
		mark("Rejected", batch.Range{First: r.Row, End: r.Row + 1})
	}
	if i := slices.Index(owner, ""); i >= 0 {
		t.Errorf("row %d is in none of Written, Unknown, NotSent, Rejected (Written %v, Unknown %v, NotSent %v)",
			i, res.Written, res.Unknown, res.NotSent)
	}
	if int64(written) != res.Rows {
		t.Errorf("Result.Rows = %d, but Written covers %d rows", res.Rows, written)
	}
	if res.Rejects != len(rejected) {
		t.Errorf("Result.Rejects = %d, want %d", res.Rejects, len(rejected))
	}
}

// rejExpect fails t unless table holds exactly want, and res (of a load
// of n rows that returned err) rejected exactly rej and wrote every other
// row.
func rejExpect(t testing.TB, db *sql.DB, table string, res batch.Result, err error, n int, want []rejRow, rej []rejWant) {
	t.Helper()
	if err != nil {
		t.Errorf("err = %v, want nil", err)
	}
	if d := cmp.Diff(want, rejTable(t, db, table), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("table (-want +got):\n%s", d)
	}
	if d := cmp.Diff(rej, rejGot(t, res.Rejected), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Result.Rejected (-want +got):\n%s", d)
	}
	if len(res.Unknown)+len(res.NotSent) > 0 {
		t.Errorf("Unknown %v, NotSent %v: want every row written or rejected", res.Unknown, res.NotSent)
	}
	rejCover(t, res, res.Rejected, n)
}

// rejChunkError returns the *ChunkError in err and the server's error
// number inside it; it fails t if there is none.
func rejChunkError(t testing.TB, err error) (*batch.ChunkError, uint16) {
	t.Helper()
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	if !errors.As(err, &ce) || !errors.As(err, &me) {
		t.Fatalf("err = %v (%T): want a *batch.ChunkError wrapping a *mysql.MySQLError", err, err)
	}
	return ce, me.Number
}

// rejTrigger makes a BEFORE INSERT trigger on table run body for each row.
func rejTrigger(t testing.TB, db *sql.DB, table, body string) {
	t.Helper()
	mustExec(t, db, "CREATE TRIGGER `"+table+"_bi` BEFORE INSERT ON `"+table+"` FOR EACH ROW "+body)
}

// ---- every row-value error ----

// rejCase is a load whose bad rows must all be rejected.
type rejCase struct {
	name     string
	def      string                           // the table's columns
	setup    func(t *testing.T, table string) // after the table is made, before the load
	existing []rejRow                         // rows in the table before the load
	rows     [][]any                          // (id, v)
	bad      []rejWant                        // the rows to be rejected
}

// rejErrorCases provoke each error MaxRejects treats as a bad row, twice
// in one chunk (rows 1 and 4, unless the case says otherwise). parent is
// a table (id) holding 10, 30, 40, 60 and 100.
func rejErrorCases(db *sql.DB, parent string) []rejCase {
	signal := func(t *testing.T, table string) {
		rejTrigger(t, db, table, "BEGIN IF NEW.v < 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'negative v'; END IF; END")
	}
	return []rejCase{
		{name: "1048_NullIntoNotNull", def: "id BIGINT PRIMARY KEY, v INT NOT NULL",
			rows: rejIDRows(10, nil, 30, 40, nil, 60), bad: rejWants(1048, 1, 4)},
		{name: "1062_ExistingKey", def: "id BIGINT PRIMARY KEY, v INT",
			existing: []rejRow{{ID: 2, V: "99"}, {ID: 5, V: "98"}},
			rows:     rejIDRows(10, 20, 30, 40, 50, 60), bad: rejWants(1062, 1, 4)},
		{name: "1062_KeyRepeatedInInput", def: "id BIGINT PRIMARY KEY, v INT",
			rows: [][]any{{int64(1), 10}, {int64(2), 20}, {int64(3), 30}, {int64(2), 40}, {int64(5), 50}, {int64(1), 60}},
			bad:  rejWants(1062, 3, 5)},
		{name: "1264_OutOfRange", def: "id BIGINT PRIMARY KEY, v TINYINT",
			rows: rejIDRows(10, 1000, 30, 40, -1000, 60), bad: rejWants(1264, 1, 4)},
		{name: "1292_BadDatetime", def: "id BIGINT PRIMARY KEY, v DATETIME",
			rows: rejIDRows("2020-01-02 03:04:05", "2020-13-45 00:00:00", "2021-01-02 03:04:05",
				"2022-01-02 03:04:05", "not a date", "2023-01-02 03:04:05"),
			bad: rejWants(1292, 1, 4)},
		{name: "1366_BadInteger", def: "id BIGINT PRIMARY KEY, v INT",
			rows: rejIDRows(10, "abc", 30, 40, "x", 60), bad: rejWants(1366, 1, 4)},
		{name: "1406_DataTooLong", def: "id BIGINT PRIMARY KEY, v VARCHAR(3)",
			rows: rejIDRows("a", "abcdef", "c", "d", "toolong", "f"), bad: rejWants(1406, 1, 4)},
		{name: "1452_NoParentRow", def: "id BIGINT PRIMARY KEY, v BIGINT, FOREIGN KEY (v) REFERENCES `" + parent + "` (id)",
			rows: rejIDRows(10, 77, 30, 40, 88, 60), bad: rejWants(1452, 1, 4)},
		{name: "4025_CheckConstraint", def: "id BIGINT PRIMARY KEY, v INT CHECK (v > 0)",
			rows: rejIDRows(10, -1, 30, 40, -5, 60), bad: rejWants(4025, 1, 4)},
		{name: "1644_TriggerSignal", def: "id BIGINT PRIMARY KEY, v INT", setup: signal,
			rows: rejIDRows(10, -1, 30, 40, -5, 60), bad: rejWants(1644, 1, 4)},
	}
}

func TestRejectRowErrors(t *testing.T) {
	db, cfg := sharedDB(t, "")
	parent := newTable(t, db, "id BIGINT PRIMARY KEY")
	mustExec(t, db, "INSERT INTO `"+parent+"` VALUES (10), (30), (40), (60), (100)")
	for _, c := range rejErrorCases(db, parent) {
		t.Run(c.name, func(t *testing.T) {
			table := newTable(t, db, c.def)
			if c.setup != nil {
				c.setup(t, table)
			}
			rejSetRows(t, db, table, c.existing)
			res, err := rejInsert(db, table, c.rows, batch.MaxRejects(-1), batch.DriverConfig(cfg))
			rejExpect(t, db, table, res, err, len(c.rows), rejGood(c.existing, c.rows, c.bad), c.bad)
		})
	}
}

// TestRejectStatementErrors: errors of the statement itself are not
// bisected: the load stops, nothing is rejected, and nothing is written.
func TestRejectStatementErrors(t *testing.T) {
	db, cfg := sharedDB(t, "")
	cases := []struct {
		name     string
		def      string
		existing []rejRow
		rows     [][]any
		opts     []batch.Option
		errno    uint16
	}{
		{name: "1054_NoSuchColumn", def: "id BIGINT PRIMARY KEY, w INT",
			rows: rejIDRows(1, 2, 3), errno: 1054},
		{name: "1364_NoDefaultValue", def: "id BIGINT PRIMARY KEY, v INT, w INT NOT NULL",
			rows: rejIDRows(1, 2, 3), errno: 1364},
		// With ON DUPLICATE KEY UPDATE a 1062 comes from another unique
		// key; it is not a bad row.
		{name: "1062_OnDuplicateKeyUpdateOtherKey", def: "id BIGINT PRIMARY KEY, v INT, UNIQUE KEY (v)",
			existing: []rejRow{{ID: 1, V: "10"}, {ID: 2, V: "20"}},
			rows:     [][]any{{int64(3), 30}, {int64(1), 20}, {int64(4), 40}},
			opts:     []batch.Option{batch.OnDuplicateKeyUpdate("v")}, errno: 1062},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := newTable(t, db, c.def)
			rejSetRows(t, db, table, c.existing)
			opts := append([]batch.Option{batch.MaxRejects(-1), batch.DriverConfig(cfg)}, c.opts...)
			res, err := rejInsert(db, table, c.rows, opts...)
			if _, errno := rejChunkError(t, err); errno != c.errno {
				t.Errorf("err = %v: error %d, want %d", err, errno, c.errno)
			}
			n := len(c.rows)
			want := rejOutcome{NotSent: []batch.Range{{First: 0, End: n}}}
			if d := cmp.Diff(want, rejOutcomeOf(t, res)); d != "" {
				t.Errorf("Result (-want +got):\n%s", d)
			}
			rejCover(t, res, res.Rejected, n)
			if c.errno == 1054 { // no column v to read back
				if got := countRows(t, db, table); got != 0 {
					t.Errorf("table has %d rows, want 0", got)
				}
				return
			}
			if d := cmp.Diff(c.existing, rejTable(t, db, table), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("table (-want +got):\n%s", d)
			}
		})
	}
}

// ---- where the bad rows are ----

// TestRejectPositions puts bad rows first, last, side by side and
// everywhere in one chunk, both for an error that names its row (1406) and
// for one that does not, so that the chunk is bisected (1048).
func TestRejectPositions(t *testing.T) {
	db, cfg := sharedDB(t, "")
	const n = 10
	kinds := []struct {
		name, def string
		errno     uint16
		good, bad func(i int) any
	}{
		{"1048_Bisected", "id BIGINT PRIMARY KEY, v INT NOT NULL", 1048,
			func(i int) any { return int64(i * 10) }, func(int) any { return nil }},
		{"1406_NamedRow", "id BIGINT PRIMARY KEY, v VARCHAR(3)", 1406,
			func(i int) any { return fmt.Sprint(i) }, func(int) any { return "toolong" }},
	}
	positions := []struct {
		name string
		bad  []int
	}{
		{"First", []int{0}},
		{"Last", []int{n - 1}},
		{"FirstAndLast", []int{0, n - 1}},
		{"Adjacent", []int{4, 5}},
		{"ThreeAdjacentAtEnd", []int{7, 8, 9}},
		{"Alternate", []int{1, 3, 5, 7, 9}},
		{"AllRows", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, k := range kinds {
		for _, p := range positions {
			t.Run(k.name+"/"+p.name, func(t *testing.T) {
				rows := make([][]any, n)
				for i := range rows {
					rows[i] = []any{int64(i), k.good(i)}
					if slices.Contains(p.bad, i) {
						rows[i][1] = k.bad(i)
					}
				}
				table := newTable(t, db, k.def)
				res, err := rejInsert(db, table, rows, batch.MaxRejects(-1), batch.MaxRows(n), batch.DriverConfig(cfg))
				bad := rejWants(k.errno, p.bad...)
				rejExpect(t, db, table, res, err, n, rejGood(nil, rows, bad), bad)
			})
		}
	}
}

// ---- long data ----

// TestRejectLongData sends every value as COM_STMT_SEND_LONG_DATA (the
// driver's maxAllowedPacket is 64 KiB, so a value of 22 KB or more goes as
// long data in any statement of two columns or more), the bad ones too.
func TestRejectLongData(t *testing.T) {
	db, cfg := sharedDB(t, "maxAllowedPacket=65536")
	reader, _ := sharedDB(t, "")
	const n = 8
	cases := []struct {
		name, def string
		good, bad int // value lengths
		errno     uint16
	}{
		{"1406_NamedRow", "id BIGINT PRIMARY KEY, v TEXT", 25_000, 70_000, 1406},
		{"4025_Bisected", "id BIGINT PRIMARY KEY, v MEDIUMTEXT CHECK (LENGTH(v) < 30000)", 25_000, 40_000, 4025},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows := make([][]any, n)
			for i := range rows {
				size := c.good
				if i == 2 || i == 5 {
					size = c.bad
				}
				rows[i] = []any{int64(i), strings.Repeat(string(rune('a'+i)), size)}
			}
			table := newTable(t, db, c.def)
			before := faultStatus(t, reader, "Com_stmt_send_long_data")
			res, err := rejInsert(db, table, rows, batch.MaxRejects(-1), batch.DriverConfig(cfg))
			if sent := faultStatus(t, reader, "Com_stmt_send_long_data") - before; sent < n {
				t.Errorf("%d long-data packets sent, want at least one per row (%d): the values were not long data", sent, n)
			}
			bad := rejWants(c.errno, 2, 5)
			rejExpect(t, reader, table, res, err, n, rejGood(nil, rows, bad), bad)
		})
	}
}

// ---- every path ----

// rejPath is one way to load rows, returning the rejections it reports.
type rejPath struct {
	name  string
	load  func(t *testing.T, db *sql.DB, table string, rows [][]any, opts ...batch.Option) (batch.Result, []batch.Rejection, error)
	table []rejRow  // the table after loading rejPathRows
	bad   []rejWant // the rows rejected
}

// rejPathExisting are in the table before rejPathRows are loaded into
// (id BIGINT PRIMARY KEY, v VARCHAR(5) NOT NULL).
var rejPathExisting = []rejRow{{ID: 1, V: "old1"}, {ID: 4, V: "old4"}}

// rejPathRows: row 0's key exists, row 1 is NULL, row 3's value is too
// long (and its key exists), row 5 repeats row 4's key.
var rejPathRows = [][]any{
	{int64(1), "new1"}, {int64(2), nil}, {int64(3), "ok3"}, {int64(4), "toolong"},
	{int64(5), "ok5"}, {int64(5), "dup5"}, {int64(6), "ok6"},
}

// rejPaths are Insert, Replace, ON DUPLICATE KEY UPDATE, Ignore, a Writer
// and a REPLACE Writer, and a Writer whose rejections go to OnReject.
func rejPaths() []rejPath {
	values := func(f func(context.Context, batch.DB, batch.Rows, ...batch.Option) (batch.Result, error), extra ...batch.Option) func(*testing.T, *sql.DB, string, [][]any, ...batch.Option) (batch.Result, []batch.Rejection, error) {
		return func(_ *testing.T, db *sql.DB, table string, rows [][]any, opts ...batch.Option) (batch.Result, []batch.Rejection, error) {
			res, err := f(context.Background(), db, batch.Values(table, rejCols, rows), append(opts, extra...)...)
			return res, res.Rejected, err
		}
	}
	writer := func(newW func(batch.DB, string, []string, ...batch.Option) (*batch.Writer, error)) func(*testing.T, *sql.DB, string, [][]any, ...batch.Option) (batch.Result, []batch.Rejection, error) {
		return func(t *testing.T, db *sql.DB, table string, rows [][]any, opts ...batch.Option) (batch.Result, []batch.Rejection, error) {
			w, err := newW(db, table, rejCols, append(opts, batch.MaxRows(2))...)
			if err != nil {
				t.Fatalf("new writer: %v", err)
			}
			res, err := writeAll(context.Background(), w, rows)
			return res, res.Rejected, err
		}
	}
	insertTable := []rejRow{{1, "old1"}, {3, "ok3"}, {4, "old4"}, {5, "ok5"}, {6, "ok6"}}
	replaceTable := []rejRow{{1, "new1"}, {3, "ok3"}, {4, "old4"}, {5, "dup5"}, {6, "ok6"}}
	insertBad := []rejWant{{0, 1062}, {1, 1048}, {3, 1406}, {5, 1062}}
	valueBad := []rejWant{{1, 1048}, {3, 1406}}
	return []rejPath{
		{"Insert", values(batch.Insert), insertTable, insertBad},
		{"Replace", values(batch.Replace), replaceTable, valueBad},
		{"OnDuplicateKeyUpdate", values(batch.Insert, batch.OnDuplicateKeyUpdate("v")), replaceTable, valueBad},
		{"Ignore", values(batch.Insert, batch.Ignore()), insertTable, valueBad},
		{"Writer", writer(batch.NewWriter), insertTable, insertBad},
		{"ReplaceWriter", writer(batch.NewReplaceWriter), replaceTable, valueBad},
		{"WriterOnReject", rejWriteOnReject, insertTable, insertBad},
	}
}

// rejWriteOnReject loads rows through a Writer (two workers) whose
// rejections go to an OnReject callback, and returns those. The callback
// takes no lock: it must never run twice at once (the race detector and
// the inside count check that), and Close must return after its last call.
func rejWriteOnReject(t *testing.T, db *sql.DB, table string, rows [][]any, opts ...batch.Option) (batch.Result, []batch.Rejection, error) {
	var got []batch.Rejection
	var inside atomic.Int32
	onReject := batch.OnReject(func(r batch.Rejection) {
		if inside.Add(1) != 1 {
			t.Errorf("OnReject called for row %d while another call runs", r.Row)
		}
		got = append(got, r)
		time.Sleep(5 * time.Millisecond) // give a second call the time to overlap
		inside.Add(-1)
	})
	w, err := batch.NewWriter(db, table, rejCols, append(opts, batch.MaxRows(2), batch.Workers(2), onReject)...)
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	res, err := writeAll(context.Background(), w, rows)
	if res.Rejected != nil {
		t.Errorf("Result.Rejected = %v with OnReject, want nil", res.Rejected)
	}
	slices.SortFunc(got, func(a, b batch.Rejection) int { return a.Row - b.Row })
	return res, got, err
}

func TestRejectPaths(t *testing.T) {
	db, cfg := sharedDB(t, "")
	for _, p := range rejPaths() {
		t.Run(p.name, func(t *testing.T) {
			table := newTable(t, db, "id BIGINT PRIMARY KEY, v VARCHAR(5) NOT NULL")
			rejSetRows(t, db, table, rejPathExisting)
			res, rejected, err := p.load(t, db, table, rejPathRows, batch.MaxRejects(-1), batch.DriverConfig(cfg))
			if err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if d := cmp.Diff(p.table, rejTable(t, db, table)); d != "" {
				t.Errorf("table (-want +got):\n%s", d)
			}
			if d := cmp.Diff(p.bad, rejGot(t, rejected)); d != "" {
				t.Errorf("rejections (-want +got):\n%s", d)
			}
			if len(res.Unknown)+len(res.NotSent) > 0 {
				t.Errorf("Unknown %v, NotSent %v: want every row written or rejected", res.Unknown, res.NotSent)
			}
			rejCover(t, res, rejected, len(rejPathRows))
		})
	}
}

// ---- Ignore does not coerce ----

// TestRejectIgnoreNoCoercion: with Ignore, a row whose key exists is
// skipped, but a bad value is never stored coerced (truncated, clipped,
// zeroed) as INSERT IGNORE would: it is rejected, or, without MaxRejects,
// stops the load.
func TestRejectIgnoreNoCoercion(t *testing.T) {
	db, cfg := sharedDB(t, "")
	cases := []struct {
		name, def string
		old, bad  any
		good      []any // rows 0 (its key exists), 1 and 3
		errno     uint16
		named     bool // the server names the row
	}{
		{"1406_TooLong", "id BIGINT PRIMARY KEY, v VARCHAR(3)", "old", "toolong", []any{"new", "b", "d"}, 1406, true},
		{"1264_OutOfRange", "id BIGINT PRIMARY KEY, v TINYINT", 1, 1000, []any{2, 3, 4}, 1264, true},
		{"1366_BadInteger", "id BIGINT PRIMARY KEY, v INT", 1, "abc", []any{2, 3, 4}, 1366, true},
		{"1048_Null", "id BIGINT PRIMARY KEY, v INT NOT NULL", 1, nil, []any{2, 3, 4}, 1048, false},
	}
	for _, c := range cases {
		rows := rejIDRows(c.good[0], c.good[1], c.bad, c.good[2])
		existing := []rejRow{{ID: 1, V: rejText(c.old)}}
		t.Run(c.name+"/MaxRejects", func(t *testing.T) {
			table := newTable(t, db, c.def)
			rejSetRows(t, db, table, existing)
			res, err := rejInsert(db, table, rows, batch.Ignore(), batch.MaxRejects(-1), batch.DriverConfig(cfg))
			want := rejGood(existing, rows, []rejWant{{0, 0}, {2, 0}}) // row 0 skipped, row 2 rejected
			rejExpect(t, db, table, res, err, len(rows), want, rejWants(c.errno, 2))
		})
		t.Run(c.name+"/MaxRejects0", func(t *testing.T) {
			table := newTable(t, db, c.def)
			rejSetRows(t, db, table, existing)
			res, err := rejInsert(db, table, rows, batch.Ignore(), batch.MaxRejects(0), batch.DriverConfig(cfg))
			rejStopped(t, err, c.errno, batch.Range{First: 0, End: 4}, c.named, 2)
			want := rejOutcome{NotSent: []batch.Range{{First: 0, End: 4}}}
			if d := cmp.Diff(want, rejOutcomeOf(t, res)); d != "" {
				t.Errorf("Result (-want +got):\n%s", d)
			}
			rejCover(t, res, res.Rejected, len(rows))
			if d := cmp.Diff(existing, rejTable(t, db, table)); d != "" {
				t.Errorf("table (-want +got):\n%s", d)
			}
		})
	}
}

// rejStopped fails t unless err is a *ChunkError for rows chunk with error
// errno, naming row if named, else no row.
func rejStopped(t testing.TB, err error, errno uint16, chunk batch.Range, named bool, row int) {
	t.Helper()
	ce, got := rejChunkError(t, err)
	if !named {
		row = -1
	}
	if got != errno || ce.Range != chunk || ce.Row != row {
		t.Errorf("err = %v: error %d, Range %v, Row %d; want error %d, Range %v, Row %d",
			err, got, ce.Range, ce.Row, errno, chunk, row)
	}
	if errors.Is(err, batch.ErrTooManyRejects) {
		t.Errorf("err = %v: wraps ErrTooManyRejects without MaxRejects", err)
	}
}

// ---- exact results of a stopped load ----

// rejHandle is what a load runs on: a pool, or a connection of the
// caller's, on which every statement commits on its own.
type rejHandle struct {
	name string
	get  func(t *testing.T, db *sql.DB) batch.DB
}

var rejHandles = []rejHandle{
	{"Pool", func(_ *testing.T, db *sql.DB) batch.DB { return db }},
	{"Conn", func(t *testing.T, db *sql.DB) batch.DB {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatalf("conn: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}},
}

// rejExact fails t unless the Result of a stopped load of n rows into
// table is want, and the table holds existing and the rows of Written. On
// a pool the chunks go in transactions of several (CommitEvery), and the
// chunks of a transaction before a refused row are still written, as on
// the caller's connection where each commits on its own: the Result is the
// same on both.
func rejExact(t testing.TB, db *sql.DB, table string, rows [][]any, existing []rejRow, res batch.Result, want rejOutcome) {
	t.Helper()
	got := rejOutcomeOf(t, res)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Result (-want +got):\n%s", d)
	}
	rejCover(t, res, res.Rejected, len(rows))
	if d := cmp.Diff(rejRangeRows(existing, rows, res.Written), rejTable(t, db, table), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("table vs Result.Written (-Written +table):\n%s", d)
	}
}

// TestRejectDefaultStops: without MaxRejects (or with MaxRejects(0)) the
// load stops at the first bad row, and the ChunkError names the input row
// when the server says "at row N". One worker and chunks of 4 rows: the
// bad row 6 is in the second chunk.
func TestRejectDefaultStops(t *testing.T) {
	db, cfg := sharedDB(t, "")
	const n, badRow = 10, 6
	cases := []struct {
		name, def string
		good, bad any
		errno     uint16
		named     bool
		existing  []rejRow
	}{
		{"1406_DataTooLong", "id BIGINT PRIMARY KEY, v VARCHAR(3)", "1", "toolong", 1406, true, nil},
		{"1264_OutOfRange", "id BIGINT PRIMARY KEY, v TINYINT", "1", 1000, 1264, true, nil},
		{"1292_BadDatetime", "id BIGINT PRIMARY KEY, v DATETIME", "2020-01-02 03:04:05", "2020-13-45", 1292, true, nil},
		{"1366_BadInteger", "id BIGINT PRIMARY KEY, v INT", "1", "abc", 1366, true, nil},
		{"1048_NullIntoNotNull", "id BIGINT PRIMARY KEY, v INT NOT NULL", "1", nil, 1048, false, nil},
		// Row 6 (id 7) is good, but its key exists.
		{"1062_ExistingKey", "id BIGINT PRIMARY KEY, v INT", "1", "1", 1062, false, []rejRow{{ID: badRow + 1, V: "9"}}},
	}
	for _, c := range cases {
		rows := make([][]any, n)
		for i := range rows {
			rows[i] = []any{int64(i + 1), c.good}
		}
		rows[badRow][1] = c.bad
		for _, opt := range []struct {
			name string
			opts []batch.Option
		}{{"Default", nil}, {"MaxRejects0", []batch.Option{batch.MaxRejects(0)}}} {
			for _, h := range rejHandles {
				t.Run(c.name+"/"+opt.name+"/"+h.name, func(t *testing.T) {
					table := newTable(t, db, c.def)
					rejSetRows(t, db, table, c.existing)
					opts := append([]batch.Option{batch.MaxRows(4), batch.Workers(1), batch.DriverConfig(cfg)}, opt.opts...)
					res, err := rejInsert(h.get(t, db), table, rows, opts...)
					rejStopped(t, err, c.errno, batch.Range{First: 4, End: 8}, c.named, badRow)
					want := rejOutcome{Written: []batch.Range{{First: 0, End: 4}}, NotSent: []batch.Range{{First: 4, End: n}}, Rows: 4}
					rejExact(t, db, table, rows, c.existing, res, want)
				})
			}
		}
	}
}

// ---- the budget ----

// TestRejectBudget: once more rows are bad than MaxRejects allows, the load
// stops with ErrTooManyRejects at the row over the budget, and the Result
// says exactly what was written, rejected and not sent. One worker and one
// chunk of 10 rows make the order of statements fixed.
func TestRejectBudget(t *testing.T) {
	db, cfg := sharedDB(t, "")
	cases := []struct {
		name, def string
		bad       any
		badRows   []int
		max       int
		errno     uint16
		chunk     batch.Range // the chunk that went over
		want      rejOutcome
	}{
		// Named rows: [0,10) rejects 2 and sends [0,2) [3,9) [9,10); [3,9)
		// rejects 5 and sends [3,5) [6,9); [6,9) goes over at row 8.
		{"1406_NamedRow", "id BIGINT PRIMARY KEY, v VARCHAR(3)", "toolong", []int{2, 5, 8}, 2, 1406,
			batch.Range{First: 6, End: 9}, rejOutcome{
				Written:  []batch.Range{{First: 0, End: 2}, {First: 3, End: 5}},
				NotSent:  []batch.Range{{First: 6, End: 10}},
				Rejected: rejWants(1406, 2, 5), Rows: 4, Rejects: 2}},
		// Bisected: [0,10) → [0,4) [4,10); [0,4) → [0,2) [2,4) → [2,3)
		// rejected, [3,4); [4,10) → [4,7) [7,10) → [7,8) over the budget.
		{"1048_Bisected", "id BIGINT PRIMARY KEY, v INT NOT NULL", nil, []int{2, 7}, 1, 1048,
			batch.Range{First: 7, End: 8}, rejOutcome{
				Written:  []batch.Range{{First: 0, End: 2}, {First: 3, End: 7}},
				NotSent:  []batch.Range{{First: 7, End: 10}},
				Rejected: rejWants(1048, 2), Rows: 6, Rejects: 1}},
	}
	for _, c := range cases {
		rows := make([][]any, 10)
		for i := range rows {
			rows[i] = []any{int64(i), fmt.Sprint(i)}
			if slices.Contains(c.badRows, i) {
				rows[i][1] = c.bad
			}
		}
		for _, h := range rejHandles {
			t.Run(c.name+"/"+h.name, func(t *testing.T) {
				table := newTable(t, db, c.def)
				res, err := rejInsert(h.get(t, db), table, rows, batch.MaxRejects(c.max), batch.MaxRows(10), batch.Workers(1), batch.DriverConfig(cfg))
				if !errors.Is(err, batch.ErrTooManyRejects) {
					t.Errorf("err = %v: want ErrTooManyRejects", err)
				}
				ce, errno := rejChunkError(t, err)
				over := c.badRows[c.max]
				if ce.Range != c.chunk || ce.Row != over || errno != c.errno {
					t.Errorf("err = %v: Range %v, Row %d, error %d; want %v, %d, %d", err, ce.Range, ce.Row, errno, c.chunk, over, c.errno)
				}
				rejExact(t, db, table, rows, nil, res, c.want)
			})
		}
	}
}

// ---- MyISAM ----

// TestRejectMyISAM: MaxRejects on a table that does not roll a refused
// statement back is refused before any row is sent.
func TestRejectMyISAM(t *testing.T) {
	db, cfg := sharedDB(t, "")
	rows := rejIDRows(1, nil, 3)
	cases := []struct {
		name string
		load func(t *testing.T, table string) (batch.Result, error)
	}{
		{"Insert", func(_ *testing.T, table string) (batch.Result, error) {
			return rejInsert(db, table, rows, batch.MaxRejects(1), batch.DriverConfig(cfg))
		}},
		{"InsertNoLimit", func(_ *testing.T, table string) (batch.Result, error) {
			return rejInsert(db, table, rows, batch.MaxRejects(-1), batch.DriverConfig(cfg))
		}},
		{"Writer", func(t *testing.T, table string) (batch.Result, error) {
			w, err := batch.NewWriter(db, table, rejCols, batch.MaxRejects(1), batch.DriverConfig(cfg))
			if err != nil {
				t.Fatalf("new writer: %v", err)
			}
			return writeAll(context.Background(), w, rows)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := newTable(t, db, "id BIGINT PRIMARY KEY, v INT NOT NULL")
			mustExec(t, db, "ALTER TABLE `"+table+"` ENGINE=MyISAM")
			inserts := faultStatus(t, db, "Com_insert")
			res, err := c.load(t, table)
			if !errors.Is(err, batch.ErrNotTransactional) {
				t.Errorf("err = %v, want ErrNotTransactional", err)
			}
			if got := faultStatus(t, db, "Com_insert") - inserts; got != 0 {
				t.Errorf("%d INSERT statements ran, want none", got)
			}
			want := rejOutcome{NotSent: []batch.Range{{First: 0, End: len(rows)}}}
			if d := cmp.Diff(want, rejOutcomeOf(t, res)); d != "" || res.Bytes != 0 || res.Chunks != 0 {
				t.Errorf("Bytes %d, Chunks %d; Result (-want +got):\n%s", res.Bytes, res.Chunks, d)
			}
			rejCover(t, res, res.Rejected, len(rows))
			if got := countRows(t, db, table); got != 0 {
				t.Errorf("table has %d rows, want 0", got)
			}
		})
	}
	// A table that does not exist is the server's to report (1146), not a
	// refusal of its engine.
	t.Run("NoSuchTable", func(t *testing.T) {
		table := "t_no_such_table_" + strconv.Itoa(os.Getpid())
		res, err := rejInsert(db, table, rows, batch.MaxRejects(1), batch.DriverConfig(cfg))
		if serverErrno(err) != 1146 || errors.Is(err, batch.ErrNotTransactional) {
			t.Errorf("err = %v, want the server's 1146", err)
		}
		want := rejOutcome{NotSent: []batch.Range{{First: 0, End: len(rows)}}}
		if d := cmp.Diff(want, rejOutcomeOf(t, res)); d != "" {
			t.Errorf("Result (-want +got):\n%s", d)
		}
	})
	// The same table takes a load without MaxRejects: the refusal is the
	// engine's, not the table's.
	t.Run("WithoutMaxRejects", func(t *testing.T) {
		table := newTable(t, db, "id BIGINT PRIMARY KEY, v INT NOT NULL")
		mustExec(t, db, "ALTER TABLE `"+table+"` ENGINE=MyISAM")
		good := rejIDRows(1, 2, 3)
		res, err := rejInsert(db, table, good, batch.DriverConfig(cfg))
		rejExpect(t, db, table, res, err, len(good), rejGood(nil, good, nil), nil)
	})
}

// ---- order between workers ----

// TestRejectRepeatedKeyAcrossChunks: a key repeated in chunks far apart,
// sent by two workers, keeps the earlier row and rejects the later one,
// even when the later chunk could go first: a trigger holds the first chunk
// back for half a second on its first row. Rows 3 and 32 share id 4; the
// 16 chunks of 4 rows are many enough that the two rows are in different
// transactions even if the package commits several chunks at once.
func TestRejectRepeatedKeyAcrossChunks(t *testing.T) {
	db, cfg := sharedDB(t, "")
	rows := make([][]any, 64)
	for i := range rows {
		rows[i] = []any{int64(i + 1), fmt.Sprint("v", i)}
	}
	rows[3][1], rows[32] = "earlier", []any{int64(4), "later"}
	opts := []batch.Option{batch.MaxRejects(-1), batch.MaxRows(4), batch.Workers(2), batch.DriverConfig(cfg)}
	loads := []struct {
		name string
		load func(t *testing.T, table string) (batch.Result, error)
	}{
		{"Insert", func(_ *testing.T, table string) (batch.Result, error) { return rejInsert(db, table, rows, opts...) }},
		{"Writer", func(t *testing.T, table string) (batch.Result, error) {
			w, err := batch.NewWriter(db, table, rejCols, opts...)
			if err != nil {
				t.Fatalf("new writer: %v", err)
			}
			return writeAll(context.Background(), w, rows)
		}},
	}
	for _, l := range loads {
		t.Run(l.name, func(t *testing.T) {
			table := newTable(t, db, "id BIGINT PRIMARY KEY, v VARCHAR(10)")
			rejTrigger(t, db, table, "BEGIN IF NEW.id = 1 THEN DO SLEEP(0.5); END IF; END")
			res, err := l.load(t, table)
			bad := rejWants(1062, 32)
			rejExpect(t, db, table, res, err, len(rows), rejGood(nil, rows, bad), bad)
		})
	}
}

// ---- bisection under KILL ----

// TestRejectKilled kills the load's connections every 20 ms (12 kills in
// all) while it bisects chunks full of bad rows: whatever the load then
// returns, every row is in exactly one of Written, Unknown, NotSent and
// Rejected, and the table agrees with each; if it returns no error, every
// bad row is rejected and every good row written.
func TestRejectKilled(t *testing.T) {
	srv, db := faultServer(t)
	const n, maxRows = 4000, 500
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{int64(i), int64(i)}
		if i%5 == 2 {
			rows[i][1] = nil
		}
	}
	table := newTable(t, db, "id BIGINT PRIMARY KEY, v BIGINT NOT NULL")
	ldb, cfg := openDSN(t, srv.DSN(""))
	log := &logRecorder{}
	load := startLoad(func() (batch.Result, error) {
		return rejInsert(ldb, table, rows, batch.MaxRejects(-1), batch.MaxRows(maxRows), batch.DriverConfig(cfg), batch.Logger(log.logger()))
	})
	waitFor(t, 2*time.Minute, "the first row rejected", func() bool { return log.count("batch: row rejected") > 0 }, during(load))
	stop := startKiller(t, srv.DSN(""), 20*time.Millisecond, "USER = 'root'", 12)
	res, err := load.wait()
	kills := stop()
	t.Logf("%d kills, %d rejected, %d written, Unknown %v, NotSent %v; err = %v; log:%s",
		kills, res.Rejects, res.Rows, res.Unknown, res.NotSent, err, log.summary())
	if interrupted := rejInterrupted(log, maxRows); kills == 0 || interrupted == 0 {
		t.Errorf("%d kills, %d attempts of bisected chunks interrupted: the fault did not hit the bisection", kills, interrupted)
	}
	rejCover(t, res, res.Rejected, n)
	rejKilledTable(t, db, table, rows, res, err)
	if err == nil { // the load rode the kills out: exact
		var bad []int
		for i := 2; i < n; i += 5 {
			bad = append(bad, i)
		}
		want := rejWants(1048, bad...)
		rejExpect(t, db, table, res, err, n, rejGood(nil, rows, want), want)
	}
}

// rejInterrupted counts the attempts, of fewer rows than a chunk of
// maxRows (cut by bisection), that failed for another reason than a
// refusal and were retried: the warnings with a class other than permanent.
func rejInterrupted(log *logRecorder, maxRows int) int {
	k := 0
	for _, r := range log.records() {
		attrs := map[string]string{}
		for _, a := range r.Attrs {
			attrs[a.Key] = a.Value
		}
		first, errF := strconv.Atoi(attrs["first"])
		end, errE := strconv.Atoi(attrs["end"])
		class, ok := attrs["class"]
		if r.Level == slog.LevelWarn && ok && class != "permanent" && errF == nil && errE == nil && end-first < maxRows {
			k++
		}
	}
	return k
}

// rejKilledTable fails t unless the table agrees with res: every Written
// row is there, no NotSent or Rejected row is, each rejected row is a bad
// one (v NULL, 1048), and each uncertain chunk (an UnknownOutcomeError of
// err) is there whole or not at all.
func rejKilledTable(t *testing.T, db *sql.DB, table string, rows [][]any, res batch.Result, err error) {
	t.Helper()
	got := map[int64]string{}
	for _, r := range rejTable(t, db, table) {
		got[r.ID] = r.V
	}
	where := make([]string, len(rows))
	for _, l := range []struct {
		kind string
		rs   []batch.Range
	}{{"Written", res.Written}, {"Unknown", res.Unknown}, {"NotSent", res.NotSent}} {
		for _, r := range l.rs {
			for i := r.First; i < r.End; i++ {
				where[i] = l.kind
			}
		}
	}
	for _, r := range res.Rejected {
		where[r.Row] = "Rejected"
		if rows[r.Row][1] != nil || serverErrno(r.Err) != 1048 {
			t.Errorf("row %d rejected with %v: it is a good row", r.Row, r.Err)
		}
	}
	for i, r := range rows {
		v, there := got[int64(i)]
		switch {
		case there && v != rejText(r[1]):
			t.Errorf("row %d is there with %q, want %q", i, v, rejText(r[1]))
		case where[i] == "Written" && !there:
			t.Errorf("row %d is Written, but not in the table", i)
		case where[i] == "NotSent" && there, where[i] == "Rejected" && there:
			t.Errorf("row %d is %s, but in the table", i, where[i])
		}
	}
	if len(got) > len(rows) {
		t.Errorf("table has %d rows, more than the input", len(got))
	}
	rejUncertainWhole(t, got, err)
}

// rejUncertainWhole fails t unless each chunk of an UnknownOutcomeError in
// err is in the table whole or not at all (one InnoDB statement is all or
// nothing).
func rejUncertainWhole(t *testing.T, got map[int64]string, err error) {
	t.Helper()
	for _, leaf := range faultLeaves(err) {
		var uo *batch.UnknownOutcomeError
		if !errors.As(leaf, &uo) {
			continue
		}
		present := 0
		for i := uo.Range.First; i < uo.Range.End; i++ {
			if _, ok := got[int64(i)]; ok {
				present++
			}
		}
		// A chunk's bad rows are never there: count only its good rows.
		if present != 0 && present != rejGoodIn(uo.Range) {
			t.Errorf("uncertain chunk %v: %d of its rows are there; a statement is all or nothing", uo.Range, present)
		}
	}
}

// rejGoodIn is the number of good rows (i%5 != 2) of TestRejectKilled in r.
func rejGoodIn(r batch.Range) int {
	k := 0
	for i := r.First; i < r.End; i++ {
		if i%5 != 2 {
			k++
		}
	}
	return k
}

// TestRejectBurst: a burst of bad rows makes chunks shrink (the tuner), and
// good rows after it make them grow again, past the Writer's buffer made
// while they were small: every good row is written, every bad one
// rejected.
func TestRejectBurst(t *testing.T) {
	db, _ := sharedDB(t, "")
	ctx := context.Background()
	table := newTable(t, db, "id BIGINT PRIMARY KEY, v VARCHAR(3) NOT NULL")
	w, err := batch.NewWriter(db, table, []string{"id", "v"}, batch.MaxRejects(-1))
	if err != nil {
		t.Fatal(err)
	}
	// Bursts of 300 bad rows every 5,000 rows; a Flush after each burst
	// lets the tuner see it before the good rows come.
	const burst, every, n = 300, 5_000, 40_000
	bad := 0
	var want []int64
	for i := range n {
		v := "ok"
		if i%every < burst {
			v = "too long"
			bad++
		} else {
			want = append(want, int64(i))
		}
		if err := w.Write(ctx, int64(i), v); err != nil {
			t.Fatalf("Write(%d): %v", i, err)
		}
		if i%every == burst-1 {
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := w.Close(ctx)
	if err != nil || res.Rejects != bad || res.Rows != int64(n-bad) {
		t.Fatalf("Rejects %d, Rows %d, err %v; want %d, %d, nil", res.Rejects, res.Rows, err, bad, n-bad)
	}
	rejCover(t, res, res.Rejected, n)
	if got := countRows(t, db, table); got != len(want) {
		t.Errorf("table holds %d rows, want %d", got, len(want))
	}
}
