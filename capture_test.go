package batch

// The capture tests prove, packet by packet, that the sizes this package
// predicts (sizer.go) are the sizes go-sql-driver/mysql writes: every Insert
// or Replace runs through a wirecap dialer, the predictions are collected
// from testHooks in order, and both sequences must be equal, COM_STMT_PREPARE
// by COM_STMT_PREPARE and COM_STMT_EXECUTE (with the COM_STMT_SEND_LONG_DATA
// packets before it) by COM_STMT_EXECUTE.
//
// They use the package-global testHooks and so never run in parallel.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // America/St_Johns even where the system has no zoneinfo
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch/internal/testserver"
	"github.com/batchsql/batch/internal/wirecap"
)

// capHead is how many payload bytes the recorder keeps: the command (1)
// and statement id (4) of EXECUTE, SEND_LONG_DATA (then the parameter id,
// 2) and CLOSE; the start of the SQL text of PREPARE.
const capHead = 16

var capSeq atomic.Int64

// capTotals sums what the capture tests compared, for the log.
var capTotals struct {
	sync.Mutex
	capStats
}

// capStats counts the packets one comparison covered.
type capStats struct {
	Prepares, Executes, LongPackets, Closes int
	Bytes                                   int64 // payload of the compared packets
	MaxExecute, MaxLong                     int
	MultiFrame                              int // compared packets of more than one 16 MiB frame
	Aux                                     int // the package's own prepared queries (table keys), not compared
}

func (s *capStats) add(o capStats) {
	s.Prepares += o.Prepares
	s.Executes += o.Executes
	s.LongPackets += o.LongPackets
	s.Closes += o.Closes
	s.Bytes += o.Bytes
	s.MaxExecute = max(s.MaxExecute, o.MaxExecute)
	s.MaxLong = max(s.MaxLong, o.MaxLong)
	s.MultiFrame += o.MultiFrame
	s.Aux += o.Aux
}

func capLogTotals(t *testing.T) {
	t.Cleanup(func() {
		capTotals.Lock()
		defer capTotals.Unlock()
		t.Logf("capture totals so far: %+v", capTotals.capStats)
	})
}

// capSetup is a server reached twice: through a capture dialer (db, the
// pool given to Insert) and directly (plain, for setup and checks).
type capSetup struct {
	rec   *wirecap.Recorder
	dsn   string
	cfg   *mysql.Config // parsed from dsn, for DriverConfig
	db    *sql.DB
	plain *sql.DB
}

// capOpen registers a fresh recorder and opens base (a tcp DSN) through it
// with the extra DSN params.
func capOpen(t testing.TB, base, params string) *capSetup {
	t.Helper()
	bcfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %q: %v", base, err)
	}
	if bcfg.Net != "tcp" {
		capSkip(t, "the capture dialer needs a tcp DSN, got net %q", bcfg.Net)
	}
	name := fmt.Sprintf("batchcap%d", capSeq.Add(1))
	rec := wirecap.Register(name)
	t.Cleanup(rec.Unregister)
	rec.SetHeadBytes(capHead)
	ccfg := bcfg.Clone()
	ccfg.Net = name
	dsn := capAddParams(ccfg.FormatDSN(), params)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse %q: %v", dsn, err)
	}
	s := &capSetup{rec: rec, dsn: dsn, cfg: cfg, db: capDB(t, dsn), plain: capDB(t, base)}
	return s
}

// capSkip skips t, or fails it when the environment variable CI is set:
// CI must run the capture tests, as testserver does for a missing server.
func capSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set: "+format, args...)
	}
	t.Skipf(format, args...)
}

// capAddParams appends params to dsn. Unlike testserver.AddParams it looks
// for a '?' only after the last '/', so a password with a '?' is kept.
func capAddParams(dsn, params string) string {
	if params == "" {
		return dsn
	}
	if strings.Contains(dsn[strings.LastIndex(dsn, "/"):], "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

func capDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open %q: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping %q: %v", dsn, err)
	}
	return db
}

// capTable creates a table from a column definition list and drops it when
// t ends.
func capTable(t testing.TB, db *sql.DB, columns string) string {
	t.Helper()
	name := fmt.Sprintf("cap_%d_%d", time.Now().UnixNano()%1e6, capSeq.Add(1))
	if _, err := db.Exec("CREATE TABLE `" + name + "` (" + columns + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + name + "`") })
	return name
}

// capEvent is one predicted or captured statement packet: a PREPARE of
// Prepare bytes, or an EXECUTE with its long data.
type capEvent struct {
	Cmd     byte
	Prepare int
	Size    stmtSize
	Frames  int // captured only: frames of the EXECUTE packet
}

func (ev capEvent) String() string {
	if ev.Cmd == wirecap.ComStmtPrepare {
		return fmt.Sprintf("PREPARE P=%d", ev.Prepare)
	}
	return fmt.Sprintf("EXECUTE P=%d long{packets=%d payload=%d largest=%d value=%d}",
		ev.Size.Execute, ev.Size.LongPackets, ev.Size.LongData, ev.Size.LargestLong, ev.Size.LongValueMax)
}

