package batch_test

// Packet-limit tests against private MariaDB servers. Every figure comes from
// PROTOCOL.md and was re-measured on MariaDB 10.11 while writing these tests:
// the server accepts an EXECUTE payload P <= max(S, net_buffer_length) - 1
// and answers 1153 at one byte more (both with S=16384/nbl=1024 and with
// S=8192/nbl=16384); compressed, P + 4 <= that limit; the session's
// max_allowed_packet and net_buffer_length are frozen at connect (SET SESSION
// net_buffer_length is refused with 1621).
//
// Packets are measured on the wire with internal/wirecap, so the tests check
// what the driver really wrote, not what the library believes it wrote.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
	"github.com/batchsql/batch/internal/wirecap"
)

// ---- sizes (PROTOCOL.md, binary protocol), independent of the library ----

// limLenenc is the size of a length-encoded integer.
func limLenenc(n int) int {
	switch {
	case n < 251:
		return 1
	case n < 1<<16:
		return 3
	case n < 1<<24:
		return 4
	}
	return 9
}

// limExecuteSize is the COM_STMT_EXECUTE payload of one statement carrying rows:
// 10 + ceil(N/8) + 1 + 2N + the values, an int64 taking 8 bytes and a []byte
// limLenenc(len)+len. The builders below keep every []byte under the driver's
// long-data threshold, so all values are inline.
func limExecuteSize(rows [][]any) int {
	n, vals := 0, 0
	for _, r := range rows {
		for _, v := range r {
			n++
			switch x := v.(type) {
			case int64:
				vals += 8
			case []byte:
				vals += limLenenc(len(x)) + len(x)
			default:
				panic(fmt.Sprintf("executeSize: unexpected %T", v))
			}
		}
	}
	return 10 + (n+7)/8 + 1 + 2*n + vals
}

// limMaxInline is the longest value used in rows of many values. The driver
// sends a value of max(M/(N+1), 64) bytes or more as long data; below 64
// bytes a value is inline whatever the driver's limit M and the statement's
// parameter count N.
const limMaxInline = 63

// limPayload returns n deterministic pseudo-random bytes for row id.
func limPayload(id int64, n int) []byte {
	b := make([]byte, n)
	x := uint32(id)*2654435761 | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// limExactRows returns k rows (id, v), ids from id0, whose k-row statement has an
// EXECUTE payload of exactly p bytes; every v has at most maxInline bytes.
func limExactRows(t testing.TB, id0 int64, k, p int) [][]any {
	t.Helper()
	fixed := 10 + (2*k+7)/8 + 1 + 2*2*k + k*(8+1)
	total := p - fixed
	base, rem := total/k, total%k
	if total < 0 || base+min(rem, 1) > limMaxInline {
		t.Fatalf("limExactRows(k=%d, p=%d): values would need %d bytes, over %d", k, p, base+1, limMaxInline)
	}
	rows := make([][]any, k)
	for i := range rows {
		n := base
		if i < rem {
			n++
		}
		id := id0 + int64(i)
		rows[i] = []any{id, limPayload(id, n)}
	}
	if got := limExecuteSize(rows); got != p {
		t.Fatalf("limExactRows(k=%d, p=%d): built %d", k, p, got)
	}
	return rows
}

// limGroups returns groups of k rows (ids from 0), each group's statement
// exactly p bytes.
func limGroups(t testing.TB, groups, k, p int) [][]any {
	var rows [][]any
	for g := 0; g < groups; g++ {
		rows = append(rows, limExactRows(t, int64(g*k), k, p)...)
	}
	return rows
}

// limBigRow returns one row (id, v) whose one-row EXECUTE is exactly p bytes:
// 10 + 1 + 1 + 4 + 8 + lenenc(len) + len, v between 251 and 65535 bytes.
func limBigRow(t testing.TB, id int64, p int) []any {
	t.Helper()
	if p-27 < 251 {
		t.Fatalf("limBigRow(%d): too small for a 3-byte length", p)
	}
	row := []any{id, limPayload(id, p-27)}
	if got := limExecuteSize([][]any{row}); got != p {
		t.Fatalf("limBigRow(%d): built %d", p, got)
	}
	return row
}

// limWideRow returns one row (id, c1..c<cols>) whose one-row EXECUTE is exactly
// p bytes, every value at most maxInline bytes.
func limWideRow(t testing.TB, id int64, cols, p int) []any {
	t.Helper()
	n := cols + 1
	total := p - (10 + (n+7)/8 + 1 + 2*n + 8 + cols)
	base, rem := total/cols, total%cols
	if total < 0 || base+min(rem, 1) > limMaxInline {
		t.Fatalf("limWideRow(cols=%d, p=%d): values would need %d bytes", cols, p, base+1)
	}
	row := []any{id}
	for j := 0; j < cols; j++ {
		k := base
		if j < rem {
			k++
		}
		row = append(row, limPayload(id*1000+int64(j), k))
	}
	if got := limExecuteSize([][]any{row}); got != p {
		t.Fatalf("limWideRow(cols=%d, p=%d): built %d", cols, p, got)
	}
	return row
}

// ---- table contents ----

// limDigest is a row count and the sum over the rows of
// CRC32(CONCAT_WS('|', CRC32(c1), CRC32(c2), ...)), computed the same way from
// the input and from the table. Each column is hashed alone first: a string
// function whose result exceeds the session's max_allowed_packet returns NULL.
type limDigest struct {
	Rows int
	Sum  uint64
}

func limRowsDigest(rows [][]any) limDigest {
	d := limDigest{Rows: len(rows)}
	var b, num []byte
	for _, r := range rows {
		b = b[:0]
		for j, x := range r {
			if j > 0 {
				b = append(b, '|')
			}
			var v []byte
			switch x := x.(type) {
			case int64:
				num = strconv.AppendInt(num[:0], x, 10)
				v = num
			case []byte:
				v = x
			}
			b = strconv.AppendUint(b, uint64(crc32.ChecksumIEEE(v)), 10)
		}
		d.Sum += uint64(crc32.ChecksumIEEE(b))
	}
	return d
}

func limTableDigest(t testing.TB, db *sql.DB, table string, cols []string) limDigest {
	t.Helper()
	var d limDigest
	q := "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', CRC32(`" + strings.Join(cols, "`), CRC32(`") + "`)))), 0) FROM `" + table + "`"
	readRow(t, db, q, &d.Rows, &d.Sum)
	return d
}

func limCheckTable(t testing.TB, db *sql.DB, table string, cols []string, want [][]any) {
	t.Helper()
	if got, want := limTableDigest(t, db, table, cols), limRowsDigest(want); got != want {
		t.Errorf("table %s: (rows, checksum) = %v, want %v", table, got, want)
	}
}

// ---- wire capture and logs ----

var limCaptureSeq atomic.Int64

// limCapturedDSN returns srv's DSN with params, dialed through a fresh
// wirecap.Recorder (and through wrap first, if not nil).
func limCapturedDSN(t testing.TB, srv *testserver.Server, params string, wrap func(net.Conn) net.Conn) (string, *wirecap.Recorder) {
	name := fmt.Sprintf("limits%d", limCaptureSeq.Add(1))
	rec := wirecap.New()
	rec.SetHeadBytes(8)
	mysql.RegisterDialContext(name, func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			c = wrap(c)
		}
		return rec.Wrap(c), nil
	})
	t.Cleanup(func() { mysql.DeregisterDialContext(name) })
	return strings.Replace(srv.DSN(params), "@tcp(", "@"+name+"(", 1), rec
}

