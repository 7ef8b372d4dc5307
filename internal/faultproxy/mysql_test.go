package faultproxy_test

// These tests run go-sql-driver/mysql through a MySQL-mode proxy in front
// of the shared test server (internal/testserver). They are in an external
// test package because testserver imports faultproxy.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch/internal/faultproxy"
	"github.com/batchsql/batch/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.Shutdown()
	os.Exit(code)
}

// server returns the config of the shared test server.
func server(t *testing.T) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(testserver.Shared(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("the test server is on %s, not tcp", cfg.Net)
	}
	return cfg
}

// client is a pool through a proxy, with what its driver logged and every
// connection it dialed.
type client struct {
	db  *sql.DB
	log *logBuf

	mu    sync.Mutex
	conns []net.Conn
}

func (c *client) conn(i int) net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[i]
}

// logBuf is a mysql.Logger that keeps what it is given.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Print(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.b, v...)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// open opens a pool on base through the proxy at addr, closed when t ends;
// edit, if not nil, changes its config.
func open(t *testing.T, base *mysql.Config, addr string, edit func(*mysql.Config)) *client {
	t.Helper()
	c := &client{log: &logBuf{}}
	cfg := base.Clone()
	cfg.Addr = addr
	cfg.Logger = c.log
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil {
			c.mu.Lock()
			c.conns = append(c.conns, nc)
			c.mu.Unlock()
		}
		return nc, err
	}
	if edit != nil {
		edit(cfg)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.db = sql.OpenDB(connector)
	t.Cleanup(func() { c.db.Close() })
	return c
}

// direct opens a pool straight to the server, closed when t ends.
func direct(t *testing.T, base *mysql.Config) *sql.DB {
	t.Helper()
	connector, err := mysql.NewConnector(base.Clone())
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	return db
}