// capHooks installs the test hooks and returns a function that reads the
// predictions made so far.
func capHooks(t testing.TB) func() []capEvent {
	var mu sync.Mutex
	var evs []capEvent
	testHooks.prepared = func(p int) {
		mu.Lock()
		evs = append(evs, capEvent{Cmd: wirecap.ComStmtPrepare, Prepare: p})
		mu.Unlock()
	}
	testHooks.executed = func(s stmtSize) {
		mu.Lock()
		evs = append(evs, capEvent{Cmd: wirecap.ComStmtExecute, Size: s})
		mu.Unlock()
	}
	t.Cleanup(func() {
		testHooks.prepared = nil
		testHooks.executed = nil
	})
	return func() []capEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]capEvent(nil), evs...)
	}
}

// capWire reads the statement packets off the recorder. The long-data
// packets written before an EXECUTE are folded into it; LongValueMax is the
// largest total per parameter (read from the parameter id in the packet).
//
// Statements other than INSERT and REPLACE (the package reads the table's
// keys with a prepared query: PREPARE, EXECUTE, CLOSE in a row) are left
// out: the packet with a statement id that follows such a PREPARE names the
// statement, whose packets are then skipped.
func capWire(t testing.TB, rec *wirecap.Recorder) (evs []capEvent, st capStats) {
	t.Helper()
	if err := rec.Err(); err != nil {
		t.Fatalf("capture parse error: %v", err)
	}
	var long stmtSize
	perParam := map[uint16]int{}
	conns := map[int]bool{}
	aux := map[uint32]bool{}
	auxPending := false
	for _, p := range rec.AllCommands() {
		switch p.Cmd {
		case wirecap.ComStmtExecute, wirecap.ComStmtSendLongData, wirecap.ComStmtClose:
			if len(p.Head) < 5 {
				t.Fatalf("packet %#x of %d bytes without a statement id", p.Cmd, p.Len)
			}
			id := binary.LittleEndian.Uint32(p.Head[1:5])
			if auxPending {
				aux[id], auxPending = true, false
			}
			if aux[id] {
				continue
			}
		case wirecap.ComStmtPrepare:
			text := string(p.Head[1:])
			if !strings.HasPrefix(text, "INSERT ") && !strings.HasPrefix(text, "REPLACE ") {
				auxPending = true
				st.Aux++
				continue
			}
		}
		if p.Frames > 1 {
			st.MultiFrame++
		}
		switch p.Cmd {
		case wirecap.ComStmtPrepare:
			conns[p.Conn] = true
			evs = append(evs, capEvent{Cmd: p.Cmd, Prepare: p.Len, Frames: p.Frames})
			st.Prepares++
			st.Bytes += int64(p.Len)
		case wirecap.ComStmtSendLongData:
			conns[p.Conn] = true
			if len(p.Head) < longDataHeader {
				t.Fatalf("long-data packet of %d bytes has no parameter id", p.Len)
			}
			long.LongPackets++
			long.LongData += p.Len
			long.LargestLong = max(long.LargestLong, p.Len)
			perParam[binary.LittleEndian.Uint16(p.Head[5:7])] += p.Len - longDataHeader
			st.LongPackets++
			st.Bytes += int64(p.Len)
			st.MaxLong = max(st.MaxLong, p.Len)
		case wirecap.ComStmtExecute:
			conns[p.Conn] = true
			long.Execute = p.Len
			for _, n := range perParam {
				long.LongValueMax = max(long.LongValueMax, n)
			}
			evs = append(evs, capEvent{Cmd: p.Cmd, Size: long, Frames: p.Frames})
			long = stmtSize{}
			clear(perParam)
			st.Executes++
			st.Bytes += int64(p.Len)
			st.MaxExecute = max(st.MaxExecute, p.Len)
		case wirecap.ComStmtClose:
			if p.Len != 5 {
				t.Errorf("COM_STMT_CLOSE P=%d, want 5", p.Len)
			}
			st.Closes++
		}
	}
	if long.LongPackets > 0 {
		t.Errorf("%d long-data packets after the last EXECUTE", long.LongPackets)
	}
	if len(conns) > 1 {
		t.Errorf("statement packets on %d connections, want 1", len(conns))
	}
	return evs, st
}

// capCompare fails t unless pred and wire are the same sequence.
func capCompare(t testing.TB, pred, wire []capEvent) {
	t.Helper()
	bad := 0
	for i := range max(len(pred), len(wire)) {
		var p, w capEvent
		if i < len(pred) {
			p = pred[i]
		}
		if i < len(wire) {
			w = wire[i]
		}
		w.Frames = 0
		if p != w {
			if bad++; bad <= 10 {
				t.Errorf("packet %d: predicted %v, captured %v", i, p, w)
			}
		}
	}
	if len(pred) != len(wire) || bad > 0 {
		t.Fatalf("%d predicted and %d captured statement packets, %d differ", len(pred), len(wire), bad)
	}
}

