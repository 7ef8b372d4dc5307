package batch_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// These tests give bad input and check that it is refused before anything
// is sent (no connection is even opened: Result.MinPacketLimit stays 0), that the
// whole input is reported NotSent, and that error texts name rows, columns
// and types but never a value.

const (
	inputRows  = 2000
	badRow     = 1500          // far past the first chunks, which must not be sent either
	leakMarker = "SECRET-7f3a" // sits in the bad row; no error text may hold it
)

// valuerOf is a driver.Valuer returning v.
type valuerOf struct{ v any }

func (x valuerOf) Value() (driver.Value, error) { return x.v, nil }

var errValuer = errors.New("valuer: cannot encode")

// failingValuer is a driver.Valuer that always fails.
type failingValuer struct{}

func (failingValuer) Value() (driver.Value, error) { return nil, errValuer }

// ignoreElapsed drops the one Result field that varies when nothing is sent.
var ignoreElapsed = cmpopts.IgnoreFields(batch.Result{}, "Elapsed")

// allNotSent is the Result of a call that sent nothing for n rows.
func allNotSent(n int) batch.Result {
	return batch.Result{NotSent: []batch.Range{{First: 0, End: n}}}
}

// wantNothingSent fails t unless res is the Result of a call that sent none
// of its n rows (compared with go-cmp, with ignore) and table is empty.
func wantNothingSent(t *testing.T, res batch.Result, n int, ignore cmp.Option, db *sql.DB, table string) {
	t.Helper()
	if d := cmp.Diff(allNotSent(n), res, ignore); d != "" {
		t.Errorf("Result (-want +got):\n%s", d)
	}
	if c := countRows(t, db, table); c != 0 {
		t.Errorf("%d rows written, want 0", c)
	}
}

// badRows is inputRows rows (id, s, v) with value in column v of badRow and
// leakMarker in its column s.
func badRows(value any) [][]any {
	rows := make([][]any, inputRows)
	for i := range rows {
		rows[i] = []any{i, "ok", "fine"}
	}
	rows[badRow] = []any{badRow, leakMarker, value}
	return rows
}

// assertNoLeak fails t if err's text holds leakMarker or any of leaks.
func assertNoLeak(t *testing.T, err error, leaks ...string) {
	t.Helper()
	for _, s := range append(leaks, leakMarker) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error text %q holds the row value %q", err, s)
		}
	}
}

// locHandle is a pool opened with a driver loc, and its config.
type locHandle struct {
	db  *sql.DB
	cfg *mysql.Config
}

