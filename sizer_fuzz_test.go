package batch

// FuzzSizer checks encoding.chunkSize against the driver byte for byte: the
// fuzz input is decoded into N parameter values of mixed types, sent as the
// parameters of one prepared "DO ?,?,..." over a capture connection, and the
// captured COM_STMT_EXECUTE and COM_STMT_SEND_LONG_DATA payloads must be the
// ones chunkSize(vals, N, 0, 1, M) predicts. Small driver limits (DSN
// maxAllowedPacket) put values on both sides of the long-data threshold
// LD = max(M/(N+1), 64) and of the long-data piece M-8; when the prediction
// is over M, the driver must refuse the EXECUTE (mysql.ErrPktTooLarge)
// without writing it.
//
// Without -fuzz, go test runs the seeds below and testdata/fuzz/FuzzSizer
// only (a second or two once the shared server is up). With no server
// installed the test skips, or fails when CI is set (testserver.Shared).

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch/internal/testserver"
	"github.com/batchsql/batch/internal/wirecap"
)

// fuzzConfigs are the driver settings an input picks from (conf % len). enc
// restates, independently of the package's DSN parsing, what the settings
// mean for the sizes.
var fuzzConfigs = []struct {
	params   string
	max      int // the DSN's maxAllowedPacket: M
	loc      string
	truncate time.Duration
}{
	{"maxAllowedPacket=4096", 4096, "UTC", 0},
	{"maxAllowedPacket=65536&loc=America%2FSt_Johns&timeTruncate=1ms", 65536, "America/St_Johns", time.Millisecond},
	{"maxAllowedPacket=300000&compress=true&loc=Asia%2FKathmandu", 300000, "Asia/Kathmandu", 0},
	{"maxAllowedPacket=1048576&timeTruncate=1us", 1 << 20, "UTC", time.Microsecond},
}

// Limits of one input, to keep an execution in the milliseconds.
const (
	fuzzMaxParams     = 1024
	fuzzMaxValue      = 2 << 20 // bytes of one string or []byte
	fuzzMaxTotalBytes = 6 << 20 // bytes of all of them
)

// fuzzConn is one capture connection per configuration, for the whole fuzz
// run of this process.
type fuzzConn struct {
	rec  *wirecap.Recorder
	conn *sql.Conn
	enc  encoding
	max  int
	comp bool
}

var fuzzSeq atomic.Int64