type capWriteFunc func(ctx context.Context, db DB, rows Rows, opts ...Option) (Result, error)

// capRun writes rows through s.db with the hooks on and compares every
// predicted packet with the captured one. Unless noConfig, DriverConfig(s.cfg)
// is added. It returns the predicted and captured events and the Result.
func capRun(t *testing.T, s *capSetup, write capWriteFunc, rows Rows, noConfig bool, opts ...Option) (pred, wire []capEvent, res Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	read := capHooks(t)
	s.rec.Reset()
	opts = append([]Option{Workers(1)}, opts...)
	if !noConfig {
		opts = append(opts, DriverConfig(s.cfg))
	}
	res, err := write(ctx, s.db, rows, opts...)
	if err != nil {
		t.Fatalf("write: %v (result %+v)", err, res)
	}
	if res.Rows != int64(rows.Len()) || res.Retries != 0 {
		t.Fatalf("result: %d rows written of %d, %d retries", res.Rows, rows.Len(), res.Retries)
	}
	testHooks.prepared, testHooks.executed = nil, nil
	pred = read()
	var st capStats
	wire, st = capWire(t, s.rec)
	if st.Closes != st.Prepares {
		t.Errorf("%d COM_STMT_CLOSE for %d COM_STMT_PREPARE", st.Closes, st.Prepares)
	}
	if !noConfig {
		capCompare(t, pred, wire)
		var sent int64
		for _, ev := range wire {
			sent += int64(ev.Size.Execute + ev.Size.LongData)
		}
		if res.Bytes != sent {
			t.Errorf("Result.Bytes = %d, captured EXECUTE and long-data payload %d", res.Bytes, sent)
		}
	}
	comp := strings.Contains(s.dsn, "compress=true")
	for _, ci := range s.rec.Conns() {
		if ci.Compressed != comp {
			t.Errorf("connection %d: compressed=%v, DSN %q", ci.Conn, ci.Compressed, s.dsn)
		}
	}
	if res.Chunks != st.Executes {
		t.Errorf("Result.Chunks = %d, captured %d EXECUTE", res.Chunks, st.Executes)
	}
	capTotals.Lock()
	capTotals.add(st)
	capTotals.Unlock()
	t.Logf("%d rows in %d chunks: %d PREPARE, %d EXECUTE (largest P=%d, %d multi-frame), %d long-data packets (largest P=%d), %d payload bytes compared",
		rows.Len(), res.Chunks, st.Prepares, st.Executes, st.MaxExecute, st.MultiFrame, st.LongPackets, st.MaxLong, st.Bytes)
	return pred, wire, res
}

// capString returns a valid UTF-8 string of exactly n bytes mixing 1-, 2-,
// 3- and 4-byte characters.
func capString(n int, seed int) string {
	pieces := []string{"a", "é", "日", "🙂"}
	var pattern strings.Builder
	for i := range pieces {
		pattern.WriteString(pieces[(seed+i)%len(pieces)])
	}
	s := strings.Repeat(pattern.String(), n/pattern.Len()+1)[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1] // a multibyte character cut at the end
	}
	return s + strings.Repeat("x", n-len(s))
}