func TestInputValueRefused(t *testing.T) {
	newYorkDB, newYorkCfg := sharedDB(t, "parseTime=true&loc=America%2FNew_York")
	kolkataDB, kolkataCfg := sharedDB(t, "parseTime=true&loc=Asia%2FKolkata")
	handles := map[string]locHandle{"New York": {newYorkDB, newYorkCfg}, "Kolkata": {kolkataDB, kolkataCfg}}
	// One table for every case, since none may write: a case that does is
	// reported, and the table emptied after it.
	table := newTable(t, newYorkDB, "id INT PRIMARY KEY, s TEXT, v TEXT")
	year10000 := time.Date(10000, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name     string
		loc      string // the driver's loc, given with DriverConfig
		value    any
		wantIs   error
		wantType string
		leaks    []string // texts of the value that must not appear
	}{
		{"complex128", "Kolkata", complex(1234.5678, 9), batch.ErrUnsupportedType, "complex128", []string{"1234.5678"}},
		{"map", "Kolkata", map[string]int{"SECRET-key": 31337}, batch.ErrUnsupportedType, "map[string]int", []string{"SECRET-key", "31337"}},
		{"struct", "Kolkata", struct{ S string }{"SECRET-struct"}, batch.ErrUnsupportedType, "struct { S string }", []string{"SECRET-struct"}},
		{"chan", "Kolkata", make(chan int), batch.ErrUnsupportedType, "chan int", nil},
		{"func", "Kolkata", func() {}, batch.ErrUnsupportedType, "func()", nil},
		{"slice of int", "Kolkata", []int{31337}, batch.ErrUnsupportedType, "[]int", []string{"31337"}},
		{"array of bytes", "Kolkata", [3]byte{'S', 'E', 'C'}, batch.ErrUnsupportedType, "[3]uint8", []string{"SEC"}},
		{"Valuer returning complex", "Kolkata", valuerOf{complex(1234.5678, 9)}, batch.ErrUnsupportedType, "batch_test.valuerOf", []string{"1234.5678"}},
		{"Valuer returning a struct", "Kolkata", valuerOf{struct{ S string }{"SECRET-struct"}}, batch.ErrUnsupportedType, "batch_test.valuerOf", []string{"SECRET-struct"}},
		{"Valuer returning a Valuer", "Kolkata", valuerOf{upper("SECRET-upper")}, batch.ErrUnsupportedType, "batch_test.valuerOf", []string{"SECRET-upper"}},
		{"Valuer returning NaN", "Kolkata", valuerOf{math.NaN()}, batch.ErrNotFinite, "batch_test.valuerOf", nil},
		{"Valuer error", "Kolkata", failingValuer{}, errValuer, "batch_test.failingValuer", nil},
		{"NaN", "Kolkata", math.NaN(), batch.ErrNotFinite, "float64", nil},
		{"+Inf", "Kolkata", math.Inf(1), batch.ErrNotFinite, "float64", []string{"+Inf"}},
		{"-Inf", "Kolkata", math.Inf(-1), batch.ErrNotFinite, "float64", []string{"-Inf"}},
		{"float32 NaN", "Kolkata", float32(math.NaN()), batch.ErrNotFinite, "float32", nil},
		{"float32 +Inf", "Kolkata", float32(math.Inf(1)), batch.ErrNotFinite, "float32", []string{"+Inf"}},
		{"float32 -Inf", "Kolkata", float32(math.Inf(-1)), batch.ErrNotFinite, "float32", []string{"-Inf"}},
		{"pointer to NaN", "Kolkata", ref(math.NaN()), batch.ErrNotFinite, "*float64", nil},
		{"sql.NullFloat64 +Inf", "Kolkata", sql.NullFloat64{Float64: math.Inf(1), Valid: true}, batch.ErrNotFinite, "sql.NullFloat64", []string{"+Inf"}},
		{"year 0", "Kolkata", time.Date(0, 6, 1, 12, 0, 0, 0, time.UTC), batch.ErrTimeRange, "time.Time", []string{"0000-06-01"}},
		{"year 10000", "New York", year10000.Add(24 * time.Hour), batch.ErrTimeRange, "time.Time", []string{"10000-01-03"}},
		{"year 10000 behind a pointer", "Kolkata", ref(year10000), batch.ErrTimeRange, "*time.Time", []string{"10000-01-02"}},
		{"sql.NullTime year 10000", "Kolkata", sql.NullTime{Time: year10000, Valid: true}, batch.ErrTimeRange, "sql.NullTime", []string{"10000-01-02"}},
		// In range where they were made, out of range in the driver's loc.
		{"9999-12-31 23:00 UTC is year 10000 in Kolkata", "Kolkata", time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC), batch.ErrTimeRange, "time.Time", []string{"9999-12-31", "10000-01-01"}},
		{"0001-01-01 02:00 UTC is year 0 in New York", "New York", time.Date(1, 1, 1, 2, 0, 0, 0, time.UTC), batch.ErrTimeRange, "time.Time", []string{"0001-01-01", "0000-12-31"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := handles[tc.loc]
			t.Cleanup(func() { mustExec(t, h.db, "DELETE FROM `"+table+"`") })
			res, err := batch.Insert(context.Background(), h.db, batch.Values(table, []string{"id", "s", "v"}, badRows(tc.value)),
				batch.MaxRows(100), batch.DriverConfig(h.cfg))
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("Insert error = %v, want %v", err, tc.wantIs)
			}
			var ve *batch.ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("Insert error %T is not a *batch.ValueError", err)
			}
			want := &batch.ValueError{Row: badRow, Column: "v", Type: tc.wantType}
			if d := cmp.Diff(want, ve, cmpopts.IgnoreFields(batch.ValueError{}, "Err")); d != "" {
				t.Errorf("ValueError (-want +got):\n%s", d)
			}
			assertNoLeak(t, err, tc.leaks...)
			wantNothingSent(t, res, inputRows, ignoreElapsed, h.db, table)
		})
	}
}

