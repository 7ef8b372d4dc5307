package batch_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // the driver's loc and the tests' locations must not depend on the host

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// These tests write every supported Go type into every column type through
// the real server, read the values back and compare them with go-cmp.
//
// The sessions are deliberately awkward: the server's time_zone is +05:30,
// the driver's loc is America/New_York, so a DATETIME holds New York wall
// clock and a TIMESTAMP is that wall clock read as +05:30; the values must
// still come back as the same instants. Every case is one column of a wide
// table of 2500 rows, written in eight statements cut by the default byte
// budget (DefaultBytes). The matrix runs with and
// without NO_BACKSLASH_ESCAPES (values travel as parameters of prepared
// statements, so neither escaping nor its absence may change a byte), and
// once more without DriverConfig (the package then assumes the driver's
// defaults and must size times conservatively).

const (
	// rtRows is enough rows for three statements at the default of 1000 rows
	// when rows, not bytes, end them.
	rtRows = 2500
	// tzParams puts the server session and the driver in different zones,
	// neither of them UTC.
	tzParams = "parseTime=true&loc=America%2FNew_York&time_zone=%27%2B05%3A30%27"
	// noBackslashParams adds NO_BACKSLASH_ESCAPES to a strict sql_mode.
	noBackslashParams = "&sql_mode=%27STRICT_TRANS_TABLES%2CNO_BACKSLASH_ESCAPES%27"
)

var (
	newYork = mustLoadLocation("America/New_York")
	kolkata = mustLoadLocation("Asia/Kolkata")
)

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// Named types: the package must send them as their underlying kind.
type (
	ID        int64
	Name      string
	BlobBytes []byte
	FlagBool  bool
	TempFloat float64
)

// upper is a driver.Valuer that sends its text in upper case.
type upper string

func (u upper) Value() (driver.Value, error) { return strings.ToUpper(string(u)), nil }

// countingValuer counts the calls to its Value method.
type countingValuer struct {
	calls *atomic.Int64
	v     int64
}

func (c countingValuer) Value() (driver.Value, error) {
	c.calls.Add(1)
	return c.v, nil
}

func ref[T any](v T) *T { return &v }

// rtCase is one column type, the values written into it and what reading
// the column back must give.
type rtCase struct {
	name    string
	colType string
	in      []any
	// check reads column of table in id order and compares it with the
	// wanted values repeated over n rows.
	check func(t *testing.T, db *sql.DB, table, column string, n int)
}

// rt makes an rtCase whose column is read back into T; want[i] is what in[i]
// must read back as.
func rt[T any](name, colType string, in []any, want []T, opts ...cmp.Option) rtCase {
	if len(in) != len(want) {
		panic("rt " + name + ": in and want differ in length")
	}
	return rtCase{name: name, colType: colType, in: in, check: func(t *testing.T, db *sql.DB, table, column string, n int) {
		t.Helper()
		got := readColumn[T](t, db, table, column)
		wantAll := make([]T, n)
		for i := range wantAll {
			wantAll[i] = want[i%len(want)]
		}
		if d := cmp.Diff(wantAll, got, opts...); d != "" {
			t.Errorf("column %s read back (-want +got):\n%s", colType, d)
		}
	}}
}

// readColumn reads one column of table in id order into T. The query has an
// argument so that it is a prepared statement and the server answers in the
// binary protocol: FLOAT arrives as its four bytes and DATETIME with its
// microseconds, with no decimal rendering in between.
func readColumn[T any](t *testing.T, db *sql.DB, table, column string) []T {
	t.Helper()
	rows, err := db.Query("SELECT `"+column+"` FROM `"+table+"` WHERE id >= ? ORDER BY id", 0)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	var got []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return got
}

// cycleRows returns n rows (id, v) with v taking the values of in in turn.
func cycleRows(in []any, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i, in[i%len(in)]}
	}
	return rows
}

