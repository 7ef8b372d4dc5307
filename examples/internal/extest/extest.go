// Package extest runs the examples from their tests: each example's run
// function against a private MariaDB server (or BATCH_TEST_DSN), with the
// output captured for assertions.
package extest

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the "mysql" database/sql driver

	"github.com/batchsql/batch/internal/testserver"
)

// Main runs the tests of an example and stops the private server they
// shared. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	testserver.Shutdown()
	os.Exit(code)
}

// DSN is the DSN of the test process's shared server: BATCH_TEST_DSN when it
// is set, else a private MariaDB started on first use.
func DSN(t testing.TB) string {
	t.Helper()
	return testserver.Shared(t)
}

// Run calls an example's run function with dsn and a 30-second deadline,
// fails t if it returns an error, and returns what it printed.
func Run(t testing.TB, run func(context.Context, string, io.Writer) error, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	err := run(ctx, dsn, &out)
	t.Logf("run took %v; output:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String()
}

// Open opens dsn for the test's own checks; it is closed when t ends.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Int runs a query that returns one integer.
func Int(t testing.TB, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