// TestInputTimeInDriverLoc checks the other side of the year check: a time
// whose year is outside 1..9999 where it was made but inside in the
// driver's loc is sent, and comes back as the same instant.
func TestInputTimeInDriverLoc(t *testing.T) {
	db, cfg := sharedDB(t, "parseTime=true&loc=America%2FNew_York")
	at := time.Date(10000, 1, 1, 1, 0, 0, 0, time.UTC) // 9999-12-31 20:00 in New York
	table := newTable(t, db, "id INT PRIMARY KEY, v DATETIME")
	if _, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, [][]any{{1, at}}), batch.DriverConfig(cfg)); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if d := cmp.Diff([]time.Time{at}, readColumn[time.Time](t, db, table, "v")); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
}

// TestInputTimeRangeWithoutConfig: without DriverConfig the package cannot see
// the driver's loc. A time whose year is inside 1..9999 in the driver's loc
// must still be written: the year check must not refuse it for being out
// of range in UTC, and the driver, which knows its loc, accepts it. And a
// time the driver refuses (out of range in its loc, inside in UTC) must be
// reported as not sent, not as an unknown outcome: the driver refuses
// before writing anything.
func TestInputTimeRangeWithoutConfig(t *testing.T) {
	db, _ := sharedDB(t, "parseTime=true&loc=America%2FNew_York")
	ctx := context.Background()

	t.Run("in range in the driver's loc only: written", func(t *testing.T) {
		at := time.Date(9999, 12, 31, 23, 0, 0, 0, newYork) // 10000-01-01 04:00 UTC
		table := newTable(t, db, "id INT PRIMARY KEY, v DATETIME")
		res, err := batch.Insert(ctx, db, batch.Values(table, []string{"id", "v"}, [][]any{{1, at}}))
		if err != nil {
			t.Fatalf("Insert of %v (driver loc New York, no DriverConfig): %v", at, err)
		}
		if res.Rows != 1 {
			t.Errorf("Result.Rows = %d, want 1", res.Rows)
		}
		if d := cmp.Diff([]time.Time{at}, readColumn[time.Time](t, db, table, "v")); d != "" {
			t.Errorf("read back (-want +got):\n%s", d)
		}
	})

	t.Run("out of range in the driver's loc only: not sent", func(t *testing.T) {
		rows := badRows(time.Date(1, 1, 1, 2, 0, 0, 0, time.UTC)) // year 0 in New York
		table := newTable(t, db, "id INT PRIMARY KEY, s TEXT, v TEXT")
		// Retries are off: a chunk taken for an unknown outcome is otherwise
		// checked and resent for 30 s, failing the same way each time.
		res, err := batch.Insert(ctx, db, batch.Values(table, []string{"id", "s", "v"}, rows), batch.MaxRows(100),
			batch.Retry(batch.RetryPolicy{MaxElapsed: -1}))
		if err == nil {
			t.Fatal("Insert succeeded; the driver cannot encode year 0")
		}
		var uo *batch.UnknownOutcomeError
		if errors.As(err, &uo) || len(res.Unknown) > 0 {
			t.Errorf("Insert error = %v, Result.Unknown = %v: the driver refused before writing, the outcome is known", err, res.Unknown)
		}
		written := countRows(t, db, table)
		if int64(written) != res.Rows {
			t.Errorf("table holds %d rows, Result.Rows = %d", written, res.Rows)
		}
		if got := res.Rows + int64(rangesLen(res.NotSent)); got != inputRows {
			t.Errorf("Written %v + NotSent %v cover %d rows, want %d", res.Written, res.NotSent, got, inputRows)
		}
	})
}

