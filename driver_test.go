package batch_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// The package executes its statements on the driver connection, through
// driver.ConnPrepareContext and driver.StmtExecContext. A driver wrapped by
// something that offers neither (an instrumentation layer, say) must still
// work, through database/sql.

// wrapConnector hands out the connections of a go-sql-driver connector,
// wrapped.
type wrapConnector struct {
	inner driver.Connector
	wrap  func(driver.Conn) driver.Conn
}

func (c wrapConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return c.wrap(conn), nil
}

func (c wrapConnector) Driver() driver.Driver { return c.inner.Driver() }

// plainConn offers only driver.Conn: no context, no Execer or Queryer, no
// ConnPrepareContext. (Begin and the Stmt methods below are deprecated in
// favour of the context forms: not offering those is the point.)
type plainConn struct{ c driver.Conn }

func (p plainConn) Prepare(q string) (driver.Stmt, error) { return p.c.Prepare(q) }
func (p plainConn) Close() error                          { return p.c.Close() }

func (p plainConn) Begin() (driver.Tx, error) { return p.c.Begin() }

// ctxPrepareConn prepares with a context but returns statements without
// StmtExecContext.
type ctxPrepareConn struct{ plainConn }

func (p ctxPrepareConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := p.c.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return plainStmt{st}, nil
}

type plainStmt struct{ s driver.Stmt }

func (p plainStmt) Close() error  { return p.s.Close() }
func (p plainStmt) NumInput() int { return p.s.NumInput() }

func (p plainStmt) Exec(args []driver.Value) (driver.Result, error) { return p.s.Exec(args) }

func (p plainStmt) Query(args []driver.Value) (driver.Rows, error) { return p.s.Query(args) }

func TestWrappedDriver(t *testing.T) {
	ctx := context.Background()
	dsn := testserver.Shared(t)
	admin, cfg := openDSN(t, dsn)
	const n = 2500
	in := make([][]any, n)
	want := make([]idRow[string], n)
	for i := range in {
		v := fmt.Sprintf("value %d", i)
		in[i] = []any{int64(i), v}
		want[i] = idRow[string]{int64(i), v}
	}
	for _, tc := range []struct {
		name string
		wrap func(driver.Conn) driver.Conn
	}{
		{"conn without ConnPrepareContext", func(c driver.Conn) driver.Conn { return plainConn{c} }},
		{"stmt without StmtExecContext", func(c driver.Conn) driver.Conn { return ctxPrepareConn{plainConn{c}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := mysql.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			db := openConnector(t, wrapConnector{inner, tc.wrap})
			table := newTable(t, admin, "id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL")
			res, err := batch.Insert(ctx, db, batch.Values(table, []string{"id", "v"}, in), batch.DriverConfig(cfg), batch.MaxRows(1000))
			if err != nil {
				t.Fatalf("Insert: %v", err)
			}
			if res.Rows != n || res.Chunks != 3 || res.Retries != 0 {
				t.Errorf("Rows=%d Chunks=%d Retries=%d, want %d, 3, 0", res.Rows, res.Chunks, res.Retries, n)
			}
			if d := cmp.Diff(want, readIDRows[string](t, admin, table)); d != "" {
				t.Errorf("table (-want +got):\n%s", d)
			}
		})
	}
}