func fuzzOpen(f *testing.F) []*fuzzConn {
	base := testserver.Shared(f)
	bcfg, err := mysql.ParseDSN(base)
	if err != nil {
		f.Fatalf("parse %q: %v", base, err)
	}
	if bcfg.Net != "tcp" {
		capSkip(f, "the capture dialer needs a tcp DSN, got net %q", bcfg.Net)
	}
	var out []*fuzzConn
	for i, c := range fuzzConfigs {
		loc, err := time.LoadLocation(c.loc)
		if err != nil {
			f.Fatal(err)
		}
		name := fmt.Sprintf("fuzzsizer%d_%d", fuzzSeq.Add(1), i)
		rec := wirecap.Register(name)
		f.Cleanup(rec.Unregister)
		rec.SetHeadBytes(longDataHeader)
		ccfg := bcfg.Clone()
		ccfg.Net = name
		dsn := testserver.AddParams(ccfg.FormatDSN(), c.params)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			f.Fatalf("open %q: %v", dsn, err)
		}
		f.Cleanup(func() { db.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := db.Conn(ctx)
		cancel()
		if err != nil {
			f.Fatalf("connect %q: %v", dsn, err)
		}
		f.Cleanup(func() { conn.Close() })
		out = append(out, &fuzzConn{rec: rec, conn: conn, max: c.max, comp: strings.Contains(c.params, "compress=true"),
			enc: encoding{loc: loc, truncate: c.truncate, locKnown: true}})
	}
	return out
}

// fuzzReader reads the fuzz input; past its end it reads zeros.
type fuzzReader struct {
	b []byte
}

func (r *fuzzReader) more() bool { return len(r.b) > 0 }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) u64() uint64 {
	var a [8]byte
	for i := range a {
		a[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(a[:])
}

// Value tags of the fuzz input (first byte of each value, modulo fzTags).
const (
	fzNil byte = iota
	fzInt
	fzUint
	fzFloat
	fzBool
	fzString
	fzBytes
	fzTime
	fzTags
)

// fuzzLength turns two bytes into a length near an interesting boundary for
// a statement of n parameters and driver limit m: sel picks the base, delta
// (as int8) moves around it. With the top bit of sel set, the length is
// ((sel&0x7f)<<8 | delta) instead.
func fuzzLength(sel, delta byte, n, m int) int {
	if sel&0x80 != 0 {
		return int(sel&0x7f)<<8 | int(delta)
	}
	ld := longDataThreshold(m, n)
	piece := m - 8
	bases := []int{0, 250, 251, 65535, 65536, 1<<16 + 1, ld, ld - 1, piece, 2 * piece, 3*piece + 1, 64, 1 << 24,
		m / 2, m, (m - executeOverhead(n)) / max(n, 1)}
	l := bases[int(sel)%len(bases)] + int(int8(delta))
	return min(max(l, 0), fuzzMaxValue)
}

// fuzzTime makes a time from the input: the zero time, midnights (in the
// driver's location, in UTC, in a zone of any offset), whole seconds and
// fractions of every number of digits.
func fuzzTime(r *fuzzReader, loc *time.Location) time.Time {
	sel := r.byte()
	days := int(binary.LittleEndian.Uint16([]byte{r.byte(), r.byte()})) * 3 // about 500 years from 1800
	date := func(l *time.Location) time.Time { return time.Date(1800, 1, 1+days, 0, 0, 0, 0, l) }
	switch sel % 8 {
	case 0:
		return time.Time{}
	case 1:
		return date(loc)
	case 2:
		return date(time.UTC)
	case 3: // midnight in a zone of any offset, up to +-18h, to the second
		off := int(int32(binary.LittleEndian.Uint32([]byte{r.byte(), r.byte(), r.byte(), r.byte()})) % (18 * 3600))
		return date(time.FixedZone("fz", off))
	case 4: // seconds and nanoseconds anywhere in 1800..2300
		sec := int64(r.u64() % (500 * 365 * 86400))
		ns := int64(r.u64() % 1e9)
		return date(time.UTC).Add(time.Duration(sec)*time.Second + time.Duration(ns))
	case 5: // a fraction with d significant digits: 0.1 s ... 1 ns
		d := int(r.byte() % 10)
		ns := int64(r.byte()%9+1) * int64(math.Pow10(9-min(d, 9)))
		return date(loc).Add(time.Duration(r.byte())*time.Hour/7 + time.Duration(ns%1e9))
	case 6: // close to midnight in the driver's location, within the truncation
		return date(loc).Add(time.Duration(int8(r.byte())) * 37 * time.Microsecond)
	}
	// the edges of the calendar
	if r.byte()%2 == 0 {
		return time.Date(9999, 12, 31, 23, 59, 59, 999999999, loc)
	}
	return time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
}

// fuzzValues decodes n normalized values from spec for a statement of n
// parameters and driver limit m. Past the end of spec the decoded values
// repeat; with none decoded, all are NULL. A value the package refuses (a
// time out of range once in the driver's location) is NULL, and so is any
// string or []byte past the byte budget.
func fuzzValues(spec []byte, n, m int, enc encoding) []any {
	r := &fuzzReader{b: spec}
	var dec []any
	for r.more() && len(dec) < n {
		var v any
		switch tag := r.byte() % fzTags; tag {
		case fzNil:
		case fzInt:
			v = int64(r.u64())
		case fzUint:
			v = r.u64()
		case fzFloat:
			f := math.Float64frombits(r.u64())
			if math.IsNaN(f) || math.IsInf(f, 0) {
				f = -math.MaxFloat64
			}
			v = f
		case fzBool:
			v = r.byte()%2 == 1
		case fzString, fzBytes:
			l := fuzzLength(r.byte(), r.byte(), n, m)
			seed := int(r.byte())
			if tag == fzString {
				v = capString(l, seed)
			} else {
				v = capBytes(l, seed)
			}
		case fzTime:
			v = fuzzTime(r, enc.loc)
		}
		dec = append(dec, v)
	}
	vals := make([]any, n)
	total := 0
	for i := range vals {
		if len(dec) == 0 {
			break
		}
		v, err := normalize(dec[i%len(dec)], &enc)
		if err != nil {
			v = nil
		}
		switch x := v.(type) {
		case string:
			if total += len(x); total > fuzzMaxTotalBytes {
				v = nil
			}
		case []byte:
			if total += len(x); total > fuzzMaxTotalBytes {
				v = nil
			}
		}
		vals[i] = v
	}
	return vals
}

// fuzzSpec builds a fuzz input from values described in the tags above, for
// the seeds.
type fuzzSpec []byte

func (s fuzzSpec) null() fuzzSpec { return append(s, fzNil) }
func (s fuzzSpec) int(v int64) fuzzSpec {
	return binary.LittleEndian.AppendUint64(append(s, fzInt), uint64(v))
}
func (s fuzzSpec) uint(v uint64) fuzzSpec {
	return binary.LittleEndian.AppendUint64(append(s, fzUint), v)
}
func (s fuzzSpec) float(v float64) fuzzSpec {
	return binary.LittleEndian.AppendUint64(append(s, fzFloat), math.Float64bits(v))
}
func (s fuzzSpec) bool(v bool) fuzzSpec {
	if v {
		return append(s, fzBool, 1)
	}
	return append(s, fzBool, 0)
}

// str and bytes take fuzzLength's sel and delta.
func (s fuzzSpec) str(sel byte, delta int8) fuzzSpec {
	return append(s, fzString, sel, byte(delta), byte(len(s)))
}
func (s fuzzSpec) bytes(sel byte, delta int8) fuzzSpec {
	return append(s, fzBytes, sel, byte(delta), byte(len(s)))
}

// time takes fuzzTime's selector and the bytes that follow it: always two
// for the date, then those the selector reads.
func (s fuzzSpec) time(sel byte, rest ...byte) fuzzSpec {
	return append(append(s, fzTime, sel), rest...)
}

// fuzzSeeds are table cases: conf, number of parameters, values.
func fuzzSeeds() []struct {
	conf uint8
	n    uint16
	spec []byte
} {
	type seed = struct {
		conf uint8
		n    uint16
		spec []byte
	}
	var out []seed
	add := func(conf uint8, n uint16, s fuzzSpec) { out = append(out, seed{conf, n - 1, s}) }
	all := fuzzSpec(nil).null().int(math.MinInt64).uint(math.MaxUint64).float(0.1).bool(true).
		str(0, 0).bytes(1, 0).time(0, 0, 0).time(1, 7, 1).time(2, 200, 0).time(4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
	for c := range uint8(len(fuzzConfigs)) {
		add(c, 12, all)
		add(c, 1, nil)    // one NULL
		add(c, 300, all)  // repeated: LD = max(M/301, 64)
		add(c, 1000, all) // LD = 64 for every M here
		// Strings and bytes at each base length, one below and one above,
		// alone (LD = M/2) and among 4 parameters (LD = M/5).
		for sel := range byte(16) {
			add(c, 1, fuzzSpec(nil).str(sel, 0))
			add(c, 1, fuzzSpec(nil).bytes(sel, -1))
			add(c, 4, fuzzSpec(nil).bytes(sel, -1).str(sel, 0).bytes(sel, 1).int(1))
		}
		// Every kind of time, with and without nanoseconds.
		var ts fuzzSpec
		for sel := range byte(8) {
			ts = ts.time(sel, 11, 22, 33, 44, 55, 66, 77, 88, 99, 111, 122, 133, 144, 155, 166, 177, 188, 199)
		}
		add(c, 8, ts)
		for d := range byte(10) {
			add(c, 3, fuzzSpec(nil).time(5, 0, 0, d, 3, 40).time(6, 0, 0, d*20).time(6, 0, 0, 255-d))
		}
		add(c, 2, fuzzSpec(nil).time(7, 0, 0, 0).time(7, 0, 0, 1))
		// Many values just below LD = 64: the EXECUTE is over M for the
		// small limits, and the driver must refuse it.
		add(c, 200, fuzzSpec(nil).str(11, -1))
		add(c, 64, fuzzSpec(nil).bytes(15, 0))
		add(c, 64, fuzzSpec(nil).bytes(15, 1).null())
	}
	return out
}

func FuzzSizer(f *testing.F) {
	conns := fuzzOpen(f)
	for _, s := range fuzzSeeds() {
		f.Add(s.conf, s.n, s.spec)
	}
	f.Fuzz(func(t *testing.T, conf uint8, n16 uint16, spec []byte) {
		fc := conns[int(conf)%len(conns)]
		n := 1 + int(n16)%fuzzMaxParams
		vals := fuzzValues(spec, n, fc.max, fc.enc)
		pred := fc.enc.chunkSize(flatRows(vals, n), 0, 1, fc.max)
		fuzzCheck(t, fc, vals, pred)
	})
}

// fuzzCheck sends vals as the parameters of one DO statement and compares
// every packet with pred.
func fuzzCheck(t *testing.T, fc *fuzzConn, vals []any, pred stmtSize) {
	n := len(vals)
	query := "DO " + strings.Repeat("?,", n-1) + "?"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fc.rec.Reset()
	stmt, err := fc.conn.PrepareContext(ctx, query)
	if err != nil {
		t.Fatalf("prepare %d parameters: %v", n, err)
	}
	_, execErr := stmt.ExecContext(ctx, vals...)
	if err := stmt.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := fc.rec.Err(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	var got stmtSize
	var prepares, executes int
	perParam := map[uint16][]int{}
	for _, p := range fc.rec.AllCommands() {
		if fc.comp != p.Compressed {
			t.Fatalf("packet compressed=%v on a connection with compress=%v", p.Compressed, fc.comp)
		}
		switch p.Cmd {
		case wirecap.ComStmtPrepare:
			prepares++
			if p.Len != prepareSize(len(query)) {
				t.Errorf("PREPARE P=%d, want %d", p.Len, prepareSize(len(query)))
			}
		case wirecap.ComStmtSendLongData:
			got.LongPackets++
			got.LongData += p.Len
			got.LargestLong = max(got.LargestLong, p.Len)
			id := binary.LittleEndian.Uint16(p.Head[5:7])
			perParam[id] = append(perParam[id], p.Len)
		case wirecap.ComStmtExecute:
			executes++
			got.Execute = p.Len
		}
	}
	// The driver's cutting rule, restated: pieces of M-8 bytes, the last
	// one shorter, each behind a 7-byte header.
	for id, lens := range perParam {
		v := vals[id]
		l := 0
		switch x := v.(type) {
		case string:
			l = len(x)
		case []byte:
			l = len(x)
		default:
			t.Fatalf("long data for parameter %d, a %T", id, v)
		}
		got.LongValueMax = max(got.LongValueMax, l)
		for i, pl := range lens {
			want := min(l-i*(fc.max-8), fc.max-8) + longDataHeader
			if pl != want {
				t.Errorf("parameter %d (%d bytes): long-data packet %d P=%d, want %d", id, l, i, pl, want)
			}
		}
		if len(lens) != (l+fc.max-9)/(fc.max-8) {
			t.Errorf("parameter %d (%d bytes): %d long-data packets", id, l, len(lens))
		}
	}
	if prepares != 1 {
		t.Fatalf("%d PREPARE captured", prepares)
	}
	if pred.Execute > fc.max {
		// The driver refuses the EXECUTE before writing it (the long data
		// before it has gone).
		if !errors.Is(execErr, mysql.ErrPktTooLarge) || executes != 0 {
			t.Fatalf("predicted EXECUTE P=%d > M=%d, but exec returned %v with %d EXECUTE captured", pred.Execute, fc.max, execErr, executes)
		}
		got.Execute = pred.Execute
	} else if execErr != nil || executes != 1 {
		t.Fatalf("predicted EXECUTE P=%d <= M=%d: exec returned %v with %d EXECUTE captured", pred.Execute, fc.max, execErr, executes)
	}
	if got != pred {
		t.Fatalf("%d parameters, M=%d: predicted %+v, captured %+v", n, fc.max, pred, got)
	}
}