// allBytes is every byte value once.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// toMicros is what DATETIME(6) and TIMESTAMP(6) keep of t: MariaDB truncates
// the fraction to microseconds (it does not round unless sql_mode has
// TIME_ROUND_FRACTIONAL).
func toMicros(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// jsonValue compares JSON texts by meaning: MariaDB's JSON is LONGTEXT and
// may keep or change spacing.
var jsonValue = cmp.Transformer("json", func(s *string) any {
	if s == nil {
		return "<NULL>"
	}
	var v any
	if err := json.Unmarshal([]byte(*s), &v); err != nil {
		return "invalid JSON: " + *s
	}
	return v
})

// byteSlices compares []byte values whole (cmp's element-wise default is
// slow under -race) and keeps nil (NULL) apart from empty.
var byteSlices = cmp.Comparer(func(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) })

// nastyStrings are texts that would break a careless escaper: quotes,
// backslashes, NUL, CR LF, Ctrl-Z, 4-byte characters.
var nastyStrings = []string{
	"",
	"plain",
	"emoji 😀🎉 clef 𝄞 han 漢字",
	`single ' double " backtick ` + "`",
	`back\slash \' \" \\ \n \0 %_`,
	"nul\x00inside\x00",
	"crlf\r\nline\n\r",
	"ctrl-z \x1a end",
	"'; DROP TABLE x; --",
	strings.Repeat("é😀'\\", 50),
}