func rangesLen(rs []batch.Range) int {
	n := 0
	for _, r := range rs {
		n += r.Len()
	}
	return n
}

func TestInputArity(t *testing.T) {
	db, _ := sharedDB(t, "")
	cases := []struct {
		name string
		row  int
		vals []any
	}{
		{"first row short", 0, []any{0}},
		{"a row too long", 7, []any{7, "ok", leakMarker}},
		{"last row empty", inputRows - 1, []any{}},
		{"nil row", badRow, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, db, "id INT PRIMARY KEY, s TEXT")
			rows := make([][]any, inputRows)
			for i := range rows {
				rows[i] = []any{i, "ok"}
			}
			rows[tc.row] = tc.vals
			res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "s"}, rows), batch.MaxRows(100))
			var ae *batch.ArityError
			if !errors.As(err, &ae) {
				t.Fatalf("Insert error = %v, want a *batch.ArityError", err)
			}
			if d := cmp.Diff(&batch.ArityError{Row: tc.row, Got: len(tc.vals), Want: 2}, ae); d != "" {
				t.Errorf("ArityError (-want +got):\n%s", d)
			}
			assertNoLeak(t, err)
			wantNothingSent(t, res, inputRows, ignoreElapsed, db, table)
		})
	}
}

func TestInputNames(t *testing.T) {
	db, _ := sharedDB(t, "")
	table := newTable(t, db, "id INT PRIMARY KEY, v TEXT")
	rows := [][]any{{1, "a"}, {2, "b"}}
	cases := []struct {
		name    string
		table   string
		columns []string
		rows    [][]any
		wantIs  error
	}{
		{"empty table", "", []string{"id", "v"}, rows, batch.ErrEmptyName},
		{"empty schema", "." + table, []string{"id", "v"}, rows, batch.ErrEmptyName},
		{"empty name after the schema", "test.", []string{"id", "v"}, rows, batch.ErrEmptyName},
		{"empty column", table, []string{"id", ""}, rows, batch.ErrEmptyName},
		{"duplicate column", table, []string{"id", "v", "id"}, [][]any{{1, "a", 1}, {2, "b", 2}}, batch.ErrDuplicateColumn},
		{"duplicate column in another case", table, []string{"id", "v", "V"}, [][]any{{1, "a", "a"}, {2, "b", "b"}}, batch.ErrDuplicateColumn},
		{"no columns", table, nil, [][]any{{}, {}}, batch.ErrNoColumns},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := batch.Insert(context.Background(), db, batch.Values(tc.table, tc.columns, tc.rows))
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("Insert error = %v, want %v", err, tc.wantIs)
			}
			wantNothingSent(t, res, len(tc.rows), ignoreElapsed, db, table)
		})
	}
}

// TestInputQualifiedAndQuotedNames writes through "schema.table" and into
// identifiers that must be quoted: a reserved word, a backtick, a space.
func TestInputQualifiedAndQuotedNames(t *testing.T) {
	db, _ := sharedDB(t, "")
	ctx := context.Background()

	t.Run("schema.table", func(t *testing.T) {
		table := newTable(t, db, "id INT PRIMARY KEY, v TEXT")
		res, err := batch.Insert(ctx, db, batch.Values("test."+table, []string{"id", "v"}, [][]any{{1, "a"}, {2, "b"}}))
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		if n := countRows(t, db, table); n != 2 || res.Rows != 2 {
			t.Errorf("table holds %d rows, Result.Rows = %d; want 2 and 2", n, res.Rows)
		}
	})

	t.Run("quoted identifiers", func(t *testing.T) {
		table := "odd`name " + sanitize(t.Name())
		quoted := "`" + strings.ReplaceAll(table, "`", "``") + "`"
		mustExec(t, db, "DROP TABLE IF EXISTS "+quoted)
		mustExec(t, db, "CREATE TABLE "+quoted+" (`select` INT PRIMARY KEY, `a``b` TEXT, `sp ace` TEXT)")
		t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + quoted) })
		res, err := batch.Insert(ctx, db, batch.Values(table, []string{"select", "a`b", "sp ace"}, [][]any{{1, "x", "y"}}),
			batch.OnDuplicateKeyUpdateExcept("select"))
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		var got [3]string
		if err := db.QueryRow("SELECT `select`, `a``b`, `sp ace` FROM "+quoted).Scan(&got[0], &got[1], &got[2]); err != nil {
			t.Fatal(err)
		}
		if got != [3]string{"1", "x", "y"} || res.Rows != 1 {
			t.Errorf("read back %q, Result.Rows = %d; want [1 x y] and 1", got, res.Rows)
		}
	})
}