// start starts a proxy in front of base's server, closed when t ends.
func start(t *testing.T, base *mysql.Config, opts faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	opts.Target = base.Addr
	p, err := faultproxy.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var tables atomic.Int64

// table creates a new table (id INT PRIMARY KEY, v VARCHAR) through db,
// dropped when t ends, and returns its name.
func table(t *testing.T, db *sql.DB) string {
	t.Helper()
	name := fmt.Sprintf("faultproxy_%d_%d", os.Getpid(), tables.Add(1))
	if _, err := db.Exec("CREATE TABLE `" + name + "` (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + name + "`") })
	return name
}

// ids returns the ids in table, in order.
func ids(t *testing.T, db *sql.DB, table string) []int {
	t.Helper()
	rows, err := db.Query("SELECT id FROM `" + table + "` ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// flagVariants are the capabilities the tests run with: as the driver
// and the server agree (CLIENT_DEPRECATE_EOF and MariaDB's metadata
// caching), and without either, so that replies carry EOF packets and
// every result set its metadata.
var flagVariants = []struct {
	name string
	edit func(*mysql.Config)
}{
	{"DeprecateEOF", nil},
	{"EOF", oldEOF},
}

// oldEOF makes the driver see a server greeting without
// CLIENT_DEPRECATE_EOF and MARIADB_CLIENT_CACHE_METADATA, so that it does
// not ask for them.
func oldEOF(cfg *mysql.Config) {
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &greetingPatch{Conn: nc}, nil
	}
}

// greetingPatch patches the first packet it reads, the greeting.
type greetingPatch struct {
	net.Conn
	read bool
	buf  []byte
}

func (g *greetingPatch) Read(b []byte) (int, error) {
	if !g.read {
		g.read = true
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(g.Conn, hdr); err != nil {
			return 0, err
		}
		p := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
		if _, err := io.ReadFull(g.Conn, p); err != nil {
			return 0, err
		}
		lower := 1 + bytes.IndexByte(p[1:], 0) + 1 + 4 + 8 + 1 // version, NUL, connection id, auth data, filler
		upper := lower + 2 + 1 + 2                             // lower flags, charset, status
		ext := upper + 2 + 1 + 6                               // upper flags, auth data length, reserved
		binary.LittleEndian.PutUint16(p[upper:], binary.LittleEndian.Uint16(p[upper:])&^(1<<(24-16)))
		if p[lower]&1 == 0 { // no CLIENT_MYSQL: MariaDB's extended flags
			binary.LittleEndian.PutUint32(p[ext:], binary.LittleEndian.Uint32(p[ext:])&^(1<<4))
		}
		g.buf = append(hdr, p...)
	}
	if len(g.buf) > 0 {
		n := copy(b, g.buf)
		g.buf = g.buf[n:]
		return n, nil
	}
	return g.Conn.Read(b)
}

var deadlock = &faultproxy.ErrPacket{Number: 1213, SQLState: "40001", Message: "Deadlock found when trying to get lock; try restarting transaction"}

// isNumber tells whether err is a *mysql.MySQLError with that number.
func isNumber(err error, number uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == number
}

// isConnErr tells whether err says the connection is gone.
func isConnErr(err error) bool {
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn)
}

// insertMode is how the test inserts a row: a prepared statement
// (COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE) or a text query.
type insertMode struct {
	name string
	cmd  byte
	exec func(ctx context.Context, c *sql.Conn, table string, id int) error
}

var insertModes = []insertMode{
	{"Prepared", faultproxy.ComStmtExecute, func(ctx context.Context, c *sql.Conn, table string, id int) error {
		_, err := c.ExecContext(ctx, "INSERT INTO `"+table+"` (id, v) VALUES (?, ?)", id, "prepared")
		return err
	}},
	{"Text", faultproxy.ComQuery, func(ctx context.Context, c *sql.Conn, table string, id int) error {
		_, err := c.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (id, v) VALUES (%d, 'text')", table, id))
		return err
	}},
}

// ruleCase is one kind of rule and what the client and the table must show.
type ruleCase struct {
	name    string
	forward bool // the rule's Forward
	err     bool // the rule has Err (1213)
	close   bool // the rule's Close
}

var ruleCases = []ruleCase{
	{name: "ErrNotForwarded", err: true},
	{name: "ForwardedThenErr", forward: true, err: true},
	{name: "LostReply", forward: true, close: true},
	{name: "LostRequest", close: true},
	{name: "ErrThenFIN", forward: true, err: true, close: true},
	{name: "ErrNotForwardedThenFIN", err: true, close: true},
}

// TestRules injects each kind of rule on the 2nd INSERT of a connection, as
// a prepared statement and as a text query, and checks what the client got,
// whether the row is in the table, and whether the connection lives on.
func TestRules(t *testing.T) {
	base := server(t)
	for _, fl := range flagVariants {
		for _, mode := range insertModes {
			for _, rc := range ruleCases {
				t.Run(fl.name+"/"+mode.name+"/"+rc.name, func(t *testing.T) { testRule(t, base, fl.edit, mode, rc) })
			}
		}
	}
}

func testRule(t *testing.T, base *mysql.Config, edit func(*mysql.Config), mode insertMode, rc ruleCase) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ddb := direct(t, base)
	tbl := table(t, ddb)
	p := start(t, base, faultproxy.Options{MySQL: true})
	rule := faultproxy.Rule{Match: faultproxy.SQLContains(mode.cmd, "INSERT INTO `"+tbl+"`"), Nth: 2, Forward: rc.forward, Close: rc.close}
	if rc.err {
		rule.Err = deadlock
	}
	if err := p.Inject(rule); err != nil {
		t.Fatal(err)
	}
	c := open(t, base, p.Addr(), edit)
	conn, err := c.db.Conn(ctx) // connection 1, the one the rule fires on
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := mode.exec(ctx, conn, tbl, 1); err != nil {
		t.Fatalf("1st INSERT: %v", err)
	}
	err = mode.exec(ctx, conn, tbl, 2)
	switch {
	case rc.err && !isNumber(err, 1213):
		t.Fatalf("2nd INSERT: %v; want the injected error 1213", err)
	case !rc.err && !isConnErr(err):
		t.Fatalf("2nd INSERT: %v; want a connection error", err)
	}
	want := []int{1}
	if rc.forward {
		want = []int{1, 2} // the server ran it
	}
	if got := ids(t, ddb, tbl); !slices.Equal(got, want) {
		t.Fatalf("ids in the table after the 2nd INSERT: %v, want %v", got, want)
	}
	checkAfter(t, ctx, c, conn, mode, rc, tbl)
	if got := ids(t, ddb, tbl); !slices.Equal(got, append(want, 3)) {
		t.Errorf("ids in the table at the end: %v, want %v", got, append(want, 3))
	}
	inj := p.Injections()
	if len(inj) != 1 || inj[0].Rule != 0 || inj[0].Command.Conn != 1 || inj[0].Command.Cmd != mode.cmd ||
		!strings.Contains(inj[0].Command.SQL, "INSERT INTO `"+tbl+"`") || inj[0].Command.Payload != nil {
		t.Errorf("Injections() = %+v; want rule 0 on connection 1's INSERT", inj)
	}
	if errs := p.ProtocolErrors(); len(errs) != 0 {
		t.Errorf("ProtocolErrors() = %v", errs)
	}
}

// checkAfter checks what became of the connection after the injection,
// and inserts id 3 (on it if it lives on, else on a new one).
func checkAfter(t *testing.T, ctx context.Context, c *client, conn *sql.Conn, mode insertMode, rc ruleCase, tbl string) {
	t.Helper()
	switch {
	case !rc.close:
		if err := mode.exec(ctx, conn, tbl, 3); err != nil {
			t.Fatalf("3rd INSERT on the same connection: %v; want it to live on", err)
		}
		return
	case rc.err: // the client read the ERR; the end of file must come next
		nc := c.conn(0)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if n, err := nc.Read(b[:]); n != 0 || err != io.EOF {
			t.Fatalf("after the ERR the client's socket read %d bytes, %v; want the end of file (FIN)", n, err)
		}
		nc.SetReadDeadline(time.Time{})
	default: // the driver saw the reset while it waited for the reply
		if log := c.log.String(); !strings.Contains(log, "connection reset by peer") {
			t.Errorf("the driver logged %q; want a connection reset", log)
		}
	}
	if err := mode.exec(ctx, conn, tbl, 3); !isConnErr(err) {
		t.Fatalf("3rd INSERT on the closed connection: %v; want a connection error", err)
	}
	conn.Close()
	if _, err := c.db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (id, v) VALUES (3, 'new')", tbl)); err != nil {
		t.Fatalf("3rd INSERT on a new connection: %v", err)
	}
}

// resultTable creates a table of n rows whose values cover NULLs, numbers,
// dates, and blobs larger than the proxy's buffers, and returns its name.
func resultTable(t *testing.T, db *sql.DB, n int) string {
	t.Helper()
	name := fmt.Sprintf("faultproxy_rs_%d_%d", os.Getpid(), tables.Add(1))
	stmts := []string{
		"CREATE TABLE `" + name + "` (id INT PRIMARY KEY, s VARCHAR(255), n BIGINT NULL, d DOUBLE, dt DATETIME(6), b LONGBLOB)",
		fmt.Sprintf("INSERT INTO `%s` SELECT seq, CONCAT('row ', seq, REPEAT('x', seq %% 200)), IF(seq %% 3 = 0, NULL, seq * 1000003),"+
			" seq / 7, '2024-01-02 03:04:05.123456' + INTERVAL seq SECOND, IF(seq %% 500 = 0, REPEAT(CHAR(seq %% 256), 100000 + seq), NULL)"+
			" FROM seq_1_to_%d", name, n),
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + name + "`") })
	return name
}

// queryer is a *sql.DB or a *sql.Conn.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// queryAll runs a query and returns every result set, each row as strings
// ("NULL" for NULL).
func queryAll(t *testing.T, db queryer, q string, args ...any) [][][]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var sets [][][]string
	for {
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		var set [][]string
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				row[i] = "NULL"
				if v != nil {
					row[i] = string(v)
				}
			}
			set = append(set, row)
		}
		sets = append(sets, set)
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return sets
}

