package batch_test

import (
	"context"
	"database/sql"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// Tests of Failover against a real 3-node MariaDB Galera cluster on
// loopback (internal/testserver.Galera), started once for all of them.
// They are skipped where galera-4 is not installed, and fail under CI.

// galeraProviderOptions make the cluster notice a dead or cut-off node in
// about 2 s instead of 5.
const galeraProviderOptions = ""

func TestGalera(t *testing.T) {
	c := testserver.Galera(t, testserver.GaleraOptions{ProviderOptions: galeraProviderOptions})
	g := &galera{c: c}
	for i := range c.Size() {
		g.dbs = append(g.dbs, galeraDB(t, c, i))
	}
	t.Run("SyncWait", g.syncWait)
	for _, w := range galeraWrites {
		t.Run("NodeKilled/"+w.name, func(t *testing.T) { g.nodeKilled(t, w) })
	}
	t.Run("NodeIsolated", g.nodeIsolated)
	t.Run("TwoNodesSameKeys", g.twoNodesSameKeys)
	t.Run("MaxWsRows", g.maxWsRows)
}

// galera is the cluster of TestGalera and a pool on each node.
type galera struct {
	c   *testserver.Cluster
	dbs []*sql.DB
}

func galeraDB(t *testing.T, c *testserver.Cluster, i int) *sql.DB {
	db, _ := openDSN(t, c.DSN(i, "timeout=2s"))
	return db
}

// galeraWrite is one way to load rows through node 0 with the other nodes
// as alternates.
type galeraWrite struct {
	name string
	load func(ctx context.Context, g *galera, table string, rows [][]any, opts ...batch.Option) (batch.Result, error)
}

var galeraWrites = []galeraWrite{
	{"KeyedInsert", func(ctx context.Context, g *galera, table string, rows [][]any, opts ...batch.Option) (batch.Result, error) {
		return batch.Insert(ctx, g.dbs[0], batch.Values(table, []string{"id", "v"}, rows), g.failover(opts)...)
	}},
	{"Replace", func(ctx context.Context, g *galera, table string, rows [][]any, opts ...batch.Option) (batch.Result, error) {
		return batch.Replace(ctx, g.dbs[0], batch.Values(table, []string{"id", "v"}, rows), g.failover(opts)...)
	}},
	{"Writer", func(ctx context.Context, g *galera, table string, rows [][]any, opts ...batch.Option) (batch.Result, error) {
		return writerLoad(ctx, g.dbs[0], table, rows, g.failover(opts)...)
	}},
}

func (g *galera) failover(opts []batch.Option) []batch.Option {
	return append([]batch.Option{batch.Failover(g.dbs[1], g.dbs[2])}, opts...)
}

// table makes a keyed table (through node 0; Galera replicates the DDL).
func (g *galera) table(t *testing.T) string {
	return newTable(t, g.dbs[0], faultKeyed)
}

// syncCount reads COUNT(*) and the checksum of table on node i with
// wsrep_sync_wait=1: what the cluster committed, as node i holds it.
func (g *galera) syncCount(t *testing.T, i int, table string) (n int, sum int64) {
	t.Helper()
	conn, err := g.dbs[i].Conn(context.Background())
	if err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "SET SESSION wsrep_sync_wait = 1"); err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	defer conn.ExecContext(context.Background(), "SET SESSION wsrep_sync_wait = 0")
	readRow(t, conn, "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, ':', v))), 0) FROM `"+table+"`", &n, &sum)
	return n, sum
}

// galeraSum is the checksum syncCount reads for rows.
func galeraSum(rows [][]any) int64 {
	var sum int64
	for _, r := range rows {
		sum += int64(crc32.ChecksumIEEE([]byte(fmt.Sprintf("%v:%v", r[0], r[1]))))
	}
	return sum
}

// checkNodes fails t unless every running node holds exactly rows.
func (g *galera) checkNodes(t *testing.T, table string, rows [][]any, running ...int) {
	t.Helper()
	for _, i := range running {
		n, sum := g.syncCount(t, i, table)
		if n != len(rows) || sum != galeraSum(rows) {
			t.Errorf("node %d holds %d rows, checksum %d; want %d, %d", i, n, sum, len(rows), galeraSum(rows))
		}
	}
}

