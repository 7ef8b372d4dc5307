package testserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func TestAddParams(t *testing.T) {
	for _, c := range []struct{ dsn, params, want string }{
		{"root@tcp(h:1)/test", "", "root@tcp(h:1)/test"},
		{"root@tcp(h:1)/test", "a=1", "root@tcp(h:1)/test?a=1"},
		{"root@tcp(h:1)/test", "?a=1", "root@tcp(h:1)/test?a=1"},
		{"root@tcp(h:1)/test?x=2", "a=1&b=2", "root@tcp(h:1)/test?x=2&a=1&b=2"},
		{"root@tcp(h:1)/test?", "a=1", "root@tcp(h:1)/test?a=1"},
	} {
		if got := AddParams(c.dsn, c.params); got != c.want {
			t.Errorf("AddParams(%q, %q) = %q, want %q", c.dsn, c.params, got, c.want)
		}
	}
}

func TestServerBasics(t *testing.T) {
	t.Parallel()
	s := Private(t, Options{})
	if s.PID() <= 0 {
		t.Fatalf("PID() = %d", s.PID())
	}
	if !strings.HasPrefix(s.DSN("parseTime=true"), "root@tcp("+s.Addr()+")/test?parseTime=true") {
		t.Fatalf("DSN = %q", s.DSN("parseTime=true"))
	}
	db := open(t, s.DSN("parseTime=true&loc=UTC"))
	port := queryInt(t, db, "SELECT @@port")
	if want := s.Addr(); "127.0.0.1:"+strconv.FormatInt(port, 10) != want {
		t.Fatalf("@@port = %d, Addr() = %s", port, want)
	}
	if got := queryString(t, db, "SELECT DATABASE()"); got != "test" {
		t.Fatalf("DATABASE() = %q", got)
	}
	if got := queryString(t, db, "SELECT @@character_set_database"); got != "utf8mb4" {
		t.Errorf("@@character_set_database = %q, want utf8mb4", got)
	}
	if got := queryString(t, db, "SELECT CURRENT_USER()"); !strings.HasPrefix(got, "root@") {
		t.Errorf("CURRENT_USER() = %q", got)
	}
	if _, err := db.Exec("SET GLOBAL max_allowed_packet = 4194304"); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, db, "SELECT @@GLOBAL.max_allowed_packet"); got != 4194304 {
		t.Fatalf("max_allowed_packet = %d after SET GLOBAL", got)
	}
	if tail := s.LogTail(); !strings.Contains(tail, "ready for connections") {
		t.Errorf("LogTail lacks 'ready for connections':\n%s", tail)
	}
	if _, err := os.Stat(s.socket); err != nil || len(s.socket) > maxSocketPath {
		t.Errorf("socket %q: %v", s.socket, err)
	}
}

func TestOptionsArgs(t *testing.T) {
	t.Parallel()
	s := Private(t, Options{Args: []string{"--max-allowed-packet=8192", "--wait-timeout=2", "--sql-mode=STRICT_ALL_TABLES"}})
	db := open(t, s.DSN(""))
	if got := queryInt(t, db, "SELECT @@GLOBAL.max_allowed_packet"); got != 8192 {
		t.Errorf("max_allowed_packet = %d, want 8192", got)
	}
	if got := queryInt(t, db, "SELECT @@GLOBAL.wait_timeout"); got != 2 {
		t.Errorf("wait_timeout = %d, want 2", got)
	}
	if got := queryString(t, db, "SELECT @@GLOBAL.sql_mode"); got != "STRICT_ALL_TABLES" {
		t.Errorf("sql_mode = %q", got)
	}
}