func asAnys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// roundTripCases is the matrix of column types and Go types.
func roundTripCases() []rtCase {
	var nilTime *time.Time
	var nilInt *int64
	var nilString *string
	var nilBytes []byte
	var nilRaw json.RawMessage
	nanos := time.Date(2024, 7, 15, 13, 45, 30, 123456789, time.UTC)
	nyMidnight := time.Date(2024, 1, 1, 0, 0, 0, 0, newYork)
	utcMidnight := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // 2023-12-31 19:00 in New York
	kolkataTime := time.Date(2024, 3, 10, 2, 30, 0, 999999999, kolkata)
	minNY := time.Date(1, 1, 1, 0, 0, 0, 0, newYork)
	// The largest wall clock in New York whose year is 9999 in UTC too
	// (without DriverConfig the package checks the year in UTC: see
	// TestInputTimeRangeWithoutConfig).
	maxNY := time.Date(9999, 12, 31, 18, 59, 59, 999999999, newYork)
	tsLow := time.Date(1970, 1, 2, 0, 0, 0, 1000, time.UTC)
	tsHigh := time.Date(2038, 1, 18, 23, 59, 59, 999999000, time.UTC)
	// 5000 bytes: sent as long data, since a 1000-row statement of this
	// matrix has over 30,000 parameters and the driver sends a value of
	// maxAllowedPacket/(parameters+1) bytes or more (about 2 KB here) apart.
	long := strings.Repeat("0123456789abcdef😀", 250)
	calls := new(atomic.Int64)

	return []rtCase{
		// Integers at their extremes, through every Go integer kind.
		rt("tinyint int8", "TINYINT", asAnys([]int8{math.MinInt8, -1, 0, math.MaxInt8}), []int8{math.MinInt8, -1, 0, math.MaxInt8}),
		rt("tinyint unsigned uint8", "TINYINT UNSIGNED", asAnys([]uint8{0, 1, math.MaxUint8}), []uint8{0, 1, math.MaxUint8}),
		rt("smallint int16", "SMALLINT", asAnys([]int16{math.MinInt16, math.MaxInt16}), []int16{math.MinInt16, math.MaxInt16}),
		rt("smallint unsigned uint16", "SMALLINT UNSIGNED", asAnys([]uint16{0, math.MaxUint16}), []uint16{0, math.MaxUint16}),
		rt("mediumint int32", "MEDIUMINT", asAnys([]int32{-1 << 23, 1<<23 - 1}), []int32{-1 << 23, 1<<23 - 1}),
		rt("mediumint unsigned uint32", "MEDIUMINT UNSIGNED", asAnys([]uint32{0, 1<<24 - 1}), []uint32{0, 1<<24 - 1}),
		rt("int int32", "INT", asAnys([]int32{math.MinInt32, 0, math.MaxInt32}), []int32{math.MinInt32, 0, math.MaxInt32}),
		rt("int unsigned uint32", "INT UNSIGNED", asAnys([]uint32{0, math.MaxUint32}), []uint32{0, math.MaxUint32}),
		rt("bigint int64", "BIGINT", asAnys([]int64{math.MinInt64, -1, 0, math.MaxInt64}), []int64{math.MinInt64, -1, 0, math.MaxInt64}),
		rt("bigint int", "BIGINT", asAnys([]int{math.MinInt, math.MaxInt}), []int{math.MinInt, math.MaxInt}),
		rt("bigint unsigned uint64", "BIGINT UNSIGNED", asAnys([]uint64{0, math.MaxInt64 + 1, math.MaxUint64}), []uint64{0, math.MaxInt64 + 1, math.MaxUint64}),
		rt("bigint unsigned uint", "BIGINT UNSIGNED", asAnys([]uint{0, math.MaxUint}), []uint{0, math.MaxUint}),
		rt("bigint named ID", "BIGINT", []any{ID(-7), ID(math.MaxInt64)}, []ID{-7, math.MaxInt64}),
		rt("bigint pointers", "BIGINT", []any{ref(int64(42)), ref(math.MinInt64), nilInt, ref(ref(int32(-3)))}, []*int64{ref(int64(42)), ref(int64(math.MinInt64)), nil, ref(int64(-3))}),
		rt("bigint sql.NullInt64", "BIGINT", []any{sql.NullInt64{Int64: 9, Valid: true}, sql.NullInt64{}, sql.Null[int64]{V: -9, Valid: true}}, []sql.NullInt64{{Int64: 9, Valid: true}, {}, {Int64: -9, Valid: true}}),
		// A Valuer may return any integer kind; the package widens it.
		rt("bigint Valuer", "BIGINT", []any{countingValuer{calls, 5}, countingValuer{calls, -5}, valuerOf{int(7)}, valuerOf{uint8(8)}}, []int64{5, -5, 7, 8}),
		rt("bool", "BOOL", []any{true, false, ref(true), (*bool)(nil), FlagBool(true), sql.NullBool{}}, []*bool{ref(true), ref(false), ref(true), nil, ref(true), nil}),

		// Exact and approximate numbers.
		rt("decimal from string", "DECIMAL(30,10)",
			[]any{"12345678901234567890.0123456789", "-12345678901234567890.0123456789", "0.0000000001", "1.5", "0", Name("-0.25")},
			[]string{"12345678901234567890.0123456789", "-12345678901234567890.0123456789", "0.0000000001", "1.5000000000", "0.0000000000", "-0.2500000000"}),
		rt("float float32", "FLOAT",
			asAnys([]float32{0.1, -1.5, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 16777217, 0}),
			[]float32{0.1, -1.5, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 16777216, 0}),
		// A float64 into FLOAT keeps float32 precision.
		rt("float float64", "FLOAT", asAnys([]float64{0.1, 1.0 / 3}), []float32{0.1, 1.0 / 3}),
		rt("double float64", "DOUBLE",
			[]any{0.1, -1e-300, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0 / 3, 0.0, TempFloat(2.5), ref(-0.5)},
			[]float64{0.1, -1e-300, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0 / 3, 0, 2.5, -0.5}),
		// A float32 widens to float64 on the way, as in the driver: 0.1
		// becomes 0.10000000149011612, which DOUBLE keeps.
		rt("double float32 widening", "DOUBLE", asAnys([]float32{0.1, 1.5}), []float64{0.10000000149011612, 1.5}),

		// Times: DATETIME holds the driver's wall clock (New York), TIMESTAMP
		// converts it from the session's +05:30; both must give back the
		// same instants, truncated to microseconds.
		rt("datetime6", "DATETIME(6)",
			[]any{nanos, nyMidnight, utcMidnight, kolkataTime, minNY, maxNY, time.Time{}, ref(nanos), nilTime,
				sql.NullTime{Time: nanos, Valid: true}, sql.NullTime{}, valuerOf{nyMidnight}},
			[]sql.NullTime{{Time: toMicros(nanos), Valid: true}, {Time: nyMidnight, Valid: true}, {Time: utcMidnight, Valid: true},
				{Time: toMicros(kolkataTime), Valid: true}, {Time: minNY, Valid: true}, {Time: toMicros(maxNY), Valid: true},
				{Time: time.Time{}, Valid: true}, {Time: toMicros(nanos), Valid: true}, {}, {Time: toMicros(nanos), Valid: true}, {},
				{Time: nyMidnight, Valid: true}}),
		rt("timestamp6", "TIMESTAMP(6) NULL DEFAULT NULL",
			[]any{nanos, nyMidnight, utcMidnight, kolkataTime, tsLow, tsHigh, time.Time{}, nilTime, sql.NullTime{}},
			[]sql.NullTime{{Time: toMicros(nanos), Valid: true}, {Time: nyMidnight, Valid: true}, {Time: utcMidnight, Valid: true},
				{Time: toMicros(kolkataTime), Valid: true}, {Time: tsLow, Valid: true}, {Time: tsHigh, Valid: true},
				{Time: time.Time{}, Valid: true}, {}, {}}),
		// DATE keeps the date of the driver's wall clock: midnight UTC is
		// 19:00 the day before in New York (the server drops the time with a
		// note, which strict mode allows).
		rt("date", "DATE",
			[]any{nyMidnight, minNY, time.Date(9999, 12, 31, 0, 0, 0, 0, newYork), time.Time{}, utcMidnight, nilTime},
			[]*time.Time{ref(nyMidnight), ref(minNY), ref(time.Date(9999, 12, 31, 0, 0, 0, 0, newYork)), ref(time.Time{}),
				ref(time.Date(2023, 12, 31, 0, 0, 0, 0, newYork)), nil}),

		// Text: every escaping hazard, and 4-byte UTF-8.
		rt("varchar utf8mb4", "VARCHAR(255)", asAnys(nastyStrings), nastyStrings),
		rt("text utf8mb4", "TEXT", asAnys(nastyStrings), nastyStrings),
		rt("mediumtext long data", "MEDIUMTEXT", append(asAnys(nastyStrings), long, long+"'\\"), append(slices.Clone(nastyStrings), long, long+"'\\")),
		// CHAR drops trailing spaces on read (no PAD_CHAR_TO_FULL_LENGTH).
		rt("char", "CHAR(20)", []any{"a", "a  ", "😀'\\\x00", ""}, []string{"a", "a", "😀'\\\x00", ""}),
		rt("varchar named, pointers, nulls", "VARCHAR(50)",
			[]any{Name("named"), ref("pointer"), ref(Name("named pointer")), nilString, nil, sql.NullString{String: "ns", Valid: true}, sql.NullString{},
				upper("valuer"), (*sql.NullString)(nil), &sql.NullString{String: "pns", Valid: true}, ref(upper("pointer to valuer"))},
			[]*string{ref("named"), ref("pointer"), ref("named pointer"), nil, nil, ref("ns"), nil, ref("VALUER"), nil, ref("pns"), ref("POINTER TO VALUER")}),

		// Bytes: all 256 values; empty is not NULL.
		rt("varbinary", "VARBINARY(300)",
			[]any{allBytes(), []byte{}, nilBytes, BlobBytes("named"), []byte("'\\\x00\x1a"), nil, BlobBytes(nil), ref([]byte{7})},
			[][]byte{allBytes(), {}, nil, []byte("named"), []byte("'\\\x00\x1a"), nil, nil, {7}}, byteSlices),
		rt("blob", "BLOB", []any{allBytes(), []byte{}, nilBytes, "text into blob"}, [][]byte{allBytes(), {}, nil, []byte("text into blob")}, byteSlices),
		// BINARY pads with NUL bytes.
		rt("binary", "BINARY(4)", []any{[]byte{1, 2}, []byte{}, []byte{0xff, 0, 0x5c, 0x27}}, [][]byte{{1, 2, 0, 0}, {0, 0, 0, 0}, {0xff, 0, 0x5c, 0x27}}, byteSlices),

		// JSON, compared by meaning.
		rt("json", "JSON",
			[]any{`{"a": 1, "b": [true, null, "😀"], "q": "'\\\""}`, json.RawMessage(`[1, 2.5, "x\"y"]`), nilRaw, json.RawMessage(`"str"`), ref(`{}`)},
			[]*string{ref(`{"a":1,"b":[true,null,"😀"],"q":"'\\\""}`), ref(`[1,2.5,"x\"y"]`), nil, ref(`"str"`), ref(`{}`)},
			jsonValue),
	}
}