// nodeKilled SIGKILLs node 0, the one the load writes through, once a
// fifth of the rows are in: the load moves to node 1 and completes, and
// both survivors hold exactly the rows. Node 0 is started again after.
func (g *galera) nodeKilled(t *testing.T, w galeraWrite) {
	const n = 100_000
	rows := faultInput(faultIDs(0, n), 24)
	table := g.table(t)
	log := &logRecorder{}
	load, release := startGated(t, time.Minute, n/5, func(gate batch.Option) (batch.Result, error) {
		return w.load(context.Background(), g, table, rows, gate, batch.CommitEvery(galeraCommit), batch.Logger(log.logger()))
	})
	err := g.c.Kill(0)
	release()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.restart(t, 0) })
	res, err := load.wait()
	t.Logf("Moves %v, NodeRows %v, %d retries, %v; log:%s", res.Moves, res.NodeRows, res.Retries, res.Elapsed.Round(time.Millisecond), log.summary())
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	g.checkMoved(t, res, n, 0)
	faultCheckRanges(t, res, n)
	g.checkNodes(t, table, rows, 1, 2)
}

// galeraCommit is the transaction size of the loads that lose their node:
// groups of a few chunks, so that a fault after a fifth of the rows finds
// most of them still to write (with the default, two workers would hold
// the whole input in two transactions).
const galeraCommit = 4

// checkMoved fails t unless res moved off node from first and its NodeRows
// add up to n rows, some of them on another node.
func (g *galera) checkMoved(t *testing.T, res batch.Result, n int, from int) {
	t.Helper()
	if len(res.Moves) == 0 || res.Moves[0].From != from {
		t.Fatalf("Moves = %v: want a move off node %d (the fault did not happen)", res.Moves, from)
	}
	var sum, elsewhere int64
	for i, r := range res.NodeRows {
		sum += r
		if i != from {
			elsewhere += r
		}
	}
	if sum != int64(n) || elsewhere == 0 || res.Rows != int64(n) {
		t.Errorf("NodeRows %v (sum %d), Rows %d: want %d rows, some through another node", res.NodeRows, sum, res.Rows, n)
	}
}

// restart starts node i again and waits until it is Synced.
func (g *galera) restart(t *testing.T, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := g.c.Start(ctx, i); err != nil {
		t.Fatalf("restart node %d: %v", i, err)
	}
}

// nodeIsolated cuts node 0 off from the others mid-load: once the cluster
// notices, node 0 answers 1047 and the load moves on.
func (g *galera) nodeIsolated(t *testing.T) {
	const n = 100_000
	rows := faultInput(faultIDs(0, n), 24)
	table := g.table(t)
	log := &logRecorder{}
	load, release := startGated(t, time.Minute, n/5, func(gate batch.Option) (batch.Result, error) {
		return galeraWrites[0].load(context.Background(), g, table, rows, gate, batch.CommitEvery(galeraCommit), batch.Logger(log.logger()))
	})
	g.c.Isolate(0)
	release()
	res, err := load.wait()
	g.c.Heal()
	if werr := g.c.WaitReady(context.Background(), 0); werr != nil {
		t.Errorf("node 0 after Heal: %v", werr)
	}
	t.Logf("Moves %v, NodeRows %v, %d retries; log:%s", res.Moves, res.NodeRows, res.Retries, log.summary())
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	g.checkMoved(t, res, n, 0)
	faultCheckRanges(t, res, n)
	g.checkNodes(t, table, rows, 0, 1, 2)
}