func capBytes(n int, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

// capNamed are caller types the package must normalize.
type (
	capID    int32
	capName  string
	capBlob  []byte
	capFloat float32
)

// capTypeRows makes n rows for the table of capTypeColumns, ids from first,
// with strings and byte slices of the lengths in lens and times built in
// loc. Every Go type the package accepts appears.
func capTypeRows(first, n int, lens []int, loc *time.Location, r *rand.Rand) [][]any {
	ints := []func() any{
		func() any { return int64(math.MinInt64) }, func() any { return int64(math.MaxInt64) },
		func() any { return 0 }, func() any { return int32(-7) }, func() any { return int8(3) },
		func() any { return nil }, func() any { return (*int)(nil) }, func() any { v := 42; return &v },
		func() any { return capID(12345) }, func() any { return sql.NullInt64{Int64: -1, Valid: true} },
		func() any { return sql.NullInt64{} }, func() any { return r.Int64() },
	}
	uints := []func() any{
		func() any { return uint64(math.MaxUint64) }, func() any { return uint(0) },
		func() any { return uint16(65535) }, func() any { return uint8(1) }, func() any { return nil },
		func() any { return r.Uint64() }, func() any { return uint32(math.MaxUint32) },
	}
	floats := []func() any{
		func() any { return 0.1 }, func() any { return float32(0.1) }, func() any { return math.Copysign(0, -1) },
		func() any { return 1e308 }, func() any { return math.SmallestNonzeroFloat64 }, func() any { return nil },
		func() any { return capFloat(2.5) }, func() any { return sql.NullFloat64{Float64: -3, Valid: true} },
		func() any { return r.NormFloat64() },
	}
	bools := []func() any{
		func() any { return true }, func() any { return false }, func() any { return nil },
		func() any { return sql.NullBool{} }, func() any { return sql.NullBool{Bool: true, Valid: true} },
	}
	times := []func() any{
		func() any { return time.Time{} },                                         // zero: '0000-00-00'
		func() any { return time.Date(2024, 2, 29, 0, 0, 0, 0, loc) },             // midnight in loc
		func() any { return time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) },        // midnight in UTC
		func() any { return time.Date(2024, 7, 1, 0, 0, 0, 0, loc) },              // midnight in loc, summer time
		func() any { return time.Date(2023, 12, 31, 23, 59, 59, 123456789, loc) }, // nanoseconds
		func() any { return time.Date(2023, 1, 2, 3, 4, 5, 120000, time.UTC) },    // microseconds
		func() any { return time.Date(2023, 1, 2, 3, 4, 5, 500000000, loc) },      // one digit
		func() any { return time.Date(2023, 1, 2, 0, 0, 0, 400000, loc) },         // 0.4 ms past midnight
		func() any { return time.Date(2023, 1, 2, 3, 4, 5, 0, loc) },              // whole second
		func() any { return time.Date(9999, 12, 31, 12, 59, 59, 999999999, loc) }, // the last year
		func() any { return time.Date(1800, 1, 1, 0, 0, 0, 0, loc) },              // midnight, LMT offset in seconds
		func() any { return time.Date(1000, 1, 1, 10, 0, 0, 1, loc) },             // 1 ns
		func() any { return nil },
		func() any { return sql.NullTime{} },
		func() any { v := time.Date(2020, 5, 5, 5, 5, 5, 5000, loc); return &v },
		func() any { return time.Unix(r.Int64N(4e9), r.Int64N(1e9)) },
	}
	rows := make([][]any, n)
	for i := range rows {
		id := first + i
		l := lens[r.IntN(len(lens))]
		var s, bin any
		switch r.IntN(6) {
		case 0:
			s = capName(capString(l, id))
		case 1:
			s = sql.NullString{String: capString(l, id), Valid: true}
		case 2:
			v := capString(l, id)
			s = &v
		case 3:
			s = nil
		default:
			s = capString(l, id)
		}
		l = lens[r.IntN(len(lens))]
		switch r.IntN(6) {
		case 0:
			bin = capBlob(capBytes(l, id))
		case 1:
			bin = []byte(nil) // NULL
		case 2:
			bin = json.RawMessage(`{"a":[1,2,3]}`)
		default:
			bin = capBytes(l, id)
		}
		rows[i] = []any{id, ints[r.IntN(len(ints))](), uints[r.IntN(len(uints))](), floats[r.IntN(len(floats))](),
			bools[r.IntN(len(bools))](), s, bin, times[r.IntN(len(times))]()}
	}
	return rows
}

var capTypeColumns = []string{"id", "i", "u", "f", "b", "s", "bin", "ts"}

const capTypeDefs = "id BIGINT PRIMARY KEY, i BIGINT NULL, u BIGINT UNSIGNED NULL, f DOUBLE NULL, b BOOL NULL, " +
	"s LONGTEXT NULL, bin LONGBLOB NULL, ts DATETIME(6) NULL"

// capVerify checks the table against the rows last written (normalized
// with enc): row count, non-NULL count of every column, XOR of the integer
// columns, total length and XOR of CRC32 of the string columns.
func capVerify(t testing.TB, db *sql.DB, table string, cols []string, rows [][]any, enc encoding) {
	t.Helper()
	type agg struct {
		nonNull       int64
		xor, crc, sum uint64
		kind          byte // 'i' integer, 's' string, '-' other
	}
	aggs := make([]agg, len(cols))
	for j := range aggs {
		aggs[j].kind = '-'
	}
	for i, row := range rows {
		for j, v := range row {
			nv, err := normalize(v, &enc)
			if err != nil {
				t.Fatalf("row %d column %s: %v", i, cols[j], err)
			}
			a := &aggs[j]
			switch x := nv.(type) {
			case nil:
				continue
			case int64:
				a.kind, a.xor = 'i', a.xor^uint64(x)
			case uint64:
				a.kind, a.xor = 'i', a.xor^x
			case string:
				a.kind, a.crc, a.sum = 's', a.crc^uint64(crc32.ChecksumIEEE([]byte(x))), a.sum+uint64(len(x))
			case []byte:
				a.kind, a.crc, a.sum = 's', a.crc^uint64(crc32.ChecksumIEEE(x)), a.sum+uint64(len(x))
			}
			a.nonNull++
		}
	}
	var exprs, want []string
	exprs = append(exprs, "COUNT(*)")
	want = append(want, strconv.Itoa(len(rows)))
	for j, c := range cols {
		q := "`" + c + "`"
		a := aggs[j]
		exprs = append(exprs, "COUNT("+q+")")
		want = append(want, strconv.FormatInt(a.nonNull, 10))
		switch a.kind {
		case 'i':
			exprs = append(exprs, "BIT_XOR("+q+")")
			want = append(want, strconv.FormatUint(a.xor, 10))
		case 's':
			exprs = append(exprs, "COALESCE(SUM(LENGTH("+q+")),0)", "BIT_XOR(CRC32("+q+"))")
			want = append(want, strconv.FormatUint(a.sum, 10), strconv.FormatUint(a.crc, 10))
		}
	}
	got := make([]string, len(exprs))
	dest := make([]any, len(exprs))
	for i := range got {
		dest[i] = &got[i]
	}
	if err := db.QueryRow("SELECT " + strings.Join(exprs, ", ") + " FROM `" + table + "`").Scan(dest...); err != nil {
		t.Fatalf("verify %s: %v", table, err)
	}
	for i := range exprs {
		if got[i] != want[i] {
			t.Errorf("table %s: %s = %s, want %s", table, exprs[i], got[i], want[i])
		}
	}
}