// matrixRuns are the sessions and options the matrix runs under: both
// sql_modes with DriverConfig, and once without it, where the package assumes
// the driver's defaults (UTC) and must size the times conservatively.
var matrixRuns = []struct {
	name            string
	params          string
	wantNoBackslash bool
	opts            func(cfg *mysql.Config) []batch.Option
}{
	{"strict/DriverConfig", tzParams, false, withConfig},
	{"no_backslash_escapes/DriverConfig", tzParams + noBackslashParams, true, withConfig},
	{"strict/no config", tzParams, false, noConfig},
}

func withConfig(cfg *mysql.Config) []batch.Option { return []batch.Option{batch.DriverConfig(cfg)} }
func noConfig(*mysql.Config) []batch.Option       { return nil }

// checkSession fails t unless the pool's sessions have the sql_mode and
// time_zone the DSN asked for.
func checkSession(t *testing.T, db *sql.DB, wantNoBackslash bool) {
	t.Helper()
	var mode, zone string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode, @@SESSION.time_zone").Scan(&mode, &zone); err != nil {
		t.Fatal(err)
	}
	if got := strings.Contains(mode, "NO_BACKSLASH_ESCAPES"); got != wantNoBackslash {
		t.Fatalf("@@sql_mode = %q: NO_BACKSLASH_ESCAPES = %v, want %v", mode, got, wantNoBackslash)
	}
	if !strings.Contains(mode, "STRICT_TRANS_TABLES") {
		t.Fatalf("@@sql_mode = %q, want STRICT_TRANS_TABLES", mode)
	}
	if zone != "+05:30" {
		t.Fatalf("@@time_zone = %q, want +05:30", zone)
	}
}