func TestInputOptions(t *testing.T) {
	db, _ := sharedDB(t, "")
	table := newTable(t, db, "id INT PRIMARY KEY, v TEXT")
	rows := [][]any{{1, "a"}, {2, "b"}, {3, "c"}}
	cases := []struct {
		name  string
		write func(context.Context, batch.DB, batch.Rows, ...batch.Option) (batch.Result, error)
		opts  []batch.Option
	}{
		{"Replace with Ignore", batch.Replace, []batch.Option{batch.Ignore()}},
		{"Replace with OnDuplicateKeyUpdate", batch.Replace, []batch.Option{batch.OnDuplicateKeyUpdate("v")}},
		{"Replace with OnDuplicateKeyUpdateExcept", batch.Replace, []batch.Option{batch.OnDuplicateKeyUpdateExcept("id")}},
		{"two OnDuplicateKeyUpdate", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdate("v"), batch.OnDuplicateKeyUpdate("v")}},
		{"OnDuplicateKeyUpdate and Except", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdate("v"), batch.OnDuplicateKeyUpdateExcept("id")}},
		{"OnDuplicateKeyUpdate of no column", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdate()}},
		{"OnDuplicateKeyUpdate of a column not inserted", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdate("nope")}},
		{"OnDuplicateKeyUpdateExcept of a column not inserted", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdateExcept("nope")}},
		{"OnDuplicateKeyUpdateExcept of every column", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdateExcept("id", "v")}},
		{"MaxRows(0)", batch.Insert, []batch.Option{batch.MaxRows(0)}},
		{"MaxRows(-1)", batch.Insert, []batch.Option{batch.MaxRows(-1)}},
		{"MaxBytes(0)", batch.Insert, []batch.Option{batch.MaxBytes(0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.write(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows), tc.opts...)
			if !errors.Is(err, batch.ErrOptions) {
				t.Fatalf("error = %v, want ErrOptions", err)
			}
			wantNothingSent(t, res, len(rows), ignoreElapsed, db, table)
		})
	}
}

// insertRecovering calls Insert and turns a panic into an error, so that one
// failing case does not end the test binary.
func insertRecovering(ctx context.Context, db batch.DB, rows batch.Rows) (res batch.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Insert panicked: %v", p)
		}
	}()
	return batch.Insert(ctx, db, rows)
}

// TestInputNilDB: a nil handle is refused with ErrNilDB, also a nil
// pointer of a handle type (a *sql.DB never opened), which an interface
// holding it does not compare equal to nil.
func TestInputNilDB(t *testing.T) {
	rows := batch.Values("t", []string{"id"}, [][]any{{1}, {2}})
	cases := []struct {
		name string
		db   batch.DB
	}{
		{"nil", nil},
		{"nil *sql.DB", (*sql.DB)(nil)},
		{"nil *sql.Tx", (*sql.Tx)(nil)},
		{"nil *sql.Conn", (*sql.Conn)(nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := insertRecovering(context.Background(), tc.db, rows)
			if !errors.Is(err, batch.ErrNilDB) {
				t.Fatalf("Insert error = %v, want ErrNilDB", err)
			}
			if d := cmp.Diff(allNotSent(2), res, ignoreElapsed); d != "" {
				t.Errorf("Result (-want +got):\n%s", d)
			}
		})
	}
}