func capSharedDSN(t *testing.T) string {
	t.Helper()
	return testserver.Shared(t)
}

// TestCaptureExact writes every value type, in several chunk shapes, with
// and without long data, plain and compressed, and checks that every
// PREPARE, EXECUTE and long-data packet has the predicted payload.
func TestCaptureExact(t *testing.T) {
	capLogTotals(t)
	base := capSharedDSN(t)
	stJohns, err := time.LoadLocation("America/St_Johns") // UTC-3:30, DST, LMT before 1935
	if err != nil {
		t.Fatal(err)
	}
	// Lengths around the length-encoding steps and the long-data thresholds
	// of the default 64 MiB limit (64 MiB/(8k+1) for k rows of 8 values).
	defaultLens := []int{0, 1, 2, 250, 251, 252, 1000, 8000, 8373, 8374, 8400, 0, 5, 17, 100, 250, 251, 65535, 65536, 70000}
	// Lengths around LD = max(65536/(N+1), 64) for N = 8k, and around the
	// long-data piece 65536-8, with values needing 2 and 4 packets.
	smallLens := []int{0, 63, 64, 65, 100, 250, 251, 252, 800, 1927, 1928, 3640, 3641, 7281, 7282, 10, 20, 30,
		65527, 65528, 65529, 65535, 65536, 131056, 131057, 200000, 40, 50, 0, 1}

	cases := []struct {
		name    string
		params  string
		lens    []int
		maxRows []int
		bytes   int // MaxBytes, 0 for none
		n       int // rows per write
	}{
		{"default", "", defaultLens, []int{1, 3, 7, 1000}, 0, 60},
		{"loc+truncate", "loc=America%2FSt_Johns&timeTruncate=1ms", defaultLens, []int{2, 5, 1000}, 0, 60},
		{"loc+nanos", "loc=America%2FSt_Johns", defaultLens, []int{4, 1000}, 0, 60},
		{"maxAllowedPacket=0", "maxAllowedPacket=0&loc=Asia%2FKathmandu&timeTruncate=10us", defaultLens, []int{6, 1000}, 0, 60},
		{"longdata", "maxAllowedPacket=65536&loc=America%2FSt_Johns&timeTruncate=1us", smallLens, []int{1, 2, 3, 8, 1000}, 0, 60},
		{"longdata+maxbytes", "maxAllowedPacket=65536&loc=UTC", smallLens, []int{1000}, 5000, 120},
		{"compress", "compress=true&loc=America%2FSt_Johns&timeTruncate=1ms", defaultLens, []int{3, 1000}, 0, 60},
		{"compress+longdata", "compress=true&maxAllowedPacket=65536", smallLens, []int{1, 5, 1000}, 0, 60},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := capOpen(t, base, tc.params)
			enc := encoding{loc: s.cfg.Loc, truncate: hidden(s.cfg).timeTruncate, locKnown: true}
			if tc.name == "default" && (enc.loc != time.UTC || enc.truncate != 0) {
				t.Fatalf("default DSN gave loc %v truncate %v", enc.loc, enc.truncate)
			}
			loc := s.cfg.Loc
			if loc == time.UTC {
				loc = stJohns // times in another zone than the driver's
			}
			table := capTable(t, s.plain, capTypeDefs)
			r := rand.New(rand.NewPCG(uint64(ci), 7))
			var extra []Option
			if tc.bytes > 0 {
				extra = append(extra, MaxBytes(tc.bytes))
			}
			var all [][]any
			for i, m := range tc.maxRows {
				rows := capTypeRows(i*tc.n, tc.n, tc.lens, loc, r)
				capRun(t, s, Insert, Values(table, capTypeColumns, rows), false, append([]Option{MaxRows(m)}, extra...)...)
				all = append(all, rows...)
			}
			capVerify(t, s.plain, table, capTypeColumns, all, enc)

			// The same ids again: REPLACE, then INSERT ... ON DUPLICATE KEY
			// UPDATE (other PREPARE texts), with new values.
			m := tc.maxRows[len(tc.maxRows)/2]
			rows := capTypeRows(0, len(all), tc.lens, loc, r)
			_, _, res := capRun(t, s, Replace, Values(table, capTypeColumns, rows), false, append([]Option{MaxRows(m)}, extra...)...)
			if res.RowsAffected != 2*int64(len(rows)) {
				t.Errorf("REPLACE of %d existing rows: RowsAffected = %d, want %d", len(rows), res.RowsAffected, 2*len(rows))
			}
			capVerify(t, s.plain, table, capTypeColumns, rows, enc)
			rows = capTypeRows(0, len(all), tc.lens, loc, r)
			capRun(t, s, Insert, Values(table, capTypeColumns, rows), false,
				append([]Option{MaxRows(m), OnDuplicateKeyUpdateExcept("id")}, extra...)...)
			capVerify(t, s.plain, table, capTypeColumns, rows, enc)
		})
	}
}