// limInserts returns the payload lengths of the recorded COM_STMT_EXECUTE
// packets of INSERT statements, leaving out the library's own queries. An
// EXECUTE names its statement by the id the server gave at PREPARE, which the
// client stream does not show; but the driver executes a statement right
// after preparing it, so the first EXECUTE after a PREPARE on a connection
// tells the id of that PREPARE, whose head shows the statement's text.
func limInserts(t testing.TB, rec *wirecap.Recorder) []int {
	t.Helper()
	type stmt struct {
		conn int
		id   uint32
	}
	pending := map[int]*bool{} // per connection: the PREPARE not yet executed (is it an INSERT?)
	insert := map[stmt]bool{}
	var out []int
	for _, p := range rec.AllCommands() {
		switch p.Cmd {
		case wirecap.ComStmtPrepare:
			is := bytes.HasPrefix(p.Head, []byte("\x16INSERT "))
			pending[p.Conn] = &is
		case wirecap.ComStmtExecute:
			id := stmt{p.Conn, binary.LittleEndian.Uint32(p.Head[1:5])}
			if is := pending[p.Conn]; is != nil {
				insert[id] = *is
				pending[p.Conn] = nil
			}
			is, ok := insert[id]
			if !ok {
				t.Fatalf("EXECUTE of statement %d on connection %d, never seen prepared", id.id, id.conn)
			}
			if is {
				out = append(out, p.Len)
			}
		}
	}
	return out
}

// limPrepares returns the payload lengths of the recorded COM_STMT_PREPAREs.
func limPrepares(rec *wirecap.Recorder) []int {
	var out []int
	for _, p := range rec.Commands(wirecap.ComStmtPrepare) {
		out = append(out, p.Len)
	}
	return out
}

func limSum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

var limCols = []string{"id", "v"}

const limTable = "id BIGINT PRIMARY KEY, v BLOB"

// ---- 1. the boundary ----

// TestLimitBoundary loads statements of exactly the packet limit, and one
// byte over it, on servers where max_allowed_packet is above
// net_buffer_length (S=16384, nbl=1024: limit 16383) and below it (S=8192,
// nbl=16384: the server still accepts 16383), with the driver's default
// limit and with maxAllowedPacket=0 (the driver uses S-1).
func TestLimitBoundary(t *testing.T) {
	t.Parallel()
	servers := []struct {
		name     string
		args     []string
		s, nbl   int
		variants []limBoundary
	}{
		{"S16384_nbl1024", []string{"--max-allowed-packet=16384", "--net-buffer-length=1024"}, 16384, 1024, []limBoundary{
			{name: "driverDefault", params: "", limit: 16383},
			{name: "maxAllowedPacket0", params: "maxAllowedPacket=0", limit: 16383},
		}},
		{"S8192_nbl16384", []string{"--max-allowed-packet=8192"}, 8192, 16384, []limBoundary{
			{name: "driverDefault", params: "", limit: 16383},
			{name: "maxAllowedPacket0", params: "maxAllowedPacket=0", limit: 8191},
		}},
	}
	for _, sv := range servers {
		t.Run(sv.name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Private(t, testserver.Options{Args: sv.args})
			admin, _ := openDSN(t, srv.DSN(""))
			if s, nbl := queryInt(t, admin, "SELECT @@max_allowed_packet"), queryInt(t, admin, "SELECT @@net_buffer_length"); s != sv.s || nbl != sv.nbl {
				t.Fatalf("server has max_allowed_packet=%d net_buffer_length=%d, want %d and %d", s, nbl, sv.s, sv.nbl)
			}
			for _, v := range sv.variants {
				t.Run(v.name, func(t *testing.T) { v.run(t, srv, admin) })
			}
		})
	}
}

type limBoundary struct {
	name   string
	params string
	limit  int // the expected Limits.Packet()
}

func (v limBoundary) run(t *testing.T, srv *testserver.Server, admin *sql.DB) {
	b := limBoundaryRun{v, srv, admin}
	t.Run("ChunksAtLimit", b.chunksAtLimit)
	t.Run("ChunksOverLimit", b.chunksOverLimit)
	if !b.clientIsServerLimit() {
		t.Run("RowAtLimit", b.rowAtLimit)
	} else {
		t.Run("LongValueAtLimit", b.longValueAtLimit)
		t.Run("LongValueOverLimit", b.longValueOverLimit)
	}
	t.Run("RowOverLimit", b.rowOverLimit)
}

// limBoundaryRun is a variant of TestLimitBoundary on its server.
type limBoundaryRun struct {
	limBoundary
	srv   *testserver.Server
	admin *sql.DB
}

// clientIsServerLimit: the driver's limit is S-1, so a value big enough to
// fill a one-row statement goes as long data; the oversized row is then
// built of many small values instead.
func (b limBoundaryRun) clientIsServerLimit() bool {
	return strings.Contains(b.params, "maxAllowedPacket=0")
}

// load inserts rows into a new table through a captured pool of the
// variant.
func (b limBoundaryRun) load(t *testing.T, rows [][]any) (batch.Result, *wirecap.Recorder, string, error) {
	t.Helper()
	dsn, rec := limCapturedDSN(t, b.srv, b.params, nil)
	db, cfg := openDSN(t, dsn)
	table := newTable(t, b.admin, limTable)
	res, err := batch.Insert(context.Background(), db, batch.Values(table, limCols, rows), batch.DriverConfig(cfg))
	return res, rec, table, err
}

// chunksAtLimit: three groups of 256 rows, each group's statement exactly
// the limit: row 257 never fits, 256 is a statement shape, so each group
// must go as one statement, and be accepted.
func (b limBoundaryRun) chunksAtLimit(t *testing.T) {
	rows := limGroups(t, 3, 256, b.limit)
	res, rec, table, err := b.load(t, rows)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if res.Chunks != 3 || res.Retries != 0 || res.MinPacketLimit != b.limit || res.Bytes != int64(3*b.limit) {
		t.Errorf("Chunks=%d Retries=%d MinPacketLimit=%d Bytes=%d, want 3, 0, %d, %d",
			res.Chunks, res.Retries, res.MinPacketLimit, res.Bytes, b.limit, 3*b.limit)
	}
	if got, want := limInserts(t, rec), []int{b.limit, b.limit, b.limit}; !slices.Equal(got, want) {
		t.Errorf("EXECUTE payloads on the wire = %v, want %v", got, want)
	}
	for _, p := range limPrepares(rec) {
		if p > b.limit {
			t.Errorf("PREPARE of %d bytes, over the %d limit", p, b.limit)
		}
	}
	limCheckTable(t, b.admin, table, limCols, rows)
}

