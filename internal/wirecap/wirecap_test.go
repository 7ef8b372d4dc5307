package wirecap_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch/internal/wirecap"
)

const defaultDSN = "root@tcp(127.0.0.1:3306)/test"

// serverConfig returns the driver config of the test server (env
// BATCH_TEST_DSN or defaultDSN). It skips the test when the server is not
// reachable, unless env CI is set, where it fails.
func serverConfig(t *testing.T) *mysql.Config {
	t.Helper()
	dsn := os.Getenv("BATCH_TEST_DSN")
	if dsn == "" {
		dsn = defaultDSN
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("BATCH_TEST_DSN: %v", err)
	}
	c, err := net.DialTimeout("tcp", cfg.Addr, 3*time.Second)
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("MySQL/MariaDB server at %s not reachable (%v); set BATCH_TEST_DSN", cfg.Addr, err)
		}
		t.Fatalf("MySQL/MariaDB server at %s not reachable: %v", cfg.Addr, err)
	}
	c.Close()
	return cfg
}

// open returns a single-connection pool whose connections are captured by
// a Recorder registered under name.
func open(t *testing.T, name string, compress bool) (*sql.DB, *wirecap.Recorder) {
	t.Helper()
	cfg := serverConfig(t).Clone()
	cfg.Net = name
	if err := cfg.Apply(mysql.EnableCompression(compress)); err != nil {
		t.Fatal(err)
	}
	rec := wirecap.Register(name)
	t.Cleanup(rec.Unregister)
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	infos := rec.Conns()
	if len(infos) != 1 || infos[0].Compressed != compress {
		t.Fatalf("connections: %+v, want one with Compressed=%v", infos, compress)
	}
	hs := rec.Filter(func(p wirecap.Packet) bool { return p.Kind == wirecap.KindHandshake })
	if len(hs) == 0 || hs[0].Seq != 1 {
		t.Fatalf("handshake packets: %+v", hs)
	}
	rec.Reset()
	return db, rec
}

// only returns the only recorded command packet, which must be cmd.
func only(t *testing.T, rec *wirecap.Recorder, cmd byte) wirecap.Packet {
	t.Helper()
	all := rec.AllCommands()
	if len(all) != 1 || all[0].Cmd != cmd {
		t.Fatalf("commands %s, want exactly one 0x%02x", describe(all), cmd)
	}
	return all[0]
}

func describe(ps []wirecap.Packet) string {
	var b strings.Builder
	b.WriteString("[")
	for i, p := range ps {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{conn %d %s seq %d cmd 0x%02x P %d frames %d wire %d}",
			p.Conn, p.Kind, p.Seq, p.Cmd, p.Len, p.Frames, p.Wire)
	}
	b.WriteString("]")
	return b.String()
}

// checkFraming checks the fields derived from Len.
func checkFraming(t *testing.T, p wirecap.Packet, compress bool) {
	t.Helper()
	frames := p.Len/wirecap.MaxFrame + 1
	if p.Frames != frames || p.Framed != p.Len+wirecap.HeaderLen*frames || p.Compressed != compress {
		t.Errorf("packet %s: want %d frames, Framed %d, Compressed %v",
			describe([]wirecap.Packet{p}), frames, p.Len+wirecap.HeaderLen*frames, compress)
	}
	if !compress && p.Wire != p.Framed {
		t.Errorf("plain packet: Wire %d != Framed %d", p.Wire, p.Framed)
	}
}

// liveRun runs the scenario against the server and returns the payload
// lengths it observed, keyed by step.
func liveRun(t *testing.T, name string, compress bool) map[string]int {
	db, rec := open(t, name, compress)
	ctx := context.Background()
	lens := map[string]int{}

	// Text protocol, no args.
	const q1 = "SELECT 1"
	if _, err := db.ExecContext(ctx, q1); err != nil {
		t.Fatal(err)
	}
	p := only(t, rec, wirecap.ComQuery)
	if p.Len != 1+len(q1) {
		t.Errorf("COM_QUERY %q: P = %d, want %d", q1, p.Len, 1+len(q1))
	}
	checkFraming(t, p, compress)
	lens["query"] = p.Len

	// Prepared statement: prepare, execute, close.
	rec.Reset()
	rec.SetHeadBytes(64)
	const q2 = "SELECT ? + ?"
	if _, err := db.ExecContext(ctx, q2, int64(1), int64(2)); err != nil {
		t.Fatal(err)
	}
	rec.SetHeadBytes(0)
	all := rec.AllCommands()
	if len(all) != 3 {
		t.Fatalf("prepared exec: commands %s, want prepare, execute, close", describe(all))
	}
	prep, exec, cls := all[0], all[1], all[2]
	if prep.Cmd != wirecap.ComStmtPrepare || prep.Len != 1+len(q2) || string(prep.Head[1:]) != q2 {
		t.Errorf("COM_STMT_PREPARE: %s head %q, want P %d", describe(all[:1]), prep.Head, 1+len(q2))
	}
	// COM_STMT_EXECUTE with two BIGINT params: cmd 1, stmt id 4, flags 1,
	// iteration count 4, null bitmap 1, new-params-bound 1, types 2*2,
	// values 2*8.
	const execLen = 1 + 4 + 1 + 4 + 1 + 1 + 2*2 + 2*8
	if exec.Cmd != wirecap.ComStmtExecute || exec.Len != execLen {
		t.Errorf("COM_STMT_EXECUTE: %s, want P %d", describe(all[1:2]), execLen)
	}
	if cls.Cmd != wirecap.ComStmtClose || cls.Len != 5 {
		t.Errorf("COM_STMT_CLOSE: %s, want P 5", describe(all[2:]))
	}
	// The statement id in execute and close is the same.
	if string(exec.Head[1:5]) != string(cls.Head[1:5]) {
		t.Errorf("statement ids differ: execute %x, close %x", exec.Head[1:5], cls.Head[1:5])
	}
	for _, p := range all {
		checkFraming(t, p, compress)
	}
	lens["prepare"], lens["execute"], lens["close"] = prep.Len, exec.Len, cls.Len

	var maxAllowed int
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxAllowed); err != nil {
		t.Fatal(err)
	}
	// A big query, P up to 17 MB. MariaDB 10.11 with compress=true refuses
	// P > max_allowed_packet-5 (error 1153; without compression the
	// driver's own limit P <= max_allowed_packet-1 applies), so take that.
	// With the default 16 MiB max_allowed_packet, P = 0xFFFFFF-4: one
	// frame, which compression splits over two compressed packets (the
	// driver puts at most 0xFFFFFB bytes in one).
	lens["big"] = bigQuery(t, db, rec, min(17_000_000, maxAllowed-5), compress)
	if !compress && maxAllowed-1 >= wirecap.MaxFrame {
		// P = 0xFFFFFF exactly: a full frame followed by an empty one.
		bigQuery(t, db, rec, wirecap.MaxFrame, compress)
	}

	// Closing the pool sends COM_QUIT.
	rec.Reset()
	db.Close()
	if p := only(t, rec, wirecap.ComQuit); p.Len != 1 {
		t.Errorf("COM_QUIT: P = %d, want 1", p.Len)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	ci := rec.Conns()
	if len(ci) != 1 || !ci[0].Closed {
		t.Errorf("connections: %+v", ci)
	}
	return lens
}