// TestCaptureLongDataPackets checks single values larger than the driver's
// limit: each is cut into pieces of M-8 bytes, every piece a packet of
// M-1 bytes but the last, and all of them as predicted.
func TestCaptureLongDataPackets(t *testing.T) {
	capLogTotals(t)
	base := capSharedDSN(t)
	const m = 65536
	s := capOpen(t, base, "maxAllowedPacket="+strconv.Itoa(m))
	table := capTable(t, s.plain, "id BIGINT PRIMARY KEY, v LONGBLOB NULL")
	piece := m - 8
	lens := []int{piece - 1, piece, piece + 1, 2 * piece, 2*piece + 1, 5*piece + 3, 1 << 20}
	var rows [][]any
	for i, l := range lens {
		rows = append(rows, []any{i, capBytes(l, i)})
	}
	_, wire, _ := capRun(t, s, Insert, Values(table, []string{"id", "v"}, rows), false, MaxRows(1))
	// With one row per statement every value above is long data (LD is
	// 65536/3): check the packets against the driver's cutting rule
	// directly too.
	var execs []capEvent
	for _, ev := range wire {
		if ev.Cmd == wirecap.ComStmtExecute {
			execs = append(execs, ev)
		}
	}
	if len(execs) != len(lens) {
		t.Fatalf("%d EXECUTE, want %d", len(execs), len(lens))
	}
	for i, l := range lens {
		packets := (l + piece - 1) / piece
		want := stmtSize{Execute: 10 + 1 + 1 + 2*2 + 8, LongPackets: packets, LongData: l + 7*packets,
			LargestLong: min(l, piece) + 7, LongValueMax: l}
		if execs[i].Size != want {
			t.Errorf("value of %d bytes: captured %v, want %v", l, execs[i], capEvent{Cmd: wirecap.ComStmtExecute, Size: want})
		}
	}
	capVerify(t, s.plain, table, []string{"id", "v"}, rows, defaultEncoding())
}

// TestCaptureNoConfig writes without DriverConfig. The package then assumes
// the driver's defaults (64 MiB, UTC, no truncation) and sizes a time that is
// midnight in UTC as 19 bytes, since it cannot know the driver's location:
// every size must bound the packet from above, and here the only difference
// is 9 bytes per such time.
func TestCaptureNoConfig(t *testing.T) {
	capLogTotals(t)
	base := capSharedDSN(t)
	stJohns, err := time.LoadLocation("America/St_Johns")
	if err != nil {
		t.Fatal(err)
	}
	const rowsPer, chunks = 5, 12
	mkRows := func(r *rand.Rand) [][]any {
		times := []time.Time{
			{}, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 1, 0, 0, 0, 0, stJohns),
			time.Date(2024, 3, 1, 0, 0, 0, 500_000, stJohns), time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
			time.Date(2024, 3, 1, 2, 30, 0, 0, stJohns), time.Date(2001, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
			time.Date(2024, 3, 1, 1, 2, 3, 456_789_000, time.UTC),
		}
		rows := make([][]any, rowsPer*chunks)
		for i := range rows {
			rows[i] = []any{i, times[r.IntN(len(times))], capString(r.IntN(300), i)}
		}
		return rows
	}
	cols := []string{"id", "ts", "s"}
	// Sizes of chunk i: rows [5i, 5i+5), since MaxRows(5) binds and no row
	// is large.
	chunkSizes := func(rows [][]any, enc encoding) []stmtSize {
		var vals []any
		for _, row := range rows {
			for _, v := range row {
				nv, err := normalize(v, &enc)
				if err != nil {
					t.Fatal(err)
				}
				vals = append(vals, nv)
			}
		}
		var out []stmtSize
		for i := range chunks {
			out = append(out, enc.chunkSize(flatRows(vals, len(cols)), i*rowsPer, (i+1)*rowsPer, defaultClientMax))
		}
		return out
	}
	for _, tc := range []struct{ name, params string }{
		{"utc", ""},
		{"loc+truncate", "loc=America%2FSt_Johns&timeTruncate=1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := capOpen(t, base, tc.params)
			table := capTable(t, s.plain, "id BIGINT PRIMARY KEY, ts DATETIME(6) NULL, s TEXT")
			rows := mkRows(rand.New(rand.NewPCG(3, uint64(len(tc.params)))))
			pred, wire, _ := capRun(t, s, Insert, Values(table, cols, rows), true, MaxRows(rowsPer))
			truth := chunkSizes(rows, encoding{loc: s.cfg.Loc, truncate: hidden(s.cfg).timeTruncate, locKnown: true})
			assumed := chunkSizes(rows, defaultEncoding())
			var pe, we []capEvent
			for _, ev := range pred {
				if ev.Cmd == wirecap.ComStmtExecute {
					pe = append(pe, ev)
				}
			}

			for _, ev := range wire {
				if ev.Cmd == wirecap.ComStmtExecute {
					we = append(we, ev)
				}
			}
			if len(pe) != chunks || len(we) != chunks || len(pred) != chunks+1 || len(wire) != chunks+1 ||
				pred[0].Cmd != wirecap.ComStmtPrepare || wire[0].Cmd != wirecap.ComStmtPrepare || pred[0].Prepare != wire[0].Prepare {
				t.Fatalf("predicted %v, captured %v", pred, wire)
			}
			over := 0
			for i := range chunks {
				p, w := pe[i].Size, we[i].Size
				if p != assumed[i] || w != truth[i] {
					t.Errorf("chunk %d: predicted %+v (want %+v), captured %+v (want %+v)", i, p, assumed[i], w, truth[i])
				}
				if p.Execute < w.Execute {
					t.Errorf("chunk %d: predicted EXECUTE %d below the actual %d", i, p.Execute, w.Execute)
				}
				// In UTC the only difference is 9 bytes per time at UTC
				// midnight (not the zero time).
				if tc.params == "" {
					mid := 0
					for _, row := range rows[i*rowsPer : (i+1)*rowsPer] {
						ts := row[1].(time.Time)
						if !ts.IsZero() && ts.UTC().Hour() == 0 && ts.UTC().Minute() == 0 && ts.UTC().Second() == 0 && ts.Nanosecond() == 0 {
							mid++
						}
					}
					if p.Execute-w.Execute != 9*mid {
						t.Errorf("chunk %d: predicted %d, actual %d: want a difference of 9 x %d UTC midnights", i, p.Execute, w.Execute, mid)
					}
				}
				over += p.Execute - w.Execute
			}
			t.Logf("without DriverConfig (DSN %q): %d EXECUTE predicted %d bytes above the actual in total", tc.params, chunks, over)
			capVerify(t, s.plain, table, cols, rows, defaultEncoding())
		})
	}
}

