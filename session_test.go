package batch

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/batchsql/batch/internal/testserver"
)

// TestDirectPath pins what runDirect relies on: go-sql-driver's statements
// are recognised (a driver upgrade that renames its statement type fails
// here rather than silently taking the slower ExecContext path), nothing
// else is, and the path is taken only with a connection to spare.
func TestDirectPath(t *testing.T) {
	db := capDB(t, testserver.Shared(t))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		ds, err := dc.(driver.ConnPrepareContext).PrepareContext(context.Background(), "SELECT ?")
		if err != nil {
			return err
		}
		defer ds.Close()
		if !isDriverStmt(ds) {
			t.Errorf("isDriverStmt(%T) = false, want true", ds)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if isDriverStmt(otherStmt{}) || isDriverStmt(&otherStmt{}) {
		t.Errorf("isDriverStmt(otherStmt) = true, want false")
	}

	for _, tc := range []struct {
		maxOpen, workers int
		want             bool
	}{
		{0, 2, true},
		{3, 2, true},
		{2, 2, false},
		{1, 1, false},
	} {
		db.SetMaxOpenConns(tc.maxOpen)
		e := &engine{db: db}
		if got := e.spareConn(tc.workers); got != tc.want {
			t.Errorf("MaxOpenConns %d, %d workers: spareConn = %v, want %v", tc.maxOpen, tc.workers, got, tc.want)
		}
	}
	if e := (&engine{db: noStats{db, db}}); e.spareConn(1) {
		t.Errorf("spareConn on a pool without Stats = true, want false")
	}
}

type otherStmt struct{ driver.Stmt }

// noStats is a pool that does not say its MaxOpenConns.
type noStats struct {
	DB
	pool
}