// ignoreTiming drops the Result fields that vary from run to run.
var ignoreTiming = cmpopts.IgnoreFields(batch.Result{}, "Bytes", "MinPacketLimit", "Elapsed")

// wideRows builds one table row per input row: column j of row i holds
// value i mod len of case j, so every case cycles through its values.
func wideRows(cases []rtCase, n int) (columns []string, defs string, rows [][]any) {
	columns = []string{"id"}
	defs = "id INT PRIMARY KEY"
	for j, tc := range cases {
		name := fmt.Sprintf("c%02d", j)
		columns = append(columns, name)
		defs += ", " + name + " " + tc.colType
	}
	rows = make([][]any, n)
	for i := range rows {
		rows[i] = make([]any, len(columns))
		rows[i][0] = i
		for j, tc := range cases {
			rows[i][j+1] = tc.in[i%len(tc.in)]
		}
	}
	return columns, defs, rows
}

// TestRoundTrip writes every case of the matrix as one column of a wide
// table, 2500 rows in statements cut by the default placeholder target and
// byte budget, and reads each column back.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, run := range matrixRuns {
		t.Run(run.name, func(t *testing.T) {
			t.Parallel()
			db, cfg := sharedDB(t, run.params)
			checkSession(t, db, run.wantNoBackslash)
			packet := queryInt(t, db, "SELECT @@max_allowed_packet")
			cases := roundTripCases()
			columns, defs, rows := wideRows(cases, rtRows)
			table := newTable(t, db, defs)
			res, err := batch.Insert(ctx, db, batch.Values(table, columns, rows), run.opts(cfg)...)
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			// A row has 35 values, so the default target is 8,000/35 = 228
			// rows. At 228 rows the long-data threshold is 64 MiB/(228*35+1)
			// = 8,408, so the two 5,000-byte values of "mediumtext long
			// data" (rows i%12 = 10 and 11) are inline: ~1,400 bytes a row
			// on average with types and NULL bitmap, ~180 rows fit in
			// DefaultBytes (248 KiB = 253,952), rounded down to the shape
			// 128 (192 would take over 260 KB); at 128 rows the threshold
			// is 64 MiB/(128*35+1) = 14,976, still inline. 2,500 rows are 19
			// statements of 128 and one of the last 68: 20. Without
			// DriverConfig times are sized up to 9 bytes larger (~8 bytes a
			// row here), which moves no boundary.
			want := batch.Result{Rows: rtRows, RowsAffected: rtRows, Chunks: 20, Written: []batch.Range{{First: 0, End: rtRows}}}
			if d := cmp.Diff(want, res, ignoreTiming); d != "" {
				t.Errorf("Result (-want +got):\n%s", d)
			}
			if res.Bytes <= 0 || res.MinPacketLimit != packet-1 {
				t.Errorf("Result.Bytes = %d, MinPacketLimit = %d; want > 0 and %d (max_allowed_packet - 1)", res.Bytes, res.MinPacketLimit, packet-1)
			}
			for j, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.check(t, db, table, columns[j+1], rtRows)
				})
			}
		})
	}
}