// TestCaptureHuge writes statements over 16 MiB (sent in several frames) on
// a server with max_allowed_packet=64M, plain and compressed, with a value
// over 16 MiB sent as long data.
func TestCaptureHuge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 200 MB; skipped with -short")
	}
	capLogTotals(t)
	srv := testserver.Private(t, testserver.Options{Args: []string{"--max-allowed-packet=64M"}})
	for _, params := range []string{"maxAllowedPacket=67108864", "maxAllowedPacket=67108864&compress=true"} {
		t.Run(params, func(t *testing.T) {
			s := capOpen(t, srv.DSN(""), params)
			table := capTable(t, s.plain, "id BIGINT PRIMARY KEY, v LONGBLOB")
			// 300 rows of 2 values: LD = 64 MiB/601 = 111,662, so values of
			// 100,000 bytes are inline and an EXECUTE is about 30 MB
			// (MaxBytes above the packet limit, instead of DefaultBytes).
			const n, per = 360, 300
			rows := make([][]any, n)
			for i := range rows {
				rows[i] = []any{i, capBytes(100_000+i%7, i)}
			}
			rows[123][1] = capBytes(20<<20, 5) // long data, one 20 MiB packet
			rows[310][1] = capBytes(150_000, 6)
			_, wire, _ := capRun(t, s, Insert, Values(table, []string{"id", "v"}, rows), false, MaxRows(per), MaxBytes(1<<30))
			multi := 0
			for _, ev := range wire {
				if ev.Cmd == wirecap.ComStmtExecute && ev.Size.Execute > wirecap.MaxFrame {
					if ev.Frames < 2 {
						t.Errorf("EXECUTE of %d bytes in %d frame(s)", ev.Size.Execute, ev.Frames)
					}
					multi++
				}
			}
			if multi != 1 {
				t.Errorf("%d EXECUTE over 16 MiB, want 1", multi)
			}
			capVerify(t, s.plain, table, []string{"id", "v"}, rows, defaultEncoding())

			// One value per statement and N = 2, so LD = 64 MiB/3: values
			// of 2^24-1 and 2^24 bytes are inline, with a length of 4 and
			// 9 bytes, in EXECUTE packets of more than one frame. No
			// MaxBytes: a single row over DefaultBytes is still sent alone.
			table = capTable(t, s.plain, "id BIGINT PRIMARY KEY, v LONGBLOB")
			rows = [][]any{{0, capBytes(1<<24-1, 1)}, {1, capBytes(1<<24, 2)}}
			_, wire, _ = capRun(t, s, Insert, Values(table, []string{"id", "v"}, rows), false, MaxRows(1))
			var execs []int
			for _, ev := range wire {
				if ev.Cmd == wirecap.ComStmtExecute {
					execs = append(execs, ev.Size.Execute)
				}
			}
			if want := []int{24 + 4 + 1<<24 - 1, 24 + 9 + 1<<24}; fmt.Sprint(execs) != fmt.Sprint(want) {
				t.Errorf("EXECUTE payloads %v, want %v", execs, want)
			}
			capVerify(t, s.plain, table, []string{"id", "v"}, rows, defaultEncoding())
		})
	}
}