// TestResultSets: with MySQL mode on, result sets (text and binary,
// several per reply, from a procedure, with large rows) come through
// exactly as they come straight from the server; COM_STMT_EXECUTE commands
// carry the text of their statement; and the proxy follows each reply to
// its very end: when a Forward rule swallows one whole and answers an ERR
// instead, nothing of it is left to confuse the next query on the
// connection.
func TestResultSets(t *testing.T) {
	for _, fl := range flagVariants {
		t.Run(fl.name, func(t *testing.T) { testResultSets(t, fl.edit) })
	}
}

func testResultSets(t *testing.T, edit func(*mysql.Config)) {
	base := server(t)
	base.MultiStatements = true
	ddb := direct(t, base)
	tbl := resultTable(t, ddb, 3000)
	proc := tbl + "_p"
	if _, err := ddb.Exec("CREATE PROCEDURE `" + proc + "`(IN k INT) BEGIN SELECT k, 'one'; SELECT id, s FROM `" + tbl + "` WHERE id <= k; END"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ddb.Exec("DROP PROCEDURE IF EXISTS `" + proc + "`") })
	var mu sync.Mutex
	var seen []faultproxy.Command
	record := func(c faultproxy.Command) bool { // sees every command, fires on none
		mu.Lock()
		defer mu.Unlock()
		c.Payload = nil
		seen = append(seen, c)
		return false
	}
	p := start(t, base, faultproxy.Options{Rules: []faultproxy.Rule{{Match: record, Err: deadlock}}})
	conn, err := open(t, base, p.Addr(), edit).db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []struct {
		q    string
		args []any
	}{
		{q: "SELECT * FROM `" + tbl + "` ORDER BY id"},
		{q: "SELECT * FROM `" + tbl + "` WHERE id > ? ORDER BY id", args: []any{0}},
		{q: "SELECT 1; SELECT 'a', NULL, 2.5; DO 1; SELECT * FROM `" + tbl + "` WHERE id < 10"},
		{q: "CALL `" + proc + "`(5)"},
		{q: "CALL `" + proc + "`(?)", args: []any{7}},
		{q: "SELECT * FROM `" + tbl + "` WHERE id = ?", args: []any{-1}},
	} {
		want := queryAll(t, ddb, q.q, q.args...)
		if got := queryAll(t, conn, q.q, q.args...); !equalSets(got, want) {
			t.Errorf("%s: through the proxy %d result sets, %v rows; straight %d, %v", q.q, len(got), setLens(got), len(want), setLens(want))
		}
		cmd := faultproxy.ComQuery
		if q.args != nil {
			cmd = faultproxy.ComStmtExecute
		}
		swallowed(t, p, conn, faultproxy.Rule{Match: isSQL(cmd, q.q), Forward: true, Err: deadlock}, q.q, q.args...)
	}
	// The reply to a COM_STMT_PREPARE (the statement and its definitions).
	prep := "SELECT id, s, ? FROM `" + tbl + "` WHERE id = ?"
	swallowed(t, p, conn, faultproxy.Rule{Match: isSQL(faultproxy.ComStmtPrepare, prep), Forward: true, Err: deadlock}, prep, 1, 2)
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(seen, func(c faultproxy.Command) bool {
		return c.Cmd == faultproxy.ComStmtExecute && c.SQL == "SELECT * FROM `"+tbl+"` WHERE id > ? ORDER BY id"
	}) {
		t.Errorf("no COM_STMT_EXECUTE with the SELECT's text among %+v", seen)
	}
}