// chunksOverLimit: the same groups one byte larger: no group fits in one
// statement.
func (b limBoundaryRun) chunksOverLimit(t *testing.T) {
	rows := limGroups(t, 3, 256, b.limit+1)
	res, rec, table, err := b.load(t, rows)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	execs := limInserts(t, rec)
	if res.Chunks <= 3 || res.Retries != 0 || len(execs) != res.Chunks || slices.Max(execs) > b.limit || int64(limSum(execs)) != res.Bytes {
		t.Errorf("Chunks=%d Retries=%d Bytes=%d, EXECUTEs on the wire %v: want more than 3 chunks, no retry, none over %d, Bytes = their sum",
			res.Chunks, res.Retries, res.Bytes, execs, b.limit)
	}
	limCheckTable(t, b.admin, table, limCols, rows)
}

// rowAtLimit: a one-row statement of exactly the limit, between others.
func (b limBoundaryRun) rowAtLimit(t *testing.T) {
	rows := append(limExactRows(t, 0, 10, 700), limBigRow(t, 10, b.limit))
	rows = append(rows, limExactRows(t, 11, 10, 700)...)
	res, rec, table, err := b.load(t, rows)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if execs := limInserts(t, rec); res.Retries != 0 || !slices.Contains(execs, b.limit) || slices.Max(execs) != b.limit {
		t.Errorf("Retries=%d, EXECUTEs on the wire %v: want no retry and one of exactly %d", res.Retries, execs, b.limit)
	}
	limCheckTable(t, b.admin, table, limCols, rows)
}

// With the client limit at the server's, M = S-1 = limit, so a value of M/3
// bytes or more in a one-row statement goes as COM_STMT_SEND_LONG_DATA, in
// packets of at most M-1 bytes; the server takes at most S bytes of long
// data for one parameter (MariaDB error 1105 beyond, measured).

func (b limBoundaryRun) longValueAtLimit(t *testing.T) {
	s := b.limit + 1
	rows := [][]any{{int64(1), limPayload(1, s)}}
	res, rec, table, err := b.load(t, rows)
	if err != nil {
		t.Fatalf("Insert of a %d-byte value: %v", s, err)
	}
	var long []int
	for _, p := range rec.Commands(wirecap.ComStmtSendLongData) {
		long = append(long, p.Len)
	}
	if want := []int{b.limit - 1, 7 + s - (b.limit - 8)}; res.Retries != 0 || !slices.Equal(long, want) {
		t.Errorf("Retries=%d, long-data packets %v, want none and %v", res.Retries, long, want)
	}
	limCheckTable(t, b.admin, table, limCols, rows)
}

func (b limBoundaryRun) longValueOverLimit(t *testing.T) {
	s := b.limit + 1
	_, rec, table, err := b.load(t, [][]any{{int64(0), []byte("x")}, {int64(1), limPayload(1, s+1)}})
	var tl *batch.RowTooLargeError
	if !errors.As(err, &tl) || tl.Row != 1 || tl.Size != s+1 || tl.Limit != s {
		t.Errorf("Insert of a %d-byte value: error %v, want *RowTooLargeError{Row: 1, Size: %d, Limit: %d}", s+1, err, s+1, s)
	}
	if n := countRows(t, b.admin, table); n != 0 || len(rec.Commands(wirecap.ComStmtSendLongData)) != 0 {
		t.Errorf("%d rows written, %d long-data packets sent; want none", n, len(rec.Commands(wirecap.ComStmtSendLongData)))
	}
}

// rowOverLimit: a row whose one-row EXECUTE is limit+1 bytes, after 300
// good rows, is refused before anything is written.
func (b limBoundaryRun) rowOverLimit(t *testing.T) {
	cols, def := limCols, limTable
	var rows [][]any
	if b.clientIsServerLimit() {
		cols, def = []string{"id"}, "id BIGINT PRIMARY KEY"
		for j := 1; j <= 250; j++ {
			cols = append(cols, "c"+strconv.Itoa(j))
			def += ", c" + strconv.Itoa(j) + " BLOB"
		}
		for i := 0; i < 400; i++ {
			rows = append(rows, limWideRow(t, int64(i), 250, 251*4))
		}
		rows[300] = limWideRow(t, 300, 250, b.limit+1)
	} else {
		rows = limExactRows(t, 0, 400, 400*13+500)
		rows[300] = limBigRow(t, 300, b.limit+1)
	}
	dsn, rec := limCapturedDSN(t, b.srv, b.params, nil)
	db, cfg := openDSN(t, dsn)
	table := newTable(t, b.admin, def)
	res, err := batch.Insert(context.Background(), db, batch.Values(table, cols, rows), batch.DriverConfig(cfg))
	var tl *batch.RowTooLargeError
	if !errors.As(err, &tl) || tl.Row != 300 || tl.Size != b.limit+1 || tl.Limit != b.limit {
		t.Fatalf("Insert error = %v, want *RowTooLargeError{Row: 300, Size: %d, Limit: %d}", err, b.limit+1, b.limit)
	}
	if !slices.Equal(res.NotSent, []batch.Range{{First: 0, End: 400}}) || res.Written != nil || res.Chunks != 0 {
		t.Errorf("Result NotSent=%v Written=%v Chunks=%d, want all 400 rows not sent", res.NotSent, res.Written, res.Chunks)
	}
	if execs := limInserts(t, rec); len(execs) != 0 {
		t.Errorf("EXECUTEs on the wire = %v, want none", execs)
	}
	if n := countRows(t, b.admin, table); n != 0 {
		t.Errorf("table has %d rows, want 0", n)
	}
}

// ---- 2. the 65,535-placeholder cap ----

// TestLimitPlaceholders checks that a statement never holds more than 65,535
// placeholders (the server refuses more at PREPARE with 1390): rows per
// statement are capped at floor(65535/columns), exactly 65,535 placeholders
// are accepted, and a one-column table takes 65,535-row statements.
func TestLimitPlaceholders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Private(t, testserver.Options{})
	admin, _ := openDSN(t, srv.DSN(""))
	tests := []struct {
		name             string
		cols, n, maxRows int
		perStatement     int // floor(65535/cols)
	}{
		{"80cols", 80, 2000, 1000, 819},
		{"85cols_65535placeholders", 85, 2000, 1000, 771},
		{"1col", 1, 140000, 70000, 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols := []string{"id"}
			def := "id BIGINT PRIMARY KEY"
			for j := 1; j < tt.cols; j++ {
				cols = append(cols, "c"+strconv.Itoa(j))
				def += ", c" + strconv.Itoa(j) + " INT NOT NULL"
			}
			rows := make([][]any, tt.n)
			for i := range rows {
				rows[i] = make([]any, tt.cols)
				for j := range rows[i] {
					rows[i][j] = int64(i*tt.cols + j)
				}
			}
			dsn, rec := limCapturedDSN(t, srv, "", nil)
			db, cfg := openDSN(t, dsn)
			table := newTable(t, admin, def)
			// MaxBytes above the packet limit: the placeholder cap, not
			// DefaultBytes, must end these statements (~663 KB each).
			res, err := batch.Insert(ctx, db, batch.Values(table, cols, rows), batch.MaxRows(tt.maxRows), batch.MaxBytes(1<<30), batch.DriverConfig(cfg))
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			want := (tt.n + tt.perStatement - 1) / tt.perStatement
			if res.Chunks != want || res.Retries != 0 || res.Rows != int64(tt.n) {
				t.Errorf("Chunks=%d Retries=%d Rows=%d, want %d, 0, %d", res.Chunks, res.Retries, res.Rows, want, tt.n)
			}
			// The largest statement carries perStatement rows: its EXECUTE
			// is 10 + ceil(N/8) + 1 + 2N + 8N bytes for N placeholders.
			n := tt.perStatement * tt.cols
			if got, want := slices.Max(limInserts(t, rec)), 10+(n+7)/8+1+10*n; got != want {
				t.Errorf("largest EXECUTE = %d bytes, want %d (%d placeholders)", got, want, n)
			}
			limCheckTable(t, admin, table, cols, rows)
		})
	}
}