// bigQuery runs SELECT LENGTH('aaa...') with a COM_QUERY payload of
// exactly bigP bytes and returns the P recorded.
func bigQuery(t *testing.T, db *sql.DB, rec *wirecap.Recorder, bigP int, compress bool) int {
	t.Helper()
	prefix, suffix := "SELECT LENGTH('", "')"
	n := bigP - 1 - len(prefix) - len(suffix)
	big := prefix + strings.Repeat("a", n) + suffix
	rec.Reset()
	var got int
	if err := db.QueryRow(big).Scan(&got); err != nil {
		t.Fatalf("big query (P %d): %v", bigP, err)
	}
	if got != n {
		t.Fatalf("server saw a string of %d bytes, want %d", got, n)
	}
	p := only(t, rec, wirecap.ComQuery)
	if p.Len != bigP || p.Len != 1+len(big) {
		t.Errorf("big COM_QUERY: P = %d, want %d", p.Len, 1+len(big))
	}
	checkFraming(t, p, compress)
	if compress && p.Wire*100 > p.Framed {
		t.Errorf("compressed big query: Wire %d not much smaller than Framed %d", p.Wire, p.Framed)
	}
	t.Logf("big query: P %d, %d frames, %d framed bytes, %d wire bytes", p.Len, p.Frames, p.Framed, p.Wire)
	return p.Len
}

func TestLive(t *testing.T) {
	serverConfig(t)
	var plain, compressed map[string]int
	t.Run("plain", func(t *testing.T) { plain = liveRun(t, "wirecap-test-plain", false) })
	t.Run("compress", func(t *testing.T) { compressed = liveRun(t, "wirecap-test-compress", true) })
	if plain == nil || compressed == nil {
		t.Fatal("a run did not complete")
	}
	for k, v := range plain {
		if compressed[k] != v {
			t.Errorf("%s: P %d with compress=true, %d without", k, compressed[k], v)
		}
	}
	if len(plain) != len(compressed) {
		t.Errorf("steps differ: %v vs %v", plain, compressed)
	}
}

// TestLiveWireTotal checks that Packet.Wire accounts for every byte the
// client wrote, in both framings.
func TestLiveWireTotal(t *testing.T) {
	for _, compress := range []bool{false, true} {
		cfg := serverConfig(t).Clone()
		name := fmt.Sprintf("wirecap-test-total-%v", compress)
		cfg.Net = name
		cfg.Apply(mysql.EnableCompression(compress))
		rec := wirecap.Register(name)
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(2)
		for i := range 20 {
			var s string
			q := "SELECT REPEAT('x', ?)"
			if err := db.QueryRow(q, i*50).Scan(&s); err != nil || len(s) != i*50 {
				t.Fatalf("query: %v len %d", err, len(s))
			}
		}
		db.Close()
		rec.Unregister()
		if err := rec.Err(); err != nil {
			t.Fatal(err)
		}
		sum, total := 0, 0
		for _, p := range rec.Packets() {
			sum += p.Wire
			if p.Compressed != (compress && p.Kind != wirecap.KindHandshake) {
				t.Errorf("compress=%v: packet %s has Compressed=%v", compress, describe([]wirecap.Packet{p}), p.Compressed)
			}
		}
		for _, ci := range rec.Conns() {
			total += ci.WireBytes
			if ci.Compressed != compress {
				t.Errorf("conn %+v: Compressed != %v", ci, compress)
			}
		}
		if sum != total || total == 0 {
			t.Errorf("compress=%v: sum of Packet.Wire %d, bytes written %d", compress, sum, total)
		}
	}
}