// TestHiddenConfigSpecialPassword checks that DriverConfig reads compress and
// timeTruncate right whatever the password. It demonstrates a bug in
// options.go, hidden(): it cuts cfg.FormatDSN() at the first '?', but
// FormatDSN writes the user and password unescaped, so a password with a
// '?' moves the cut into the password. The first parameter written after
// the real '?' then gets a key like "rest@tcp(host)/db?compress" and is lost
// (FormatDSN writes compress before timeTruncate, so compress=true is the
// one lost when both are set), and a ';' after the '?' makes url.ParseQuery
// fail, losing both. A lost compress makes Limits.serverPacket 4 bytes too
// large per 16 MiB piece (the server counts the compressed inner headers),
// so a chunk at the limit is refused with error 1153; a lost timeTruncate
// over-sizes times. Fix: format a copy without the user and password
// (c := cfg.Clone(); c.User, c.Passwd = "", ""), or cut after the last '/',
// since FormatDSN path-escapes the database name.
func TestHiddenConfigSpecialPassword(t *testing.T) {
	for _, pw := range []string{"secret", "pa?ss", "a?b;c", "x?y&z"} {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "u", pw, "tcp", "127.0.0.1:3306", "test"
		if err := cfg.Apply(mysql.EnableCompression(true), mysql.TimeTruncate(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		// The driver itself round-trips the password and both settings.
		back, err := mysql.ParseDSN(cfg.FormatDSN())
		if err != nil || back.Passwd != pw || !strings.Contains(back.FormatDSN(), "compress=true&timeTruncate=1ms") {
			t.Fatalf("password %q: driver round trip %q: %v", pw, cfg.FormatDSN(), err)
		}
		if h := hidden(cfg); !h.compress || h.timeTruncate != time.Millisecond {
			t.Errorf("password %q: DriverConfig reads compress=%v timeTruncate=%v from %q, want true and 1ms",
				pw, h.compress, h.timeTruncate, cfg.FormatDSN())
		}
	}
}

// TestHiddenConfigSpecialPasswordLimit shows what the bug above costs on a
// compressed connection: with max_allowed_packet=1M the server accepts a
// compressed payload P only if P+4 <= S-1, and Limits knows it when
// DriverConfig says compress=true. A user whose password holds a '?' loses
// that: 1000 rows whose EXECUTE is exactly S-1 bytes are sent as one
// statement, the server refuses it (1153) and closes the connection, and
// the chunk is only written after a retry on a new connection.
func TestHiddenConfigSpecialPasswordLimit(t *testing.T) {
	capLogTotals(t)
	const s = 1 << 20
	srv := testserver.Private(t, testserver.Options{Args: []string{"--max-allowed-packet=1M"}})
	root := capDB(t, srv.DSN(""))
	for i, pw := range []string{"secret", "pa?ss"} {
		t.Run(pw, func(t *testing.T) {
			user := fmt.Sprintf("capq%d", i)
			for _, q := range []string{
				"CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + pw + "'",
				"GRANT ALL ON test.* TO '" + user + "'@'%'",
			} {
				if _, err := root.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			c := capOpen(t, user+":"+pw+"@tcp("+srv.Addr()+")/test", "compress=true&maxAllowedPacket=0")
			table := capTable(t, root, "a LONGBLOB, b LONGBLOB")
			// N = 2000 values, LD = (S-1)/2001 = 524: all inline. The
			// EXECUTE is 10 + 250 + 1 + 4000 + sum(3 + len) = S-1. MaxBytes
			// above the packet limit: the packet limit alone, not
			// DefaultBytes, decides whether the 1000 rows go as one
			// statement.
			rows := make([][]any, 1000)
			for r := range rows {
				la, lb := 519, 519
				if r < 314 {
					la = 520
				}
				rows[r] = []any{capBytes(la, r), capBytes(lb, r)}
			}
			ctx := context.Background()
			c.rec.Reset()
			res, err := Insert(ctx, c.db, Values(table, []string{"a", "b"}, rows), Workers(1), MaxRows(1000), MaxBytes(1<<30), DriverConfig(c.cfg))
			if err != nil {
				t.Fatalf("insert: %v", err)
			}
			biggest := 0
			for _, p := range c.rec.Commands(wirecap.ComStmtExecute) {
				biggest = max(biggest, p.Len)
			}
			// The compressed limit: P + 4 <= S - 1.
			if biggest+4 > s-1 || res.Retries != 0 {
				t.Errorf("password %q: largest EXECUTE P=%d on a compressed connection with S=%d (limit %d), %d retries",
					pw, biggest, s, s-1-4, res.Retries)
			}
			capVerify(t, root, table, []string{"a", "b"}, rows, defaultEncoding())
		})
	}
}
