package batch_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch/internal/testserver"
)

// The integration tests run against the shared private server of this test
// process (or BATCH_TEST_DSN); tests that change globals, kill or restart the
// server start one of their own with testserver.Private.
func TestMain(m *testing.M) {
	if ledgerChild() {
		os.Exit(0)
	}
	code := m.Run()
	testserver.Shutdown()
	os.Exit(code)
}

// sharedDB opens the shared server with extra DSN parameters (e.g.
// "loc=Local&parseTime=true"); the pool is closed when t ends. It returns
// the parsed config too, for batch.DriverConfig.
func sharedDB(t testing.TB, params string) (*sql.DB, *mysql.Config) {
	t.Helper()
	return openDSN(t, testserver.AddParams(testserver.Shared(t), params))
}

// openDSN opens a pool on dsn, closed when t ends.
func openDSN(t testing.TB, dsn string) (*sql.DB, *mysql.Config) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return db, cfg
}

// openConnector opens a pool on c, closed when t ends.
func openConnector(t testing.TB, c driver.Connector) *sql.DB {
	t.Helper()
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// dialedConnector returns a connector for dsn whose connections are dialed
// by dial, and its config.
func dialedConnector(t testing.TB, dsn string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (driver.Connector, *mysql.Config) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	cfg.DialFunc = dial
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("connector: %v", err)
	}
	return c, cfg
}

var tableSeq atomic.Int64

// newTable creates a table with a unique name from a column definition list
// such as "id BIGINT PRIMARY KEY, v TEXT" and drops it when t ends. It
// returns the table's name.
func newTable(t testing.TB, db *sql.DB, columns string) string {
	t.Helper()
	// The process id keeps two test processes sharing a server (two
	// checkouts, go test of several packages) off each other's tables.
	name := fmt.Sprintf("t_%s_%d_%d", sanitize(t.Name()), os.Getpid(), tableSeq.Add(1))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	mustExec(t, db, "DROP TABLE IF EXISTS `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"` ("+columns+") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + name + "`") })
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// mustExec runs query on a pool or on one of its connections.
func mustExec(t testing.TB, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// countRows returns SELECT COUNT(*) of table.
func countRows(t testing.TB, db *sql.DB, table string) int {
	t.Helper()
	var n int
	readRow(t, db, "SELECT COUNT(*) FROM `"+table+"`", &n)
	return n
}

// readRow scans the one row of the read-only query q (see readQuery).
func readRow(t testing.TB, db sqlHandle, q string, dest ...any) {
	t.Helper()
	rows := readQuery(t, db, q)
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row: %v", q, rows.Err())
	}
	if err := rows.Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// queryInt returns the integer the read-only query q returns, such as
// "SELECT @@max_allowed_packet".
func queryInt(t testing.TB, db sqlHandle, q string) int {
	t.Helper()
	var v int
	readRow(t, db, q, &v)
	return v
}

// readQuery runs the read-only query q on db (as a text query: it has no
// arguments), taking another connection when the one a pool hands out turns
// out dead: the fault tests kill the pool's idle connections too, and the
// driver's liveness check can miss a connection the server closed an
// instant before. Reading again is safe.
func readQuery(t testing.TB, db sqlHandle, q string) *sql.Rows {
	t.Helper()
	for attempt := 1; ; attempt++ {
		rows, err := db.QueryContext(context.Background(), q)
		if err == nil {
			return rows
		}
		if attempt == 3 || !errors.Is(err, mysql.ErrInvalidConn) && !errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// idRow is one row (id, v) of a test table, for go-cmp.
type idRow[V any] struct {
	ID int64
	V  V
}

// readIDRows reads table (id, v) sorted by id.
func readIDRows[V any](t testing.TB, db *sql.DB, table string) []idRow[V] {
	t.Helper()
	rows := readQuery(t, db, "SELECT id, v FROM `"+table+"` ORDER BY id")
	defer rows.Close()
	var out []idRow[V]
	for rows.Next() {
		var r idRow[V]
		if err := rows.Scan(&r.ID, &r.V); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}