// TestRoundTripValuerCalledOnce checks that a driver.Valuer's Value method
// runs exactly once per value: the package checks, sizes and sends the one
// result.
func TestRoundTripValuerCalledOnce(t *testing.T) {
	db, cfg := sharedDB(t, tzParams)
	for _, run := range matrixRuns {
		t.Run(run.name, func(t *testing.T) {
			calls := new(atomic.Int64)
			in := make([][]any, rtRows)
			for i := range in {
				in[i] = []any{i, countingValuer{calls, int64(-i)}, &sql.NullString{String: "x", Valid: i%2 == 0}}
			}
			table := newTable(t, db, "id INT PRIMARY KEY, v BIGINT, s TEXT")
			opts := append(run.opts(cfg), batch.MaxRows(300))
			res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v", "s"}, in), opts...)
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			if got := calls.Load(); got != rtRows {
				t.Errorf("Value called %d times for %d values, want exactly once each", got, rtRows)
			}
			if res.Rows != rtRows || res.Chunks != 9 {
				t.Errorf("Result.Rows = %d, Chunks = %d; want %d and 9", res.Rows, res.Chunks, rtRows)
			}
			got := readColumn[int64](t, db, table, "v")
			want := make([]int64, rtRows)
			for i := range want {
				want[i] = int64(-i)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("read back (-want +got):\n%s", d)
			}
		})
	}
}

// keyedRow is one row of the keyed table.
type keyedRow struct {
	ID   int64
	Name string
	Qty  int64
}