// ---- 3. limits that change or lie ----
//
// A real 1153 cannot be provoked through a pool whose configuration the
// library knows: it reads the limits on the very connection it then writes
// on, the session's max_allowed_packet is frozen at connect (SET GLOBAL only
// reaches new connections; SET SESSION is refused), net_buffer_length is
// read-only per session too (1621, also when given as a DSN parameter), and
// compression comes from the config or from the server. A 1153 takes a lie:
// a config that hides compression (TestLimitCompression), or a handle whose
// queries and statements reach different connections (below).

// limWriteGate holds a COM_STMT_EXECUTE write of at least 64 KiB half-way
// through, once per connection, after skip such writes went through, until
// released: the test kills the connection while the client is in the middle
// of sending a statement. The rest of the packet is then written in 4 KiB
// pieces 1 ms apart, like a slow link, so that the reset the server sends
// after the kill is seen by a later piece.
type limWriteGate struct {
	skip    atomic.Int64
	on      atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func newLimWriteGate(skip int) *limWriteGate {
	g := &limWriteGate{held: make(chan struct{}, 64), release: make(chan struct{})}
	g.skip.Store(int64(skip))
	g.on.Store(true)
	return g
}

// open lets held writes go on; later writes are not held.
func (g *limWriteGate) open() {
	if g.on.Swap(false) {
		close(g.release)
	}
}

func (g *limWriteGate) wrap(c net.Conn) net.Conn { return &limGatedConn{Conn: c, g: g} }

type limGatedConn struct {
	net.Conn
	g    *limWriteGate
	done bool // one write of this connection was held already
}

func (c *limGatedConn) Write(b []byte) (int, error) {
	exec := len(b) >= 64<<10 && b[3] == 0 && b[4] == wirecap.ComStmtExecute
	if !exec || c.done || !c.g.on.Load() || c.g.skip.Add(-1) >= 0 {
		return c.Conn.Write(b)
	}
	c.done = true
	n, err := c.Conn.Write(b[:len(b)/2])
	if err != nil {
		return n, err
	}
	c.g.held <- struct{}{}
	<-c.g.release
	for n < len(b) {
		m, err := c.Conn.Write(b[n:min(n+4096, len(b))])
		n += m
		if err != nil {
			return n, err
		}
		time.Sleep(time.Millisecond)
	}
	return n, nil
}

// TestLimitLowered lowers max_allowed_packet from 1 MiB to 64 KiB in the
// middle of a load of ~865 KB statements and kills the library's
// connections, so that the connections it takes next have the lower limit.
func TestLimitLowered(t *testing.T) {
	t.Parallel()
	srv := testserver.Private(t, testserver.Options{Args: []string{"--max-allowed-packet=1048576"}})
	admin, _ := openDSN(t, srv.DSN(""))
	adminConn, err := admin.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adminConn.Close() })
	e := &limLowered{srv: srv, admin: admin, adminConn: adminConn, rows: make([][]any, limLoweredN)}
	for i := range e.rows {
		e.rows[i] = []any{int64(i), limPayload(int64(i), limLoweredRowBytes)}
	}
	t.Run("KilledMidWrite", e.killedMidWrite)
	t.Run("KilledMidStatement", e.killedMidStatement)
	t.Run("DiscoveryOnAnotherConnection1153", e.discoveryOnAnotherConnection)
}

// The load of TestLimitLowered: 1152 rows of 9,000-byte values. At 1 MiB
// (limit 1048575) 116 rows fit, rounded to 96-row statements of 865,475
// bytes (12 of them); at 64 KiB (limit 65535) 7 rows fit, rounded to 6. The
// loads pass MaxBytes above the packet limit, so that the limit, not
// DefaultBytes, sizes them.
const limLoweredN, limLoweredRowBytes, limLoweredLimit = 1152, 9000, 65535

// limLowered is the setting of TestLimitLowered's cases: the server, a pool
// and a connection on it for the test's own statements, and the rows.
type limLowered struct {
	srv       *testserver.Server
	admin     *sql.DB
	adminConn *sql.Conn
	rows      [][]any
}

func (e *limLowered) setGlobal(t *testing.T, s int) {
	t.Helper()
	if _, err := e.adminConn.ExecContext(context.Background(), "SET GLOBAL max_allowed_packet = ?", s); err != nil {
		t.Fatalf("SET GLOBAL max_allowed_packet: %v", err)
	}
}

// load starts an Insert of the rows into table through db, with opts.
func (e *limLowered) load(db *sql.DB, table string, opts ...batch.Option) *bgLoad {
	return startLoad(func() (batch.Result, error) {
		return batch.Insert(context.Background(), db, batch.Values(table, limCols, e.rows),
			append([]batch.Option{batch.MaxRows(100000), batch.MaxBytes(1 << 30)}, opts...)...)
	})
}