// isSQL returns a Match for the commands cmd of statement q.
func isSQL(cmd byte, q string) func(faultproxy.Command) bool {
	return func(c faultproxy.Command) bool { return c.Cmd == cmd && c.SQL == q }
}

// swallowed injects r, runs q on conn, which must get r's 1213 and then
// work on with nothing left of q's real reply.
func swallowed(t *testing.T, p *faultproxy.Proxy, conn *sql.Conn, r faultproxy.Rule, q string, args ...any) {
	t.Helper()
	before := len(p.Injections())
	if err := p.Inject(r); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(context.Background(), q, args...)
	if err == nil {
		rows.Close()
	}
	if !isNumber(err, 1213) {
		t.Fatalf("%s with its reply swallowed: %v; want the injected 1213", q, err)
	}
	var s string
	if err := conn.QueryRowContext(context.Background(), "SELECT 'after'").Scan(&s); err != nil || s != "after" {
		t.Fatalf("after %s: SELECT 'after' read %q, %v", q, s, err)
	}
	if n := len(p.Injections()); n != before+1 {
		t.Errorf("%s: %d injections, want %d", q, n, before+1)
	}
	if errs := p.ProtocolErrors(); len(errs) != 0 {
		t.Errorf("ProtocolErrors() = %v", errs)
	}
}