// twoNodesSameKeys runs two upserts of the same rows at once, one through
// node 0 in order and one through node 1 in reverse: their transactions
// conflict in certification (1213), are replayed, and both complete.
func (g *galera) twoNodesSameKeys(t *testing.T) {
	const n = 50_000
	ids := faultIDs(0, n)
	table := g.table(t)
	log := &logRecorder{}
	var loads []*bgLoad
	for i := range 2 {
		order := faultShuffled(ids, uint64(i))
		loads = append(loads, startLoad(func() (batch.Result, error) {
			return batch.Insert(context.Background(), g.dbs[i], batch.Values(table, []string{"id", "v"}, faultInput(order, 24)),
				batch.OnDuplicateKeyUpdateExcept("id"), batch.MaxRows(250), batch.Logger(log.logger()))
		}))
	}
	for i, l := range loads {
		if _, err := l.wait(); err != nil {
			t.Errorf("load through node %d: %v", i, err)
		}
		faultCheckRanges(t, l.res, n)
	}
	conflicts := log.countWith("errno", "1213")
	t.Logf("%d resends after a certification conflict; log:%s", conflicts, log.summary())
	if conflicts == 0 {
		t.Errorf("no certification conflict (1213) resent: the fault did not happen")
	}
	g.checkNodes(t, table, faultInput(ids, 24), 0, 1, 2)
}

// maxWsRows lowers wsrep_max_ws_rows on node 0 below a chunk's rows: the
// write sets are refused, the load cuts its transactions and chunks
// smaller, and completes.
func (g *galera) maxWsRows(t *testing.T) {
	const n, limit = 20_000, 300
	rows := faultInput(faultIDs(0, n), 24)
	table := g.table(t)
	mustExec(t, g.dbs[0], fmt.Sprintf("SET GLOBAL wsrep_max_ws_rows = %d", limit))
	defer mustExec(t, g.dbs[0], "SET GLOBAL wsrep_max_ws_rows = 0")
	pdb := galeraDB(t, g.c, 0) // connections made after the change
	log := &logRecorder{}
	res, err := batch.Insert(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, rows), batch.Logger(log.logger()))
	t.Logf("%d retries, %d statements; log:%s", res.Retries, res.Chunks, log.summary())
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if res.Retries == 0 || res.Chunks < n/limit {
		t.Errorf("Retries = %d, Chunks = %d: want > 0 and >= %d (statements of at most %d rows)", res.Retries, res.Chunks, n/limit, limit)
	}
	faultCheckRanges(t, res, n)
	g.checkNodes(t, table, rows, 0, 1, 2)
}

// syncWait proves what the look-ups after a move rely on: a node may not
// yet have applied what another node committed (here node 1, whose applier
// waits behind FLUSH TABLES WITH READ LOCK), so a plain read there misses
// the row, and a read with wsrep_sync_wait=1 waits for it and finds it.
func (g *galera) syncWait(t *testing.T) {
	ctx := context.Background()
	table := g.table(t)
	lock, err := g.dbs[1].Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	g.syncCount(t, 1, table) // node 1 has applied the CREATE TABLE
	if _, err := lock.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Insert(ctx, g.dbs[0], batch.Values(table, []string{"id", "v"}, faultInput([]int64{1}, 24))); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, g.dbs[1], "SELECT COUNT(*) FROM `"+table+"`"); got != 0 {
		t.Fatalf("node 1 without sync wait sees %d rows while its applier is blocked: the scenario did not happen", got)
	}
	found := make(chan int, 1)
	go func() {
		n, _ := g.syncCountQuiet(table)
		found <- n
	}()
	select {
	case n := <-found:
		t.Fatalf("the read with wsrep_sync_wait=1 returned %d before node 1 applied the row", n)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	if n := <-found; n != 1 {
		t.Errorf("the read with wsrep_sync_wait=1 found %d rows, want 1", n)
	}
}

// syncCountQuiet is syncCount on node 1 off the test goroutine.
func (g *galera) syncCountQuiet(table string) (int, error) {
	conn, err := g.dbs[1].Conn(context.Background())
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	var n int
	if _, err := conn.ExecContext(context.Background(), "SET SESSION wsrep_sync_wait = 1"); err != nil {
		return -1, err
	}
	defer conn.ExecContext(context.Background(), "SET SESSION wsrep_sync_wait = 0")
	err = conn.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM `"+table+"`").Scan(&n)
	return n, err
}