// killedMidWrite kills the connections while both workers are in the
// middle of writing a statement.
func (e *limLowered) killedMidWrite(t *testing.T) {
	const workers = 2
	e.setGlobal(t, 1<<20)
	gate := newLimWriteGate(2)
	defer gate.open()
	dsn, rec := limCapturedDSN(t, e.srv, "", gate.wrap)
	db, cfg := openDSN(t, dsn)
	table := newTable(t, e.admin, limTable)
	log := &logRecorder{}
	load := e.load(db, table, batch.Workers(workers), batch.DriverConfig(cfg), batch.Logger(log.logger()))
	// Wait until both workers are in the middle of writing a statement.
	held := 0
	waitFor(t, workers*30*time.Second, fmt.Sprintf("all %d connections at a held write", workers), func() bool {
		for {
			select {
			case <-gate.held:
				held++
			default:
				return held == workers
			}
		}
	}, during(load), detail(func() string { return fmt.Sprintf("%d of %d connections reached a held write\n%s", held, workers, log) }))
	before := len(rec.Conns())
	e.setGlobal(t, 65536)
	killed := killAll(t, e.adminConn, "USER = 'root'")
	gate.open()
	res, err := load.wait()
	t.Logf("killed %v; Result: Chunks=%d Retries=%d MinPacketLimit=%d", killed, res.Chunks, res.Retries, res.MinPacketLimit)
	if err != nil {
		t.Fatalf("Insert: %v\n%s", err, log)
	}
	if res.Rows != limLoweredN || res.Retries < workers || res.MinPacketLimit != limLoweredLimit {
		t.Errorf("Rows=%d Retries=%d MinPacketLimit=%d, want %d, at least %d (each killed statement resent), %d",
			res.Rows, res.Retries, res.MinPacketLimit, limLoweredN, workers, limLoweredLimit)
	}
	// The fault happened: statements of ~865 KB before it, and new
	// connections afterwards whose statements all fit in 64 KiB.
	var oldMax, newMax, newConns int
	seen := map[int]bool{}
	for _, p := range rec.Commands(wirecap.ComStmtExecute) {
		if p.Conn <= before {
			oldMax = max(oldMax, p.Len)
			continue
		}
		newMax = max(newMax, p.Len)
		if !seen[p.Conn] {
			seen[p.Conn] = true
			newConns++
		}
	}
	if oldMax != 865475 || newConns == 0 || newMax > limLoweredLimit {
		t.Errorf("largest EXECUTE before the fault %d (want 865475), after it %d on %d new connections (want <= %d on at least 1)",
			oldMax, newMax, newConns, limLoweredLimit)
	}
	limCheckTable(t, e.admin, table, limCols, e.rows)
}

// killedMidStatement: the kill lands while the server runs the fourth
// statement: it waits for a row lock held by another transaction. The
// killed statement is rolled back, so nothing of it is written; the client
// cannot tell (the reply is lost), but the table's NOT NULL primary key lets
// the library look the rows up, or resend safely.
func (e *limLowered) killedMidStatement(t *testing.T) {
	ctx := context.Background()
	e.setGlobal(t, 1<<20)
	dsn, _ := limCapturedDSN(t, e.srv, "", nil)
	db, cfg := openDSN(t, dsn)
	table := newTable(t, e.admin, limTable)
	// A committed row first: MariaDB takes a table lock, not a row lock,
	// for an insert into an empty table.
	mustExec(t, e.admin, "INSERT INTO `"+table+"` (id, v) VALUES (-1, 'sentinel')")
	tx, err := e.adminConn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const locked = 3*96 + 10 // a row of the fourth statement
	if _, err := tx.ExecContext(ctx, "INSERT INTO `"+table+"` (id, v) VALUES (?, 'x')", locked); err != nil {
		t.Fatal(err)
	}
	log := &logRecorder{}
	// CommitEvery(1): the scenario counts statements committed one by one.
	load := e.load(db, table, batch.Workers(1), batch.CommitEvery(1), batch.DriverConfig(cfg), batch.Logger(log.logger()))
	// With one worker, once the first three statements are committed (289
	// rows with the sentinel) the statement executing is the fourth, which
	// cannot get past the locked row.
	var victim int64
	waitFor(t, 30*time.Second, "the fourth statement to start", func() bool {
		committed := countRows(t, e.admin, table)
		err := e.admin.QueryRow("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Execute' AND INFO LIKE 'INSERT INTO%'").Scan(&victim)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if committed > 1+3*96 {
			t.Fatalf("%d rows committed: the locked row did not stop the fourth statement", committed)
		}
		return committed == 1+3*96 && err == nil
	}, every(5*time.Millisecond), during(load), detail(func() string { return limServerState(e.admin) + "\n" + log.String() }))
	// adminConn holds the lock; kill through another connection.
	killer, err := e.admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	if _, err := killer.ExecContext(ctx, "SET GLOBAL max_allowed_packet = 65536"); err != nil {
		t.Fatal(err)
	}
	killConn(t, killer, victim)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	res, loadErr := load.wait()
	mustExec(t, e.admin, "DELETE FROM `"+table+"` WHERE id = -1")
	t.Logf("killed %d; Result: Chunks=%d Retries=%d MinPacketLimit=%d Unknown=%v", victim, res.Chunks, res.Retries, res.MinPacketLimit, res.Unknown)
	// Whatever the library decides, its Result must be exact.
	if got := countRows(t, e.admin, table); int64(got) != res.Rows {
		t.Errorf("table has %d rows, Result.Rows = %d", got, res.Rows)
	}
	if loadErr != nil {
		t.Fatalf("Insert: %v (Written=%v Unknown=%v NotSent=%v); the killed statement was rolled back and the table has a NOT NULL primary key, so it can be looked up or resent safely\n%s",
			loadErr, res.Written, res.Unknown, res.NotSent, log)
	}
	if res.Retries == 0 || res.MinPacketLimit != limLoweredLimit {
		t.Errorf("Retries=%d MinPacketLimit=%d, want > 0 and %d", res.Retries, res.MinPacketLimit, limLoweredLimit)
	}
	limCheckTable(t, e.admin, table, limCols, e.rows)
}

// discoveryOnAnotherConnection: the session limit is frozen at connect and
// read on the very connection that executes, so a pool never earns a 1153.
// A handle whose queries and statements go to different connections (here
// a read/write-splitting wrapper, the reads on a connection made before
// max_allowed_packet was lowered) does: the statement gets a real 1153,
// nothing is resent on a caller-owned handle, and the Result says that
// nothing was written.
func (e *limLowered) discoveryOnAnotherConnection(t *testing.T) {
	e.setGlobal(t, 1<<20)
	read, cfg := openDSN(t, e.srv.DSN(""))
	read.SetMaxOpenConns(1)
	e.setGlobal(t, 65536)
	write, _ := openDSN(t, e.srv.DSN(""))
	write.SetMaxOpenConns(1)
	if r, w := queryInt(t, read, "SELECT @@max_allowed_packet"), queryInt(t, write, "SELECT @@max_allowed_packet"); r != 1<<20 || w != 65536 {
		t.Fatalf("session max_allowed_packet: reads %d, writes %d; want 1048576 and 65536", r, w)
	}
	table := newTable(t, e.admin, limTable)
	res, err := batch.Insert(context.Background(), limSplitDB{read: read, write: write}, batch.Values(table, limCols, e.rows[:200]),
		batch.MaxBytes(150000), batch.DriverConfig(cfg))
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	var ne *net.OpError
	if !errors.As(err, &ce) || ce.Range.First != 0 || !(errors.As(err, &me) && me.Number == 1153 || errors.As(err, &ne) && ne.Op == "write") {
		t.Fatalf("Insert error = %v, want a *ChunkError for row 0 wrapping 1153 (or the write it cut)", err)
	}
	t.Logf("error: %v", err)
	if res.MinPacketLimit != 1<<20-1 || res.Written != nil || !slices.Equal(res.NotSent, []batch.Range{{First: 0, End: 200}}) {
		t.Errorf("MinPacketLimit=%d Written=%v NotSent=%v, want %d (read on the other connection), nothing written, all 200 not sent",
			res.MinPacketLimit, res.Written, res.NotSent, 1<<20-1)
	}
	if n := countRows(t, e.admin, table); n != 0 {
		t.Errorf("table has %d rows, want 0", n)
	}
}