func equalSets(a, b [][][]string) bool {
	return slices.EqualFunc(a, b, func(x, y [][]string) bool {
		return slices.EqualFunc(x, y, func(r, s []string) bool { return slices.Equal(r, s) })
	})
}

func setLens(sets [][][]string) []int {
	var n []int
	for _, s := range sets {
		n = append(n, len(s))
	}
	return n
}

// TestRulesOption: Options.Rules are in force from the start and count the
// commands of every connection; Nth picks the right one; each rule fires
// once; rules are checked.
func TestRulesOption(t *testing.T) {
	base := server(t)
	seven := faultproxy.SQLContains(faultproxy.ComQuery, "SELECT 7")
	p := start(t, base, faultproxy.Options{Rules: []faultproxy.Rule{
		{Match: seven, Nth: 3, Err: &faultproxy.ErrPacket{Number: 1205, Message: "Lock wait timeout exceeded"}},
		{Match: seven, Nth: 4, Err: deadlock}, // the 4th counted after the 3rd fired: the 5th SELECT 7
	}})
	c := open(t, base, p.Addr(), nil)
	c.db.SetMaxIdleConns(0) // a new connection for every query
	var got []string
	for i := 1; i <= 6; i++ {
		var n int
		err := c.db.QueryRow("SELECT 7").Scan(&n)
		var me *mysql.MySQLError
		switch {
		case errors.As(err, &me):
			got = append(got, fmt.Sprintf("%d:%d:%s", i, me.Number, me.SQLState))
		case err != nil:
			t.Fatalf("SELECT 7 #%d: %v", i, err)
		}
	}
	if want := []string{"3:1205:HY000", "4:1213:40001"}; !slices.Equal(got, want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	inj := p.Injections()
	if len(inj) != 2 || inj[0].Rule != 0 || inj[1].Rule != 1 || inj[0].Command.Conn == inj[1].Command.Conn {
		t.Errorf("Injections() = %+v; want rule 0, then rule 1, on two connections", inj)
	}
	if p.Conns() != 6 {
		t.Errorf("Conns() = %d, want 6", p.Conns())
	}
	if _, err := faultproxy.Start(faultproxy.Options{Target: base.Addr, Rules: []faultproxy.Rule{{Nth: 1}}}); err == nil {
		t.Error("Start accepted a rule with neither Err nor Close")
	}
	if err := p.Inject(faultproxy.Rule{Err: &faultproxy.ErrPacket{SQLState: "4000"}}); err == nil {
		t.Error("Inject accepted a 4-character SQLState")
	}
	plain := start(t, base, faultproxy.Options{})
	if err := plain.Inject(faultproxy.Rule{Close: true}); err == nil {
		t.Error("Inject worked without Options.MySQL")
	}
}

// TestCompressionRefused: a client that asks for compression gets a clear
// error at connect, which ProtocolErrors records too.
func TestCompressionRefused(t *testing.T) {
	base := server(t)
	p := start(t, base, faultproxy.Options{MySQL: true})
	c := open(t, base, p.Addr(), func(cfg *mysql.Config) {
		if err := cfg.Apply(mysql.EnableCompression(true)); err != nil {
			t.Fatal(err)
		}
	})
	err := c.db.Ping()
	if !isNumber(err, 1043) || !strings.Contains(err.Error(), "compression") {
		t.Fatalf("Ping with compress=true: %v; want error 1043 about compression", err)
	}
	if errs := p.ProtocolErrors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "CLIENT_COMPRESS") {
		t.Errorf("ProtocolErrors() = %v; want the refusal", errs)
	}
}