// TestInputEmpty: no rows is not an error and opens nothing.
func TestInputEmpty(t *testing.T) {
	db, _ := sharedDB(t, "")
	table := newTable(t, db, "id INT PRIMARY KEY")
	res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id"}, nil))
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if d := cmp.Diff(batch.Result{}, res, ignoreElapsed); d != "" {
		t.Errorf("Result (-want +got):\n%s", d)
	}
}

// ownedHandle opens a caller-owned handle on db; finish ends it (Commit or
// Rollback for a transaction, Close for a connection).
type ownedHandle struct {
	name string
	open func(t *testing.T, db *sql.DB) (h batch.DB, finish func() error)
	// visible is whether the rows are in the table after finish.
	visible bool
}

var ownedHandles = []ownedHandle{
	{"Tx committed", func(t *testing.T, db *sql.DB) (batch.DB, func() error) {
		tx := ownedTx(t, db)
		return tx, tx.Commit
	}, true},
	{"Tx rolled back", func(t *testing.T, db *sql.DB) (batch.DB, func() error) {
		tx := ownedTx(t, db)
		return tx, tx.Rollback
	}, false},
	{"Conn", func(t *testing.T, db *sql.DB) (batch.DB, func() error) {
		conn := ownedConn(t, db)
		return conn, conn.Close
	}, true},
	{"Conn in a transaction rolled back", func(t *testing.T, db *sql.DB) (batch.DB, func() error) {
		conn := ownedConn(t, db)
		mustExec(t, conn, "BEGIN")
		return conn, func() error {
			_, err := conn.ExecContext(context.Background(), "ROLLBACK")
			return errors.Join(err, conn.Close())
		}
	}, false},
}

func ownedTx(t *testing.T, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func ownedConn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestInputCallerOwned(t *testing.T) {
	db, cfg := sharedDB(t, "")
	const n = 250
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i, fmt.Sprint("v", i)}
	}
	for _, h := range ownedHandles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, db, "id INT PRIMARY KEY, v TEXT")
			owned, finish := h.open(t, db)
			res, err := batch.Insert(context.Background(), owned, batch.Values(table, []string{"id", "v"}, rows), batch.MaxRows(100), batch.DriverConfig(cfg))
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			want := batch.Result{Rows: n, RowsAffected: n, Chunks: 3, Written: []batch.Range{{First: 0, End: n}}}
			if d := cmp.Diff(want, res, ignoreTiming); d != "" {
				t.Errorf("Result (-want +got):\n%s", d)
			}
			if err := finish(); err != nil {
				t.Fatal(err)
			}
			wantRows := map[bool]int{true: n, false: 0}[h.visible]
			if got := countRows(t, db, table); got != wantRows {
				t.Errorf("table holds %d rows after finishing, want %d", got, wantRows)
			}
		})
	}
}

// TestInputDuplicateInCallerOwned: a duplicate key on plain INSERT stops
// the batch at the chunk holding it. The *ChunkError names that chunk, the
// chunks before it are written (and stay unless rolled back), nothing is
// resent.
func TestInputDuplicateInCallerOwned(t *testing.T) {
	db, cfg := sharedDB(t, "")
	const n, dup, maxRows = 100, 47, 10 // row 47 repeats key 3: chunk [40, 50) fails
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i, "ok"}
	}
	rows[dup] = []any{3, leakMarker}
	for _, h := range ownedHandles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, db, "id INT PRIMARY KEY, v TEXT")
			owned, finish := h.open(t, db)
			res, err := batch.Insert(context.Background(), owned, batch.Values(table, []string{"id", "v"}, rows), batch.MaxRows(maxRows), batch.DriverConfig(cfg))
			var ce *batch.ChunkError
			if !errors.As(err, &ce) {
				t.Fatalf("Insert error = %v, want a *batch.ChunkError", err)
			}
			if want := (batch.Range{First: 40, End: 40 + maxRows}); ce.Range != want {
				t.Errorf("ChunkError rows %v, want %v", ce.Range, want)
			}
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1062 {
				t.Errorf("ChunkError does not wrap MySQL error 1062: %v", err)
			}
			assertNoLeak(t, err)
			want := batch.Result{Rows: 40, RowsAffected: 40, Chunks: 4,
				Written: []batch.Range{{First: 0, End: 40}}, NotSent: []batch.Range{{First: 40, End: n}}}
			if d := cmp.Diff(want, res, ignoreTiming); d != "" {
				t.Errorf("Result (-want +got):\n%s", d)
			}
			if err := finish(); err != nil {
				t.Fatal(err)
			}
			wantRows := map[bool]int{true: 40, false: 0}[h.visible]
			if got := countRows(t, db, table); got != wantRows {
				t.Errorf("table holds %d rows after finishing, want %d", got, wantRows)
			}
		})
	}
}