// limServerState describes the server's threads and InnoDB transactions, for
// failure messages.
func limServerState(db *sql.DB) string {
	var b strings.Builder
	rows, err := db.Query("SELECT ID, COMMAND, STATE, TIME_MS, LEFT(COALESCE(INFO, ''), 80) FROM information_schema.PROCESSLIST")
	if err != nil {
		return err.Error()
	}
	for rows.Next() {
		var v [5]sql.NullString
		rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4])
		fmt.Fprintf(&b, "%v\n", v)
	}
	rows.Close()
	var typ, name, status string
	if db.QueryRow("SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status) == nil {
		if i := strings.Index(status, "TRANSACTIONS"); i >= 0 {
			b.WriteString(status[i:min(len(status), i+2500)])
		}
	}
	return b.String()
}

// limSplitDB sends queries to one pool and statements to another, as a
// read/write-splitting wrapper does. It has no Conn method, so the library
// treats it as a caller-owned handle.
type limSplitDB struct{ read, write *sql.DB }

func (d limSplitDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.write.ExecContext(ctx, q, args...)
}

func (d limSplitDB) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return d.write.PrepareContext(ctx, q)
}

func (d limSplitDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.read.QueryContext(ctx, q, args...)
}

func (d limSplitDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.read.QueryRowContext(ctx, q, args...)
}

// TestLimitClientBelowAssumed opens the pool with maxAllowedPacket=32768 and
// does not tell the library: it assumes the driver's 64 MiB, plans 1000-row
// statements of 63,261 bytes, gets mysql.ErrPktTooLarge (nothing written),
// lowers its assumption and re-splits.
func TestLimitClientBelowAssumed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Private(t, testserver.Options{})
	admin, _ := openDSN(t, srv.DSN(""))
	// 5000 rows of 50-byte values: 11 + ceil(k/4) + 63k bytes for k rows, so
	// at most 517 rows fit in 32768 bytes.
	var rows [][]any
	for g := 0; g < 50; g++ {
		rows = append(rows, limExactRows(t, int64(g*100), 100, 11+25+6300)...)
	}
	const client = 32768

	t.Run("Load", func(t *testing.T) {
		dsn, rec := limCapturedDSN(t, srv, "maxAllowedPacket=32768", nil)
		db, _ := openDSN(t, dsn)
		table := newTable(t, admin, limTable)
		log := &logRecorder{}
		res, err := batch.Insert(ctx, db, batch.Values(table, limCols, rows), batch.Logger(log.logger()))
		if err != nil {
			t.Fatalf("Insert: %v\n%s", err, log)
		}
		execs := limInserts(t, rec)
		t.Logf("Chunks=%d Retries=%d MinPacketLimit=%d largest EXECUTE %d", res.Chunks, res.Retries, res.MinPacketLimit, slices.Max(execs))
		if res.Retries == 0 || res.Chunks < (5000+516)/517 || slices.Max(execs) > client || res.Rows != 5000 {
			t.Errorf("Retries=%d Chunks=%d Rows=%d largest EXECUTE %d: want retries, at least %d chunks, all rows, none over %d",
				res.Retries, res.Chunks, res.Rows, slices.Max(execs), (5000+516)/517, client)
		}
		limCheckTable(t, admin, table, limCols, rows)
	})

	t.Run("ConfigClaimsMore", func(t *testing.T) {
		// DriverConfig says 64 MiB but the pool's driver refuses packets over
		// 32768 (mysql.ErrPktTooLarge, nothing written). The library
		// trusts the config, so it cannot lower its client limit; it must
		// still get every row through.
		dsn, rec := limCapturedDSN(t, srv, "maxAllowedPacket=32768", nil)
		db, _ := openDSN(t, dsn)
		claims, err := mysql.ParseDSN(srv.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		table := newTable(t, admin, limTable)
		res, err := batch.Insert(ctx, db, batch.Values(table, limCols, rows), batch.DriverConfig(claims),
			batch.Retry(batch.RetryPolicy{InitialBackoff: 5 * time.Millisecond}))
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		t.Logf("Chunks=%d Retries=%d MinPacketLimit=%d", res.Chunks, res.Retries, res.MinPacketLimit)
		if res.Retries == 0 || res.Rows != 5000 || slices.Max(limInserts(t, rec)) > client {
			t.Errorf("Retries=%d Rows=%d largest EXECUTE %d: want retries, all 5000 rows, none over %d",
				res.Retries, res.Rows, slices.Max(limInserts(t, rec)), client)
		}
		limCheckTable(t, admin, table, limCols, rows)
	})

	t.Run("MaxPacketReflectsLoweredClientLimit", func(t *testing.T) {
		// Result.MinPacketLimit is the smallest packet limit the package worked
		// with. After the driver refused a packet it knows only that the
		// driver's limit is below that packet (no API reveals it), so
		// MinPacketLimit must drop below the smallest refused packet, but need
		// not reach the driver's real 32768.
		dsn, _ := limCapturedDSN(t, srv, "maxAllowedPacket=32768", nil)
		db, _ := openDSN(t, dsn)
		table := newTable(t, admin, limTable)
		res, err := batch.Insert(ctx, db, batch.Values(table, limCols, rows), batch.Workers(1))
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		if res.MinPacketLimit >= 16<<20-1 || res.Retries == 0 {
			t.Errorf("MinPacketLimit = %d, Retries = %d after the driver refused packets over %d; want it lowered below the refused packets",
				res.MinPacketLimit, res.Retries, client)
		}
	})
}

// ---- 4. compression ----