// TestLocalInfile: LOAD DATA LOCAL INFILE goes through (the client sends
// the file in the middle of the reply), and a Forward rule on it swallows
// the request for the file: the proxy sends the server an empty one.
func TestLocalInfile(t *testing.T) {
	base := server(t)
	ddb := direct(t, base)
	tbl := table(t, ddb)
	name := "faultproxy-" + tbl
	mysql.RegisterReaderHandler(name, func() io.Reader { return strings.NewReader("1\tone\n2\ttwo\n") })
	defer mysql.DeregisterReaderHandler(name)
	p := start(t, base, faultproxy.Options{MySQL: true})
	conn, err := open(t, base, p.Addr(), nil).db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	load := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE `" + tbl + "` (id, v)"
	if err := p.Inject(faultproxy.Rule{Match: faultproxy.SQLContains(faultproxy.ComQuery, "LOAD DATA"), Nth: 2, Forward: true, Err: deadlock}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), load); err != nil {
		t.Fatalf("LOAD DATA through the proxy: %v", err)
	}
	if got := ids(t, ddb, tbl); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("ids %v loaded, want [1 2]", got)
	}
	if _, err := conn.ExecContext(context.Background(), "DELETE FROM `"+tbl+"`"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), load); !isNumber(err, 1213) {
		t.Fatalf("LOAD DATA with its reply swallowed: %v; want the injected 1213", err)
	}
	if got := ids(t, ddb, tbl); len(got) != 0 {
		t.Errorf("ids %v loaded from the empty file, want none", got)
	}
	var s string
	if err := conn.QueryRowContext(context.Background(), "SELECT 'after'").Scan(&s); err != nil || s != "after" {
		t.Fatalf("SELECT 'after': %q, %v", s, err)
	}
	if errs := p.ProtocolErrors(); len(errs) != 0 {
		t.Errorf("ProtocolErrors() = %v", errs)
	}
}

// TestMySQLModeFaults: the marker, freezes and cuts work in MySQL mode too.
func TestMySQLModeFaults(t *testing.T) {
	base := server(t)
	t.Run("Marker", func(t *testing.T) {
		var calls atomic.Int64
		p := start(t, base, faultproxy.Options{MySQL: true, Marker: []byte("QUERY-OF-DEATH"), OnMarker: func() { calls.Add(1) }})
		c := open(t, base, p.Addr(), nil)
		if _, err := c.db.Exec("DO 'QUERY-OF-DEATH'"); !isConnErr(err) {
			t.Fatalf("the marker's query: %v; want a connection error", err)
		}
		if calls.Load() != 1 || p.Markers() != 1 {
			t.Fatalf("OnMarker called %d times, Markers() = %d; want 1", calls.Load(), p.Markers())
		}
	})
	t.Run("Freeze", func(t *testing.T) {
		p := start(t, base, faultproxy.Options{MySQL: true})
		c := open(t, base, p.Addr(), nil)
		if err := c.db.Ping(); err != nil {
			t.Fatal(err)
		}
		p.Freeze()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := c.db.ExecContext(ctx, "DO 1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("frozen: %v; want the deadline", err)
		}
		p.Thaw()
		if _, err := c.db.Exec("DO 1"); err != nil {
			t.Fatalf("thawed: %v", err)
		}
	})
	t.Run("Cuts", func(t *testing.T) {
		p := start(t, base, faultproxy.Options{MySQL: true, MaxCuts: 4, CutMin: 1, CutMax: 400, Seed: 3})
		c := open(t, base, p.Addr(), nil)
		ok := 0
		for i := 0; ok < 20; i++ {
			if i == 100 {
				t.Fatalf("%d of 100 queries went through; cuts %v", ok, p.Cuts())
			}
			var n int
			if err := c.db.QueryRow("SELECT ?", i).Scan(&n); err == nil && n == i {
				ok++
			}
		}
		if cuts := p.Cuts(); len(cuts) != 4 {
			t.Errorf("cuts %v, want 4", cuts)
		}
	})
}