// TestInputNotStrict: a session whose sql_mode is not strict would let the
// server truncate values silently; the package refuses it unless told.
func TestInputNotStrict(t *testing.T) {
	db, _ := sharedDB(t, "sql_mode=%27%27")
	var mode string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || mode != "" {
		t.Fatalf("@@sql_mode = %q (%v), want empty", mode, err)
	}
	rows := [][]any{{1, "a"}, {2, "b"}, {3, "c"}}

	t.Run("refused", func(t *testing.T) {
		table := newTable(t, db, "id INT PRIMARY KEY, v VARCHAR(1)")
		res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows))
		if !errors.Is(err, batch.ErrNotStrict) {
			t.Fatalf("Insert error = %v, want ErrNotStrict", err)
		}
		wantNothingSent(t, res, len(rows), ignoreTiming, db, table)
	})

	t.Run("refused in a transaction", func(t *testing.T) {
		table := newTable(t, db, "id INT PRIMARY KEY, v VARCHAR(1)")
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		_, err = batch.Insert(context.Background(), tx, batch.Values(table, []string{"id", "v"}, rows))
		if !errors.Is(err, batch.ErrNotStrict) {
			t.Fatalf("Insert error = %v, want ErrNotStrict", err)
		}
	})

	t.Run("AllowNonStrict", func(t *testing.T) {
		table := newTable(t, db, "id INT PRIMARY KEY, v VARCHAR(1)")
		res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows), batch.AllowNonStrict())
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		if n := countRows(t, db, table); n != len(rows) || res.Rows != int64(len(rows)) {
			t.Errorf("table holds %d rows, Result.Rows = %d; want %d", n, res.Rows, len(rows))
		}
	})
}

// TestInputRefusedSetup checks that a connection the server refuses for its
// setup (account, database, a DSN system variable) fails the call at once,
// without waiting out the retry budget as a restarting server would be:
// nothing is retried and every row is reported not sent.
func TestInputRefusedSetup(t *testing.T) {
	ctx := context.Background()
	dsn := testserver.Shared(t)
	base, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := openDSN(t, dsn)
	table := newTable(t, admin, "id BIGINT PRIMARY KEY")
	for _, tc := range []struct {
		name   string
		change func(*mysql.Config)
		errno  uint16
	}{
		{"unknown system variable", func(c *mysql.Config) { c.Params = map[string]string{"no_such_variable_xyz": "1"} }, 1193},
		{"unknown database", func(c *mysql.Config) { c.DBName = "no_such_database_xyz" }, 1049},
		{"wrong password", func(c *mysql.Config) { c.Passwd = "not-the-password" }, 1045},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base.Clone()
			tc.change(cfg)
			db, err := sql.Open("mysql", cfg.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			res, err := batch.Insert(ctx, db, batch.Values(table, []string{"id"}, [][]any{{int64(1)}, {int64(2)}}))
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != tc.errno {
				t.Fatalf("err = %v, want MySQL error %d", err, tc.errno)
			}
			if res.Retries != 0 || res.Rows != 0 || len(res.NotSent) != 1 || res.NotSent[0] != (batch.Range{First: 0, End: 2}) {
				t.Errorf("Retries=%d Rows=%d NotSent=%v, want 0, 0, [[0, 2)]", res.Retries, res.Rows, res.NotSent)
			}
		})
	}
	if n := countRows(t, admin, table); n != 0 {
		t.Errorf("table holds %d rows, want 0", n)
	}
}