// TestLimitCompression loads statements of exactly the compressed limit:
// with S=16384 and nbl=1024 the server accepts P + 4 <= 16383, so P <= 16379.
func TestLimitCompression(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Private(t, testserver.Options{Args: []string{"--max-allowed-packet=16384", "--net-buffer-length=1024"}})
	admin, _ := openDSN(t, srv.DSN(""))
	const limit = 16379
	tests := []struct {
		name       string
		withConfig bool // else the library asks SHOW SESSION STATUS LIKE 'Compression'
	}{
		{"DriverConfig", true},
		{"Discovered", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn, rec := limCapturedDSN(t, srv, "compress=true", nil)
			db, cfg := openDSN(t, dsn)
			var opts []batch.Option
			if tt.withConfig {
				opts = append(opts, batch.DriverConfig(cfg))
			}
			table := newTable(t, admin, limTable)
			rows := limGroups(t, 3, 256, limit)
			res, err := batch.Insert(ctx, db, batch.Values(table, limCols, rows), opts...)
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			if res.Chunks != 3 || res.Retries != 0 || res.MinPacketLimit != limit {
				t.Errorf("Chunks=%d Retries=%d MinPacketLimit=%d, want 3, 0, %d", res.Chunks, res.Retries, res.MinPacketLimit, limit)
			}
			for _, p := range rec.Commands(wirecap.ComStmtExecute) {
				if !p.Compressed {
					t.Fatalf("EXECUTE %+v travelled uncompressed", p)
				}
			}
			if got := limInserts(t, rec); !slices.Equal(got, []int{limit, limit, limit}) {
				t.Errorf("EXECUTE payloads on the wire = %v, want three of %d", got, limit)
			}
			limCheckTable(t, admin, table, limCols, rows)

			over := append(limExactRows(t, 0, 20, 276+20*40), limBigRow(t, 20, limit+1))
			_, err = batch.Insert(ctx, db, batch.Values(newTable(t, admin, limTable), limCols, over), opts...)
			var tl *batch.RowTooLargeError
			if !errors.As(err, &tl) || tl.Row != 20 || tl.Size != limit+1 || tl.Limit != limit {
				t.Errorf("Insert of a %d-byte row: error %v, want *RowTooLargeError{Row: 20, Size: %d, Limit: %d}", limit+1, err, limit+1, limit)
			}
		})
	}

	t.Run("ConfigWithoutCompress1153", func(t *testing.T) {
		// A config that says "no compression" for a compressing pool makes
		// the library plan 16383-byte statements: the server refuses each
		// with a real 1153 (and closes the connection). Nothing was
		// written, so the library resends smaller statements.
		dsn, rec := limCapturedDSN(t, srv, "compress=true", nil)
		db, _ := openDSN(t, dsn)
		plain, err := mysql.ParseDSN(srv.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		table := newTable(t, admin, limTable)
		rows := limGroups(t, 3, 256, limit+4)
		log := &logRecorder{}
		res, err := batch.Insert(ctx, db, batch.Values(table, limCols, rows), batch.DriverConfig(plain), batch.Logger(log.logger()),
			batch.Retry(batch.RetryPolicy{InitialBackoff: 5 * time.Millisecond}))
		if err != nil {
			t.Fatalf("Insert: %v\n%s", err, log)
		}
		refused := 0
		for _, p := range limInserts(t, rec) {
			if p > limit {
				refused++
			}
		}
		if refused != 3 || log.countWith("errno", "1153") != 3 || res.Retries < 3 || res.Rows != int64(len(rows)) {
			t.Errorf("EXECUTEs over %d on the wire: %d, 1153s logged: %d, Retries=%d Rows=%d; want 3, 3, >= 3, %d\n%s",
				limit, refused, log.countWith("errno", "1153"), res.Retries, res.Rows, len(rows), log)
		}
		limCheckTable(t, admin, table, limCols, rows)
	})
}

// ---- 5. MaxBytes ----

// TestLimitMaxBytes checks that no EXECUTE exceeds MaxBytes(n), except a
// single row larger than n, which is sent alone.
func TestLimitMaxBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Private(t, testserver.Options{Args: []string{"--max-allowed-packet=16384", "--net-buffer-length=1024"}})
	admin, _ := openDSN(t, srv.DSN(""))
	// 640 rows (id, 50-byte value): k rows take 11 + ceil(k/4) + 63k bytes,
	// so 64 rows take 4059 bytes and one row 75.
	var rows [][]any
	for g := 0; g < 10; g++ {
		rows = append(rows, limExactRows(t, int64(g*64), 64, 4059)...)
	}
	tests := []struct {
		name      string
		n, rows   int
		minChunks int // ceil(rows / rows that fit in n)
		maxExec   int // the largest EXECUTE allowed
		every     int // if set, every EXECUTE has exactly this size
	}{
		{name: "64RowsExactly", n: 4059, rows: 640, minChunks: 10, maxExec: 4059, every: 4059},
		{name: "OneByteShortOf64Rows", n: 4058, rows: 640, minChunks: 11, maxExec: 4058},
		{name: "AboveThePacketLimit", n: 1 << 20, rows: 640, minChunks: 3, maxExec: 16383},
		{name: "BelowOneRow", n: 50, rows: 20, minChunks: 20, maxExec: 75, every: 75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn, rec := limCapturedDSN(t, srv, "", nil)
			db, cfg := openDSN(t, dsn)
			table := newTable(t, admin, limTable)
			in := rows[:tt.rows]
			res, err := batch.Insert(ctx, db, batch.Values(table, limCols, in), batch.MaxBytes(tt.n), batch.DriverConfig(cfg))
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			execs := limInserts(t, rec)
			t.Logf("MaxBytes(%d): %d chunks, EXECUTEs %d..%d bytes", tt.n, res.Chunks, slices.Min(execs), slices.Max(execs))
			if got := slices.Max(execs); got > tt.maxExec {
				t.Errorf("largest EXECUTE = %d bytes, want <= %d", got, tt.maxExec)
			}
			if tt.every > 0 && (slices.Min(execs) != tt.every || slices.Max(execs) != tt.every || res.Chunks != tt.minChunks) {
				t.Errorf("EXECUTEs %v, want %d of %d bytes", execs, tt.minChunks, tt.every)
			}
			if res.Chunks < tt.minChunks || len(execs) != res.Chunks || res.Retries != 0 || int64(limSum(execs)) != res.Bytes {
				t.Errorf("Chunks=%d Retries=%d Bytes=%d, %d EXECUTEs of %d bytes on the wire: want at least %d chunks, one EXECUTE each, no retry, Bytes = wire",
					res.Chunks, res.Retries, res.Bytes, len(execs), limSum(execs), tt.minChunks)
			}
			limCheckTable(t, admin, table, limCols, in)
		})
	}
}

// ---- 6. the default byte budget ----

// limBudgetRow is a row of TestLimitDefaultBytes read back.
type limBudgetRow = idRow[[]byte]

// limBudgetRows returns rows (id, v) as limBudgetRows, for go-cmp.
func limBudgetRows(rows [][]any) []limBudgetRow {
	out := make([]limBudgetRow, len(rows))
	for i, r := range rows {
		out[i] = limBudgetRow{r[0].(int64), r[1].([]byte)}
	}
	return out
}

// limReadBudgetRows reads table (id, v) sorted by id.
func limReadBudgetRows(t testing.TB, db *sql.DB, table string) []limBudgetRow {
	t.Helper()
	return readIDRows[[]byte](t, db, table)
}