func readKeyedRows(t *testing.T, db *sql.DB, table string) []keyedRow {
	t.Helper()
	rows, err := db.Query("SELECT id, name, qty FROM `" + table + "` ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []keyedRow
	for rows.Next() {
		var r keyedRow
		if err := rows.Scan(&r.ID, &r.Name, &r.Qty); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRoundTripDuplicateKeys writes rows that collide with existing keys,
// and key 4 twice in the same input, with every duplicate-key policy; the
// outcome must not depend on how the rows are cut into statements.
func TestRoundTripDuplicateKeys(t *testing.T) {
	db, cfg := sharedDB(t, "")
	input := [][]any{{2, "B", 20}, {4, "d", 4}, {4, "D", 40}, {3, "C", 30}}
	cases := []struct {
		name  string
		write func(context.Context, batch.DB, batch.Rows, ...batch.Option) (batch.Result, error)
		opts  []batch.Option
		want  []keyedRow
		// wantAffected is the server's count: 1 per insert, 2 per update
		// or replace, 0 per ignored row.
		wantAffected int64
	}{
		{"replace: later row wins", batch.Replace, nil,
			[]keyedRow{{1, "a", 1}, {2, "B", 20}, {3, "C", 30}, {4, "D", 40}}, 7},
		{"on duplicate key update name: later row wins", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdate("name")},
			[]keyedRow{{1, "a", 1}, {2, "B", 2}, {3, "C", 3}, {4, "D", 4}}, 7},
		{"on duplicate key update except id: later row wins", batch.Insert, []batch.Option{batch.OnDuplicateKeyUpdateExcept("id")},
			[]keyedRow{{1, "a", 1}, {2, "B", 20}, {3, "C", 30}, {4, "D", 40}}, 7},
		{"ignore: first row wins", batch.Insert, []batch.Option{batch.Ignore()},
			[]keyedRow{{1, "a", 1}, {2, "b", 2}, {3, "c", 3}, {4, "d", 4}}, 1},
	}
	for _, maxRows := range []int{batch.DefaultRows, 2, 1} {
		for _, tc := range cases {
			t.Run(tc.name+"/"+strconv.Itoa(maxRows)+" rows per statement", func(t *testing.T) {
				t.Parallel()
				table := newTable(t, db, "id BIGINT PRIMARY KEY, name VARCHAR(10) NOT NULL, qty BIGINT NOT NULL")
				mustExec(t, db, "INSERT INTO `"+table+"` VALUES (1,'a',1),(2,'b',2),(3,'c',3)")
				opts := append([]batch.Option{batch.MaxRows(maxRows), batch.DriverConfig(cfg)}, tc.opts...)
				res, err := tc.write(context.Background(), db, batch.Values(table, []string{"id", "name", "qty"}, input), opts...)
				if err != nil {
					t.Fatalf("write: %v", err)
				}
				chunks := (len(input) + maxRows - 1) / maxRows
				want := batch.Result{Rows: 4, RowsAffected: tc.wantAffected, Chunks: chunks, Written: []batch.Range{{First: 0, End: 4}}}
				if d := cmp.Diff(want, res, ignoreTiming); d != "" {
					t.Errorf("Result (-want +got):\n%s", d)
				}
				if d := cmp.Diff(tc.want, readKeyedRows(t, db, table)); d != "" {
					t.Errorf("table (-want +got):\n%s", d)
				}
			})
		}
	}
}

// wireCounter adds up the payload of the COM_STMT_EXECUTE (0x17) and
// COM_STMT_SEND_LONG_DATA (0x18) packets of the INSERT and REPLACE
// statements written on the connections it dials: what Result.Bytes claims
// to count. Statements the package prepares for its own queries (reading
// the table's keys) are told apart by their statement id, which the server
// gives in its answer to COM_STMT_PREPARE (0x16).
type wireCounter struct {
	bytes   atomic.Int64
	execute atomic.Int64 // number of EXECUTE packets
	largest atomic.Int64 // largest EXECUTE payload
}

func (w *wireCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c, w: w, inserts: map[uint32]bool{}}
	cc.out.onPacket = cc.clientPacket
	cc.in.onPacket = cc.serverPacket
	return cc, nil
}

// packetParser cuts a byte stream into MySQL packets: a 4-byte header
// (3-byte little-endian payload length, sequence number) and the payload.
// It reports each packet once its first headLen payload bytes are in.
type packetParser struct {
	hdr      []byte
	seq      byte
	n, left  int
	head     []byte
	reported bool
	onPacket func(seq byte, head []byte, n int)
}

const headLen = 8 // command byte + "REPLACE" / statement id

func (pp *packetParser) feed(p []byte) {
	for len(p) > 0 {
		if pp.left == 0 {
			k := min(4-len(pp.hdr), len(p))
			pp.hdr = append(pp.hdr, p[:k]...)
			p = p[k:]
			if len(pp.hdr) < 4 {
				return
			}
			pp.n = int(pp.hdr[0]) | int(pp.hdr[1])<<8 | int(pp.hdr[2])<<16
			pp.seq, pp.left, pp.head, pp.reported = pp.hdr[3], pp.n, pp.head[:0], false
			pp.hdr = pp.hdr[:0]
			pp.report()
			continue
		}
		k := min(pp.left, len(p))
		want := min(headLen, pp.n) - len(pp.head)
		pp.head = append(pp.head, p[:min(k, max(want, 0))]...)
		pp.left -= k
		p = p[k:]
		pp.report()
	}
}

func (pp *packetParser) report() {
	if !pp.reported && len(pp.head) == min(headLen, pp.n) {
		pp.reported = true
		pp.onPacket(pp.seq, pp.head, pp.n)
	}
}

// countingConn watches one connection. The driver uses a connection from
// one goroutine at a time, but the mutex keeps the race detector honest.
type countingConn struct {
	net.Conn
	w *wireCounter

	mu       sync.Mutex
	out, in  packetParser
	pending  []bool          // PREPAREs awaiting their answer: is it an INSERT/REPLACE
	inserts  map[uint32]bool // statement ids of INSERT/REPLACE statements
	counting bool            // the current command is counted (for continuation packets)
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.feed(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.feed(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) clientPacket(seq byte, head []byte, n int) {
	if seq != 0 {
		// Handshake, or the continuation of a packet of 16 MiB - 1.
		if c.counting {
			c.w.bytes.Add(int64(n))
		}
		return
	}
	c.counting = false
	if n == 0 {
		return
	}
	switch head[0] {
	case 0x16:
		text := strings.ToUpper(string(head[1:]))
		c.pending = append(c.pending, strings.HasPrefix(text, "INSERT") || strings.HasPrefix(text, "REPLACE"))
	case 0x17, 0x18:
		c.counting = len(head) >= 5 && c.inserts[binary.LittleEndian.Uint32(head[1:5])]
		if c.counting {
			c.w.bytes.Add(int64(n))
		}
		if c.counting && head[0] == 0x17 {
			c.w.execute.Add(1)
			c.w.largest.Store(max(c.w.largest.Load(), int64(n)))
		}
	}
}

func (c *countingConn) serverPacket(seq byte, head []byte, n int) {
	if seq != 1 || len(c.pending) == 0 || n == 0 {
		return
	}
	// The first packet of the answer to COM_STMT_PREPARE: 0x00 and the
	// statement id, or an error packet.
	insert := c.pending[0]
	c.pending = c.pending[1:]
	if head[0] == 0x00 && len(head) >= 5 {
		c.inserts[binary.LittleEndian.Uint32(head[1:5])] = insert
	}
}

// TestRoundTripBytesMatchWire compares Result.Bytes with the payload of the
// EXECUTE and long-data packets actually written: with DriverConfig the
// package knows the driver's Loc and timeTruncate, and the count must be
// exact; without it the package assumes UTC and no truncation, and its
// count must bound the real one from above (the splitter relies on that
// bound to stay under the packet limit).
func TestRoundTripBytesMatchWire(t *testing.T) {
	nanos := time.Date(2024, 7, 15, 13, 45, 30, 123456789, time.UTC)
	values := []any{
		time.Date(2024, 1, 1, 0, 0, 0, 0, newYork),  // midnight in the driver's loc: 'YYYY-MM-DD'
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), // midnight in UTC only
		nanos, nanos.Truncate(time.Millisecond), time.Time{}, time.Date(2024, 1, 1, 5, 0, 0, 0, kolkata),
		"text", strings.Repeat("x", 300), []byte{}, allBytes(), nil, int8(-1), uint64(math.MaxUint64), 1.5, true,
		strings.Repeat("long ", 8000), // 40 KB: long data in 1000-row statements
	}
	cases := []struct {
		name   string
		params string
		opts   func(*mysql.Config) []batch.Option
		exact  bool
	}{
		{"DriverConfig", "", withConfig, true},
		{"DriverConfig timeTruncate", "&timeTruncate=1ms", withConfig, true},
		{"no config", "", noConfig, false},
		{"no config timeTruncate", "&timeTruncate=1ms", noConfig, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &wireCounter{}
			conn, cfg := dialedConnector(t, testserver.AddParams(testserver.Shared(t), tzParams+tc.params), w.dial)
			db := openConnector(t, conn)
			table := newTable(t, db, "id INT PRIMARY KEY, v LONGBLOB")
			res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, cycleRows(values, rtRows)), tc.opts(cfg)...)
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			wire := w.bytes.Load()
			// 2500 rows cycling through 16 values. At 1000 rows the
			// long-data threshold is 64 MiB/2001 = 33,537: the 40 KB value
			// goes as long data and a statement is ~57 KB, under
			// DefaultBytes (253,952): rows 0..1999 are 2 statements of
			// 1000. For the last 500 it is 64 MiB/1001 = 67,042: the 40 KB
			// value is inline (40,003 bytes, one row in 16), and a 16-row
			// cycle takes ~40.9 KB. 6 cycles (96 rows, ~245.5 KB) and the
			// 15 small rows of the 7th fit, its 40 KB row does not: 111
			// rows, rounded down to the shape 96. 500 = 5*96 + 20, so
			// 2 + 5 + 1 = 8 statements.
			if got := w.execute.Load(); got != int64(res.Chunks) || res.Chunks != 8 {
				t.Errorf("EXECUTE packets on the wire = %d, Result.Chunks = %d, want 8", got, res.Chunks)
			}
			exact := res.Bytes == wire
			bound := res.Bytes >= wire
			if !bound || tc.exact && !exact {
				t.Errorf("Result.Bytes = %d, bytes on the wire = %d (exact wanted: %v)", res.Bytes, wire, tc.exact)
			}
			if largest := w.largest.Load(); largest > int64(res.MinPacketLimit) {
				t.Errorf("largest EXECUTE payload %d over Result.MinPacketLimit %d", largest, res.MinPacketLimit)
			}
		})
	}
}
