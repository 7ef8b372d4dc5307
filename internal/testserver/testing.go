package testserver

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// EnvDSN names the environment variable that points the tests at an existing
// server instead of a private one: a go-sql-driver DSN such as
// "root@tcp(127.0.0.1:3306)/test". Shared returns it as is; Private skips.
const EnvDSN = "BATCH_TEST_DSN"

// Private starts a private server for t with opts and closes it when t and
// its subtests are done (t.Cleanup). Use it for tests that kill, restart or
// reconfigure the server. It skips t when BATCH_TEST_DSN is set, and when no
// MariaDB server is installed, except that it fails t instead when the
// environment variable CI is non-empty. Any other start failure fails t.
func Private(t testing.TB, opts Options) *Server {
	t.Helper()
	if os.Getenv(EnvDSN) != "" {
		t.Skip(EnvDSN + " points at another server; this test needs a private server")
	}
	s, err := Start(opts)
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(s.Close)
	return s
}

// shared is the general-purpose server of this test process.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the DSN of the general-purpose server of this test process:
// BATCH_TEST_DSN if it is set (it must parse as a go-sql-driver DSN), else
// that of one private server started on first use and kept for the whole
// process, e.g. "root@tcp(127.0.0.1:PORT)/test". Tests sharing it must not
// step on each other (use their own tables or databases) and must not
// reconfigure or stop it; add parameters with AddParams. Call Shutdown from
// the package's TestMain to stop it. Failures to start skip or fail t as
// with Private.
func Shared(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		if _, err := mysql.ParseDSN(dsn); err != nil {
			t.Fatalf("testserver: %s is not a go-sql-driver DSN: %v", EnvDSN, err)
		}
		return dsn
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Start(Options{})
	}
	if shared.err != nil {
		skipOrFatal(t, shared.err)
	}
	return shared.srv.DSN("")
}

// Shutdown closes the shared server, every server from Start or Private
// and every cluster from StartGalera or Galera not closed yet, and removes
// this process's template datadir. Call it from
// TestMain after m.Run. It is safe to call more than once; a later Start or
// Shared starts afresh.
func Shutdown() {
	shared.mu.Lock()
	shared.srv, shared.err = nil, nil
	shared.mu.Unlock()
	closeClusters()
	for _, s := range registered() {
		s.Close()
	}
	removeTemplate()
}

// Exec runs each statement on dsn in order, on one connection, and fails t
// on the first error. It is a convenience for test setup.
func Exec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("testserver: open %q: %v", dsn, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("testserver: connect: %v", err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("testserver: %s: %v", q, err)
		}
	}
}

// skipOrFatal ends t after a failed Start: skip if no server is installed
// (fail under CI), fail otherwise.
func skipOrFatal(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoServer) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v\nCI is set, so this fails rather than skips: CI must run the database tests (scripts/test.sh installs mariadb-server)", err)
		}
		t.Skipf("%v\nskipping; run scripts/test.sh (installs mariadb-server) or set %s", err, EnvDSN)
	}
	t.Fatalf("testserver: start private MariaDB: %v", err)
}