// TestLimitDefaultBytes checks the default byte budget: without MaxBytes,
// under a 16 MiB packet limit, no EXECUTE of several rows exceeds
// DefaultBytes, and a single row larger than DefaultBytes is still sent,
// alone and inline.
func TestLimitDefaultBytes(t *testing.T) {
	t.Parallel()
	srv := testserver.Private(t, testserver.Options{Args: []string{"--max-allowed-packet=16M"}})
	admin, _ := openDSN(t, srv.DSN(""))
	if s := queryInt(t, admin, "SELECT @@max_allowed_packet"); s != 16<<20 {
		t.Fatalf("server has max_allowed_packet=%d, want %d", s, 16<<20)
	}
	e := newLimBudget(t, srv, admin)
	const packet = 16<<20 - 1 // the driver's default limit is 64 MiB: the server's binds

	for _, tc := range []struct {
		name  string
		load  func(t *testing.T, db *sql.DB, table string, cfg *mysql.Config) batch.Result
		check func(t *testing.T, res batch.Result, execs []int) // beyond what every case checks
	}{
		{"Insert", func(t *testing.T, db *sql.DB, table string, cfg *mysql.Config) batch.Result {
			res, err := batch.Insert(context.Background(), db, batch.Values(table, limCols, e.rows), batch.DriverConfig(cfg))
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			return res
		}, func(t *testing.T, res batch.Result, execs []int) {
			if res.Chunks != 51 || res.Retries != 0 || res.MinPacketLimit != packet || res.Bytes != int64(limSum(execs)) || res.Rows != limBudgetN {
				t.Errorf("Chunks=%d Retries=%d MinPacketLimit=%d Bytes=%d Rows=%d, want 51, 0, %d, %d (the wire), %d",
					res.Chunks, res.Retries, res.MinPacketLimit, res.Bytes, res.Rows, packet, limSum(execs), limBudgetN)
			}
		}},
		// The Writer hands rows over by DefaultBytes of values before the
		// first connection's limits are known, and by the connection's
		// budget afterwards: the statements stay within DefaultBytes too.
		// A hand-over of 15 rows is planned as 12 + 3, and the 3 stay with
		// the Writer to start the next chunk, so it sends the statements
		// Insert sends: 50 of 12 rows and the last 5 at Close.
		{"Writer", func(t *testing.T, db *sql.DB, table string, cfg *mysql.Config) batch.Result {
			ctx := context.Background()
			w, err := batch.NewWriter(db, table, limCols, batch.DriverConfig(cfg))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range e.rows {
				if err := w.Write(ctx, r...); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			res, err := w.Close(ctx)
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
			return res
		}, func(t *testing.T, res batch.Result, execs []int) {
			if res.Chunks != len(execs) || res.Retries != 0 || res.Bytes != int64(limSum(execs)) || res.Rows != limBudgetN {
				t.Errorf("Chunks=%d Retries=%d Bytes=%d Rows=%d, %d EXECUTEs of %d bytes on the wire: want one EXECUTE a chunk, no retry, Bytes = wire, %d rows",
					res.Chunks, res.Retries, res.Bytes, res.Rows, len(execs), limSum(execs), limBudgetN)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn, rec := limCapturedDSN(t, srv, "", nil)
			db, cfg := openDSN(t, dsn)
			table := newTable(t, admin, limBudgetTable)
			res := tc.load(t, db, table, cfg)
			// Two workers, for Insert: the EXECUTEs of their connections
			// interleave.
			execs := limInserts(t, rec)
			want := append([]int{e.last}, slices.Repeat([]int{e.full}, 50)...)
			if got := slices.Sorted(slices.Values(execs)); !slices.Equal(got, want) {
				t.Errorf("EXECUTE payloads on the wire (sorted) = %v, want one of %d and 50 of %d", got, e.last, e.full)
			}
			if got := slices.Max(execs); got > batch.DefaultBytes {
				t.Errorf("largest EXECUTE = %d bytes, over DefaultBytes (%d)", got, batch.DefaultBytes)
			}
			tc.check(t, res, execs)
			if diff := cmp.Diff(limBudgetRows(e.rows), limReadBudgetRows(t, admin, table), byteSlices); diff != "" {
				t.Errorf("table (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("RowOverBudget", e.rowOverBudget)
}

// The input of TestLimitDefaultBytes: 605 rows of 17,000-byte values. k
// rows take 11 + ceil(k/4) + 17,015k bytes (10 + ceil(2k/8) + 1 + 2*2k,
// then 8 + 3 + 17,000 a row), all inline: the long-data threshold is at
// least 64 MiB/2001 = 33,537. 14 rows take 238,225 bytes, within
// DefaultBytes (253,952); 15 take 255,240. 14 rounds down to the shape 12,
// 204,194 bytes: 605 rows are 50 statements of 12 and one of the last 5
// (85,088 bytes). The packet limit alone would have sent them in one
// statement of ~10.3 MB.
const (
	limBudgetN, limBudgetValue = 605, 17000
	limBudgetTable             = "id BIGINT PRIMARY KEY, v MEDIUMBLOB"
)

// limBudget is the setting of TestLimitDefaultBytes: its server, the input,
// and the sizes of a full statement (12 rows) and of the last (5 rows).
type limBudget struct {
	srv        *testserver.Server
	admin      *sql.DB
	rows       [][]any
	full, last int
}

func limBudgetValueRow(id int64, n int) []any { return []any{id, limPayload(id, n)} }

func newLimBudget(t *testing.T, srv *testserver.Server, admin *sql.DB) *limBudget {
	t.Helper()
	e := &limBudget{srv: srv, admin: admin, rows: make([][]any, limBudgetN)}
	for i := range e.rows {
		e.rows[i] = limBudgetValueRow(int64(i), limBudgetValue)
	}
	e.full, e.last = limExecuteSize(e.rows[:12]), limExecuteSize(e.rows[600:])
	if e.full != 204194 || e.last != 85088 || limExecuteSize(e.rows[:14]) > batch.DefaultBytes || limExecuteSize(e.rows[:15]) <= batch.DefaultBytes {
		t.Fatalf("12 rows take %d bytes, 5 take %d, 14 take %d, 15 take %d: the sizes above are wrong",
			e.full, e.last, limExecuteSize(e.rows[:14]), limExecuteSize(e.rows[:15]))
	}
	return e
}

// rowOverBudget: 30 rows, row 12 of 1 MiB. The long-data threshold of a
// 30-row statement is 64 MiB/61 = 1,100,145 and that of one row 64 MiB/3,
// so the 1 MiB value is inline throughout. Rows 0..11 are a statement of 12
// (row 12 does not fit with them); row 12 alone is 16 + 8 + 4 + 1,048,576 =
// 1,048,604 bytes, over DefaultBytes but within the packet limit: it is
// sent alone; rows 13..29 are 12 + 5 as above.
func (e *limBudget) rowOverBudget(t *testing.T) {
	in := slices.Clone(e.rows[:30])
	in[12] = limBudgetValueRow(12, 1<<20)
	big := limExecuteSize(in[12:13])
	if big != 1048604 {
		t.Fatalf("the 1 MiB row takes %d bytes, want 1048604", big)
	}
	dsn, rec := limCapturedDSN(t, e.srv, "", nil)
	db, cfg := openDSN(t, dsn)
	table := newTable(t, e.admin, limBudgetTable)
	res, err := batch.Insert(context.Background(), db, batch.Values(table, limCols, in), batch.DriverConfig(cfg))
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if got, want := slices.Sorted(slices.Values(limInserts(t, rec))), []int{e.last, e.full, e.full, big}; !slices.Equal(got, want) {
		t.Errorf("EXECUTE payloads on the wire (sorted) = %v, want %v", got, want)
	}
	if long := rec.Commands(wirecap.ComStmtSendLongData); len(long) != 0 {
		t.Errorf("%d long-data packets, want none (the 1 MiB value is inline)", len(long))
	}
	if res.Chunks != 4 || res.Retries != 0 || res.Rows != 30 {
		t.Errorf("Chunks=%d Retries=%d Rows=%d, want 4, 0, 30", res.Chunks, res.Retries, res.Rows)
	}
	if diff := cmp.Diff(limBudgetRows(in), limReadBudgetRows(t, e.admin, table), byteSlices); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
