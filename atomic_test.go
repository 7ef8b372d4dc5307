package batch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/faultproxy"
)

// Atomic mode: the whole input in one transaction on one connection, so the
// table holds all of it or none of it, whatever fails.

// TestAtomicLoad writes every row through several statements and one
// transaction.
func TestAtomicLoad(t *testing.T) {
	db, _ := sharedDB(t, "")
	table := newTable(t, db, faultKeyed)
	ids := faultIDs(0, 5000)
	res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(ids, 40)),
		batch.Atomic(), batch.MaxRows(1000))
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if res.Rows != 5000 || res.Chunks != 5 || res.Retries != 0 {
		t.Errorf("Rows=%d Chunks=%d Retries=%d, want 5000, 5, 0", res.Rows, res.Chunks, res.Retries)
	}
	if d := cmp.Diff(faultWantRows(ids, 40), faultRows(t, db, table)); d != "" {
		t.Errorf("table (-want +got):\n%s", d)
	}
}

// TestAtomicRefused checks that a statement the server refuses (a duplicate
// key in the fourth of five statements) leaves the table empty, reports
// every row not sent, and leaves no transaction open: another connection can
// at once write a key the failed transaction had inserted.
func TestAtomicRefused(t *testing.T) {
	ctx := context.Background()
	db, _ := sharedDB(t, "")
	table := newTable(t, db, faultKeyed)
	rows := faultInput(faultIDs(0, 5000), 40)
	rows[3500][0] = int64(3010) // a duplicate inside the fourth statement
	res, err := batch.Insert(ctx, db, batch.Values(table, []string{"id", "v"}, rows), batch.Atomic(), batch.MaxRows(1000))
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	if !errors.As(err, &ce) || !errors.As(err, &me) || me.Number != 1062 || ce.Range.First != 3000 {
		t.Fatalf("err = %v, want a ChunkError for rows 3000.. wrapping error 1062", err)
	}
	if res.Rows != 0 || len(res.Written) != 0 || !cmp.Equal(res.NotSent, []batch.Range{{First: 0, End: 5000}}) {
		t.Errorf("Rows=%d Written=%v NotSent=%v, want 0, none, [0, 5000)", res.Rows, res.Written, res.NotSent)
	}
	if n := countRows(t, db, table); n != 0 {
		t.Errorf("table holds %d rows, want 0", n)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "SET SESSION innodb_lock_wait_timeout = 1")
	if _, err := conn.ExecContext(ctx, "INSERT INTO `"+table+"` (id, v) VALUES (1, 'x')"); err != nil {
		t.Errorf("writing key 1 after the failed transaction: %v (a transaction still holds it?)", err)
	}
}

// TestAtomicKilledReplays kills the connection in the middle of the
// transaction, while one of its INSERTs runs: the server rolls the
// transaction back and the package replays the whole input on a fresh
// connection, once.
func TestAtomicKilledReplays(t *testing.T) {
	srv, db := faultServer(t)
	table := newTable(t, db, faultKeyed)
	ids := faultIDs(0, 200_000)
	// The one connection running an INSERT is the load's, in its
	// transaction: kill it once.
	stop := startKiller(t, srv.DSN(""), 2*time.Millisecond, "INFO LIKE 'INSERT INTO%'", 1)
	log := &logRecorder{}
	res, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(ids, 40)),
		batch.Atomic(), batch.Logger(log.logger()))
	kills := stop()
	t.Logf("%d kills, %d retries; log:%s", kills, res.Retries, log.summary())
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if kills != 1 || res.Retries != 1 || log.count("batch: atomic batch rolled back; replaying it") != 1 {
		t.Errorf("%d kills, %d retries, %d replays logged: want one of each", kills, res.Retries,
			log.count("batch: atomic batch rolled back; replaying it"))
	}
	if res.Rows != int64(len(ids)) || !cmp.Equal(res.Written, []batch.Range{{First: 0, End: len(ids)}}) {
		t.Errorf("Rows=%d Written=%v, want all %d", res.Rows, res.Written, len(ids))
	}
	faultExact(t, db, table, ids, 40)
}

// TestAtomicLostCommit loses the COMMIT: a proxy drops it and resets the
// connection, so the client cannot know whether it committed. Every row is
// reported unknown, in an *UnknownOutcomeError; nothing is replayed. (Here
// the server never saw the COMMIT and rolled back.)
func TestAtomicLostCommit(t *testing.T) {
	srv, db := faultServer(t)
	table := newTable(t, db, faultKeyed)
	proxy, dsn := faultProxy(t, srv, faultproxy.Options{Marker: []byte("COMMIT"), OnMarker: func() {}})
	pdb, _ := openDSN(t, dsn)
	const n = 3000
	res, err := batch.Insert(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, faultInput(faultIDs(0, n), 40)),
		batch.Atomic(), batch.MaxRows(1000))
	if got := proxy.Markers(); got != 1 {
		t.Fatalf("COMMIT went through the proxy %d times, want 1", got)
	}
	var uo *batch.UnknownOutcomeError
	if !errors.As(err, &uo) || uo.Range != (batch.Range{End: n}) {
		t.Fatalf("err = %v, want an UnknownOutcomeError for rows 0..%d", err, n-1)
	}
	if res.Rows != 0 || res.Retries != 0 || !cmp.Equal(res.Unknown, []batch.Range{{First: 0, End: n}}) {
		t.Errorf("Rows=%d Retries=%d Unknown=%v, want 0, 0, [0, %d)", res.Rows, res.Retries, res.Unknown, n)
	}
	if got := countRows(t, db, table); got != 0 {
		t.Errorf("table holds %d rows, want 0 (the COMMIT never reached the server)", got)
	}
}