// TestKillRestart: Kill makes queries fail; Restart brings the server back
// on the same port with committed data; then Stop and Restart again.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	s := Private(t, Options{})
	Exec(t, s.DSN(""),
		"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
		"INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	db := open(t, s.DSN("timeout=2s"))
	if got := queryInt(t, db, "SELECT COUNT(*) FROM t"); got != 2 {
		t.Fatalf("count = %d", got)
	}
	pid := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Fatalf("PID() = %d after Kill", s.PID())
	}
	if err := s.Kill(); err == nil {
		t.Error("second Kill: no error")
	}
	if err := db.Ping(); err == nil {
		t.Fatal("Ping succeeded after Kill")
	}

	start := time.Now()
	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart after kill: %v", time.Since(start))
	if s.PID() == 0 || s.PID() == pid {
		t.Fatalf("PID() = %d after Restart (was %d)", s.PID(), pid)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM t"); got != 2 {
		t.Fatalf("count after restart = %d", got)
	}
	if got := queryInt(t, db, "SELECT @@port"); "127.0.0.1:"+strconv.FormatInt(got, 10) != s.Addr() {
		t.Fatalf("@@port = %d, Addr() = %s", got, s.Addr())
	}
	Exec(t, s.DSN(""), "INSERT INTO t VALUES (3, 'c')")

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("Ping succeeded after Stop")
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM t"); got != 3 {
		t.Fatalf("count after stop+restart = %d", got)
	}
	// Restart of a running server stops it first.
	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM t"); got != 3 {
		t.Fatalf("count after restart of running server = %d", got)
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	if os.Getenv(EnvDSN) != "" {
		t.Skip(EnvDSN + " is set")
	}
	s, err := Start(Options{})
	if err != nil {
		skipOrFatal(t, err)
	}
	pid := s.PID()
	s.Close()
	s.Close()
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s still there: %v", s.dir, err)
	}
	if processAlive(pid) {
		t.Errorf("mariadbd %d still alive after Close", pid)
	}
	if err := s.Restart(context.Background()); err == nil {
		t.Error("Restart after Close: no error")
	}
	if err := s.Kill(); err == nil {
		t.Error("Kill after Close: no error")
	}
}

func TestStartFailsFast(t *testing.T) {
	t.Parallel()
	if os.Getenv(EnvDSN) != "" {
		t.Skip(EnvDSN + " is set")
	}
	start := time.Now()
	s, err := Start(Options{Args: []string{"--no-such-option-for-testserver"}})
	if err == nil {
		s.Close()
		t.Fatal("Start with a bad option succeeded")
	}
	if errors.Is(err, ErrNoServer) {
		skipOrFatal(t, err)
	}
	if !strings.Contains(err.Error(), "no-such-option-for-testserver") {
		t.Errorf("error lacks the log tail: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("failing start took %v", d)
	}
}

func TestStartRejectsPlacementArgs(t *testing.T) {
	for _, a := range []string{"--port=3306", "--socket=/tmp/x.sock", "--datadir=/tmp", "--log_error=/tmp/e"} {
		if s, err := Start(Options{Args: []string{a}}); err == nil {
			s.Close()
			t.Errorf("Start with %s: no error", a)
		}
	}
}

func TestShared(t *testing.T) {
	t.Parallel()
	dsn := Shared(t)
	if again := Shared(t); again != dsn {
		t.Fatalf("Shared changed: %q then %q", dsn, again)
	}
	db := open(t, AddParams(dsn, "parseTime=true"))
	var now time.Time
	if err := db.QueryRow("SELECT NOW()").Scan(&now); err != nil {
		t.Fatal(err)
	}
}

func TestSweepStale(t *testing.T) {
	dir, err := makeTempDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	host, _ := os.Hostname()
	// A pid beyond pid_max (4194304 at most) belongs to no process.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte("2147483646 "+host+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err := makeTempDir() // owned by this process
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)
	sweepStale()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale dir %s not swept: %v", dir, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live dir %s swept: %v", live, err)
	}
}

// fakeTB records how skipOrFatal ended a test.
type fakeTB struct {
	testing.TB
	how string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skip(args ...any)               { f.how = "skip"; runtime.Goexit() }
func (f *fakeTB) Skipf(format string, a ...any)  { f.how = "skip"; runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, a ...any) { f.how = "fatal"; runtime.Goexit() }

func TestSkipOrFatal(t *testing.T) {
	checkSkipOrFatal(t, skipOrFatal, ErrNoServer, "no server")
}

// checkSkipOrFatal checks a skip-or-fail policy: an error wrapping missing
// skips, unless CI is set; any other error fails.
func checkSkipOrFatal(t *testing.T, skipOrFatal func(testing.TB, error), missing error, what string) {
	run := func(err error) string {
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); skipOrFatal(f, err) }()
		<-done
		return f.how
	}
	absent := fmt.Errorf("%w (test)", missing)
	t.Setenv("CI", "")
	if got := run(absent); got != "skip" {
		t.Errorf("%s, CI unset: %s, want skip", what, got)
	}
	if got := run(errors.New("boom")); got != "fatal" {
		t.Errorf("other error, CI unset: %s, want fatal", got)
	}
	t.Setenv("CI", "true")
	if got := run(absent); got != "fatal" {
		t.Errorf("%s, CI=true: %s, want fatal", what, got)
	}
}
