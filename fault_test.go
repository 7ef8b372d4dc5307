package batch_test

// Fault tests: each runs a load against a private MariaDB server while
// something breaks (connections killed, the server SIGKILLed and restarted,
// TCP connections cut by a proxy, max_allowed_packet lowered, wait_timeout,
// deadlocks, cancellation, a query of death), checks that the fault really
// happened, and compares the final table with the expected rows exactly:
// every id the number of times it must be there, with its value.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/faultproxy"
	"github.com/batchsql/batch/internal/testserver"
)

// ---- helpers ----

// faultValue is row id's value: deterministic, about size bytes, distinct
// per id.
func faultValue(id int64, size int) string {
	s := fmt.Sprintf("v%d-", id)
	if len(s) >= size {
		return s
	}
	return s + strings.Repeat(string(rune('a'+id%26)), size-len(s))
}

// faultInput returns rows (id, faultValue(id, size)) for ids.
func faultInput(ids []int64, size int) [][]any {
	rows := make([][]any, len(ids))
	for i, id := range ids {
		rows[i] = []any{id, faultValue(id, size)}
	}
	return rows
}

// faultIDs returns first, first+1, ..., first+n-1.
func faultIDs(first, n int64) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = first + int64(i)
	}
	return ids
}

// faultCounts reads, for every id in table, how often it is there and
// whether each copy has its expected value (by CRC32, computed by the
// server), so that large tables are compared row by row without moving the
// values.
func faultCounts(t testing.TB, db *sql.DB, table string, size int) (count map[int64]int, badValue []int64) {
	t.Helper()
	rows := readQuery(t, db, "SELECT id, CRC32(v) FROM `"+table+"`")
	defer rows.Close()
	count = map[int64]int{}
	for rows.Next() {
		var id int64
		var crc uint32
		if err := rows.Scan(&id, &crc); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		count[id]++
		if crc != crc32.ChecksumIEEE([]byte(faultValue(id, size))) {
			badValue = append(badValue, id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return count, badValue
}

// faultExact fails t unless table holds each of ids exactly once, with its
// value, and nothing else.
func faultExact(t testing.TB, db *sql.DB, table string, ids []int64, size int) {
	t.Helper()
	count, bad := faultCounts(t, db, table, size)
	want := make(map[int64]int, len(ids))
	for _, id := range ids {
		want[id]++
	}
	var missing, twice, extra []int64
	for id, n := range want {
		switch got := count[id]; {
		case got == 0:
			missing = append(missing, id)
		case got != n:
			twice = append(twice, id)
		}
	}
	for id := range count {
		if want[id] == 0 {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(twice)+len(extra)+len(bad) > 0 {
		t.Errorf("table %s: %d rows for %d distinct ids, want %d ids once each: %d missing %v, %d more than once %v, %d unexpected %v, %d with a wrong value %v",
			table, faultSum(count), len(count), len(ids), len(missing), faultHead(missing), len(twice), faultHead(twice),
			len(extra), faultHead(extra), len(bad), faultHead(bad))
	}
}

func faultSum(m map[int64]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// faultHead returns the first 10 of ids, sorted, for messages.
func faultHead(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	if len(ids) > 10 {
		ids = ids[:10]
	}
	return ids
}

type faultRow = idRow[string]

// faultRows reads table sorted by id, for go-cmp on small tables.
func faultRows(t testing.TB, db *sql.DB, table string) []faultRow {
	t.Helper()
	return readIDRows[string](t, db, table)
}

// faultWantRows is the sorted rows (id, faultValue(id, size)) of ids.
func faultWantRows(ids []int64, size int) []faultRow {
	out := make([]faultRow, len(ids))
	for i, id := range ids {
		out[i] = faultRow{id, faultValue(id, size)}
	}
	slices.SortFunc(out, func(a, b faultRow) int { return int(a.ID - b.ID) })
	return out
}

// faultRangeIDs lists the input ids of the rows in ranges, for input ids.
func faultRangeIDs(ids []int64, ranges []batch.Range) []int64 {
	var out []int64
	for _, r := range ranges {
		out = append(out, ids[r.First:r.End]...)
	}
	return out
}

// faultNotThere lists the input ids of the rows in ranges that are not in
// the table (count, from faultCounts) exactly times times.
func faultNotThere(count map[int64]int, ids []int64, ranges []batch.Range, times int) []int64 {
	var wrong []int64
	for _, id := range faultRangeIDs(ids, ranges) {
		if count[id] != times {
			wrong = append(wrong, id)
		}
	}
	return wrong
}

// faultCheckRanges fails t unless Written, Unknown and NotSent are sorted,
// disjoint, and together cover [0, n) exactly, and Rows is the sum of
// Written.
func faultCheckRanges(t testing.TB, res batch.Result, n int) {
	t.Helper()
	type tagged struct {
		batch.Range
		kind string
	}
	var all []tagged
	written := 0
	for kind, rs := range map[string][]batch.Range{"Written": res.Written, "Unknown": res.Unknown, "NotSent": res.NotSent} {
		for i, r := range rs {
			if r.First >= r.End || i > 0 && rs[i-1].End >= r.First {
				t.Errorf("Result.%s = %v: not sorted, disjoint, non-empty ranges", kind, rs)
			}
			all = append(all, tagged{r, kind})
			if kind == "Written" {
				written += r.Len()
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].First < all[j].First })
	next := 0
	for _, r := range all {
		if r.First != next {
			t.Errorf("Result ranges do not cover [0,%d) exactly once: at row %d comes %s %v (Written %v, Unknown %v, NotSent %v)",
				n, next, r.kind, r.Range, res.Written, res.Unknown, res.NotSent)
			return
		}
		next = r.End
	}
	if next != n {
		t.Errorf("Result ranges end at row %d, want %d (Written %v, Unknown %v, NotSent %v)", next, n, res.Written, res.Unknown, res.NotSent)
	}
	if int64(written) != res.Rows {
		t.Errorf("Result.Rows = %d, but Written covers %d rows", res.Rows, written)
	}
}

// faultServer starts a private server with args and opens a pool on it.
func faultServer(t *testing.T, args ...string) (*testserver.Server, *sql.DB) {
	t.Helper()
	srv := testserver.Private(t, testserver.Options{Args: args})
	db, _ := openDSN(t, srv.DSN(""))
	return srv, db
}

// faultHoldLock runs BEGIN and stmt on a connection of its own, so that the
// transaction holds stmt's locks, and returns the function that ends it
// (ROLLBACK; also run when t ends).
func faultHoldLock(t testing.TB, db *sql.DB, stmt string) (release func()) {
	t.Helper()
	ctx := context.Background()
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"BEGIN", stmt} {
		if _, err := holder.ExecContext(ctx, q); err != nil {
			holder.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			holder.ExecContext(ctx, "ROLLBACK")
			holder.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// faultTrxPoll is how often the tests read INNODB_TRX: MariaDB refreshes
// that cache only when it was last read over 100 ms ago.
const faultTrxPoll = 150 * time.Millisecond

// faultCountLockWaits is the number of transactions waiting for a lock
// that match where, an SQL condition on INNODB_TRX ("" for all). (A text
// query: it does not count in Com_stmt_execute.)
func faultCountLockWaits(t testing.TB, db *sql.DB, where string) int {
	t.Helper()
	var n int
	q := "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
	if where != "" {
		q += " AND " + where
	}
	readRow(t, db, q, &n)
	return n
}

// faultAwaitLockWaits waits, while load runs, until want transactions that
// match where (see faultCountLockWaits) wait for locks, for at most
// timeout, reading every faultTrxPoll; t fails, naming what they are, if
// load ends first or they never do.
func faultAwaitLockWaits(t testing.TB, db *sql.DB, load *bgLoad, timeout time.Duration, want int, where, what string, opts ...waitOption) {
	t.Helper()
	waiting := 0
	waitFor(t, timeout, what, func() bool {
		waiting = faultCountLockWaits(t, db, where)
		return waiting >= want
	}, append([]waitOption{during(load), every(faultTrxPoll),
		detail(func() string { return fmt.Sprintf("%d transactions wait for locks, want %d", waiting, want) })}, opts...)...)
}

// faultReleased fails t (t.Errorf) unless every connection of db is back in
// the pool (none in use) within d of the event named after.
func faultReleased(t testing.TB, db *sql.DB, d time.Duration, after string) {
	t.Helper()
	inUse := -1
	waitFor(t, d, "every connection back in the pool after "+after, func() bool {
		inUse = db.Stats().InUse
		return inUse == 0
	}, every(20*time.Millisecond), nonFatal(), detail(func() string { return fmt.Sprintf("%d connections still in use", inUse) }))
}

// faultKiller kills, every period, every connection of user root on the
// server of dsn (see startKiller), until stop is called; stop returns the
// number of connections killed.
func faultKiller(t testing.TB, dsn string, period time.Duration) (stop func() int) {
	t.Helper()
	return startKiller(t, dsn, period, "USER = 'root'", 0)
}

// faultStatus reads a global status counter.
func faultStatus(t testing.TB, db *sql.DB, name string) int64 {
	t.Helper()
	var k string
	var v int64
	readRow(t, db, "SHOW GLOBAL STATUS LIKE '"+name+"'", &k, &v)
	return v
}

// faultGate returns a OnProgress option that blocks the load's progress
// report, and so its sending, once rows rows are written, until release is
// called; reached is closed when it starts blocking.
func faultGate(rows int64) (opt batch.Option, reached <-chan struct{}, release func()) {
	r, g := make(chan struct{}), make(chan struct{})
	var once, rel sync.Once
	opt = batch.OnProgress(func(p batch.Progress) {
		if p.Rows >= rows {
			once.Do(func() { close(r) })
			<-g
		}
	})
	return opt, r, func() { rel.Do(func() { close(g) }) }
}

// startGated starts load with a faultGate at rows rows written and
// returns once the load reached it (waiting up to timeout, failing t if the
// load ends first), the reporting worker held there until release is
// called: a fault that comes then finds the load mid-way by its own count.
func startGated(t testing.TB, timeout time.Duration, rows int, load func(gate batch.Option) (batch.Result, error)) (*bgLoad, func()) {
	t.Helper()
	gate, reached, release := faultGate(int64(rows))
	l := startLoad(func() (batch.Result, error) { return load(gate) })
	t.Cleanup(release)
	waitFor(t, timeout, fmt.Sprintf("%d rows were in", rows), closed(reached), during(l))
	return l, release
}

// faultWaitRows waits until table holds at least n rows (read with
// COUNT(*) on a pool of its own), and fails t if the load ends first.
func faultWaitRows(t testing.TB, dsn, table string, n int, load *bgLoad) {
	t.Helper()
	pdb, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open poller: %v", err)
	}
	defer pdb.Close()
	waitFor(t, 5*time.Minute, fmt.Sprintf("%d rows were in", n), func() bool {
		var got int
		// A consistent read: it never waits for the load's locks.
		err := pdb.QueryRow("SELECT /* poll */ COUNT(*) FROM `" + table + "`").Scan(&got)
		return err == nil && got >= n
	}, during(load))
}

// faultProxy starts a faultproxy.Proxy in front of srv (opts.Target is
// set), closed when t ends, and returns it and a DSN through it.
func faultProxy(t testing.TB, srv *testserver.Server, opts faultproxy.Options) (*faultproxy.Proxy, string) {
	t.Helper()
	opts.Target = srv.Addr()
	proxy, err := faultproxy.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return proxy, "root@tcp(" + proxy.Addr() + ")/test"
}

const faultKeyed = "id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(255) NOT NULL"

// faultWrite is a load into a table keyed by id whose lost replies the
// package settles without duplicates.
type faultWrite struct {
	name  string
	write func(context.Context, batch.DB, batch.Rows, ...batch.Option) (batch.Result, error)
}

// faultWrites are the two of them: REPLACE (resent) and a plain INSERT
// (looked up by key).
var faultWrites = []faultWrite{
	{"Replace", batch.Replace},
	{"KeyedInsert", batch.Insert},
}

// faultLoad is the load of a faultRideOut subtest: write rows into table,
// logging to log.
type faultLoad struct {
	faultWrite
	table string
	rows  [][]any
	log   *logRecorder
}

// run runs the load through db with opts.
func (l faultLoad) run(db batch.DB, opts ...batch.Option) (batch.Result, error) {
	opts = append([]batch.Option{batch.Logger(l.log.logger())}, opts...)
	return l.write(context.Background(), db, batch.Values(l.table, []string{"id", "v"}, l.rows), opts...)
}

// faultRideOut is the skeleton of the tests whose load must ride out a
// fault. For each of faultWrites a subtest loads ids, with values of size
// bytes, into a new table (columns def, made through db): inject runs the
// load while it injects the fault, checks that the fault happened, and
// returns what the load returned. The load must then have succeeded with
// Result ranges covering every row, and the table must hold every id once,
// with its value.
func faultRideOut(t *testing.T, db *sql.DB, ids []int64, size int, def string, inject func(t *testing.T, l faultLoad) (batch.Result, error)) {
	rows := faultInput(ids, size)
	for _, w := range faultWrites {
		t.Run(w.name, func(t *testing.T) {
			l := faultLoad{faultWrite: w, table: newTable(t, db, def), rows: rows, log: &logRecorder{}}
			res, err := inject(t, l)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			faultCheckRanges(t, res, len(ids))
			faultExact(t, db, l.table, ids, size)
		})
	}
}

// ---- 1. connections killed every 50 ms ----

func TestFaultKillConnections(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	faultRideOut(t, db, faultIDs(0, n), 24, faultKeyed, func(t *testing.T, l faultLoad) (batch.Result, error) {
		stop := faultKiller(t, srv.DSN(""), 50*time.Millisecond)
		res, err := l.run(db)
		kills := stop()
		t.Logf("%d kills, %d retries, %v; log:%s", kills, res.Retries, res.Elapsed.Round(time.Millisecond), l.log.summary())
		if kills == 0 || res.Retries == 0 {
			t.Errorf("kills = %d, Retries = %d: want both > 0 (the fault did not happen)", kills, res.Retries)
		}
		if res.Rows != n {
			t.Errorf("Result.Rows = %d, want %d", res.Rows, n)
		}
		return res, err
	})
}

// ---- 2. the server SIGKILLed mid-batch and restarted ----

func TestFaultServerRestart(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	faultRideOut(t, db, faultIDs(0, n), 24, faultKeyed, func(t *testing.T, l faultLoad) (batch.Result, error) {
		oldPID := srv.PID()
		load := startLoad(func() (batch.Result, error) { return l.run(db) })
		faultWaitRows(t, srv.DSN(""), l.table, n/5, load)
		if kerr := srv.Kill(); kerr != nil {
			t.Fatalf("kill: %v", kerr)
		}
		time.Sleep(3 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if rerr := srv.Restart(ctx); rerr != nil {
			t.Fatalf("restart: %v", rerr)
		}
		newPID := srv.PID()
		res, err := load.wait()
		t.Logf("server pid %d -> %d, %d retries, %v; log:%s", oldPID, newPID, res.Retries, res.Elapsed.Round(time.Millisecond), l.log.summary())
		var re *batch.RetryError
		if errors.As(err, &re) {
			t.Fatalf("the load did not ride out the restart: RetryError %+v", *re)
		}
		if newPID == 0 || newPID == oldPID {
			t.Errorf("server pid %d -> %d: want a new process", oldPID, newPID)
		}
		// A worker sees the restart with a statement in flight or between
		// two statements (encoding the next chunk), as the kill falls.
		got := l.log.count("batch: the server restarted while a chunk was in flight") +
			l.log.count("batch: the server restarted between two statements")
		if got == 0 || res.Retries == 0 {
			t.Errorf("%d restart events logged, Retries = %d: want both > 0", got, res.Retries)
		}
		return res, err
	})
}

// ---- 3. a proxy cutting TCP connections after a random number of bytes ----

func TestFaultProxyCuts(t *testing.T) {
	srv, db := faultServer(t)
	faultRideOut(t, db, faultIDs(0, 200_000), 24, faultKeyed, func(t *testing.T, l faultLoad) (batch.Result, error) {
		seed := rand.Uint64()
		proxy, dsn := faultProxy(t, srv, faultproxy.Options{MaxCuts: 40, CutMin: 1, CutMax: 300_000, Seed: seed})
		// No ping (openDSN's): any connection may be cut, even in its
		// handshake, and only the load retries.
		pdb, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pdb.Close()
		res, err := l.run(pdb)
		cuts := proxy.Cuts()
		dirs := map[faultproxy.Direction]int{}
		for _, c := range cuts {
			dirs[c.Direction]++
		}
		t.Logf("seed %d: %d connections, %d cuts %v, %d retries, %v; log:%s", seed, proxy.Conns(), len(cuts), dirs,
			res.Retries, res.Elapsed.Round(time.Millisecond), l.log.summary())
		if len(cuts) < 5 || dirs[faultproxy.ClientToServer] == 0 || dirs[faultproxy.ServerToClient] == 0 || res.Retries == 0 {
			t.Errorf("%d cuts %v, Retries = %d: want at least 5 cuts, in both directions, and retries", len(cuts), dirs, res.Retries)
		}
		return res, err
	})
}

// ---- 4. max_allowed_packet lowered mid-run while connections are killed ----

func TestFaultMaxAllowedPacketLowered(t *testing.T) {
	srv, db := faultServer(t, "--max-allowed-packet=16M")
	const n, size = 20_000, 2000 // 1000-row chunks of ~2 MB (with MaxBytes above the packet limit)
	def := "id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(4000) NOT NULL"
	faultRideOut(t, db, faultIDs(0, n), size, def, func(t *testing.T, l faultLoad) (batch.Result, error) {
		mustExec(t, db, "SET GLOBAL max_allowed_packet = 16777216")
		// A pool of its own: the shared one may keep idle connections made
		// with the lowered limit, and the load would then plan small
		// chunks from the start.
		ldb, _ := openDSN(t, srv.DSN(""))
		// The load pauses once 2000 rows are in, until the limit is
		// lowered and its connections killed: loads this size can
		// otherwise finish before the faults land.
		// Transactions of 2 chunks: most of the load is still to be sent
		// once the first transaction has committed and the gate holds.
		load, release := startGated(t, 5*time.Minute, 2000, func(gate batch.Option) (batch.Result, error) {
			return l.run(ldb, batch.MaxBytes(1<<30), batch.CommitEvery(2), gate)
		})
		mustExec(t, ldb, "SET GLOBAL max_allowed_packet = 262144")
		stop := faultKiller(t, srv.DSN(""), 100*time.Millisecond)
		time.Sleep(250 * time.Millisecond) // two rounds of kills while the workers wait
		release()
		res, err := load.wait()
		kills := stop()
		t.Logf("%d kills, %d retries, MinPacketLimit %d, %v; log:%s", kills, res.Retries, res.MinPacketLimit, res.Elapsed.Round(time.Millisecond), l.log.summary())
		if res.MinPacketLimit > 262144 || l.log.count("batch: chunk re-split for the connection's limits") == 0 {
			t.Errorf("MinPacketLimit = %d, %d re-splits: want <= 262144 and > 0 (the lowered limit was not met)",
				res.MinPacketLimit, l.log.count("batch: chunk re-split for the connection's limits"))
		}
		if kills == 0 {
			t.Errorf("no connection was killed")
		}
		return res, err
	})
}

// ---- 5. wait_timeout shorter than the gaps of a streaming Writer ----

func TestFaultWaitTimeout(t *testing.T) {
	t.Parallel() // mostly sleeping
	_, db := faultServer(t, "--wait-timeout=2")
	table := newTable(t, db, faultKeyed)
	log := &logRecorder{}
	ctx := context.Background()
	w, err := batch.NewWriter(db, table, []string{"id", "v"}, batch.MaxRows(1), batch.Logger(log.logger()))
	if err != nil {
		t.Fatal(err)
	}
	ids := faultIDs(1, 3)
	for i, id := range ids {
		if i > 0 {
			time.Sleep(3 * time.Second) // the server closes connections idle for 2 s
		}
		if err := w.Write(ctx, id, faultValue(id, 24)); err != nil {
			t.Fatalf("Write(%d): %v", id, err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("Flush after %d: %v", id, err)
		}
	}
	res, err := w.Close(ctx)
	t.Logf("%d retries; log:%s", res.Retries, log.summary())
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := log.count("batch: idle connection is gone; taking a fresh one"); got == 0 {
		t.Errorf("no idle connection was found closed: the fault did not happen")
	}
	faultCheckRanges(t, res, len(ids))
	if diff := cmp.Diff(faultWantRows(ids, 24), faultRows(t, db, table)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

// ---- 6. plain INSERT into a table with no unique key, connections killed ----

func TestFaultKillNoUniqueKey(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	table := newTable(t, db, "id BIGINT NOT NULL, v VARCHAR(255) NOT NULL, KEY (id)")
	log := &logRecorder{}
	load := startLoad(func() (batch.Result, error) {
		return batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)), batch.Logger(log.logger()))
	})
	// Kill once some rows are in, so that Written, Unknown and NotSent are
	// all likely to be non-empty.
	faultWaitRows(t, srv.DSN(""), table, n/10, load)
	stop := faultKiller(t, srv.DSN(""), 50*time.Millisecond)
	res, err := load.wait()
	kills := stop()
	t.Logf("%d kills, %d retries, %d rows written, Unknown %v; err = %v; log:%s", kills, res.Retries, res.Rows, res.Unknown, err, log.summary())
	if kills == 0 {
		t.Errorf("no connection was killed")
	}
	faultCheckRanges(t, res, n)

	// Every error names an uncertain chunk, and those chunks are exactly
	// Result.Unknown.
	var uncertain []batch.Range
	for _, leaf := range faultLeaves(err) {
		var uo *batch.UnknownOutcomeError
		if !errors.As(leaf, &uo) {
			t.Errorf("error %v: want only UnknownOutcomeErrors", leaf)
			continue
		}
		uncertain = append(uncertain, uo.Range)
	}
	slices.SortFunc(uncertain, func(a, b batch.Range) int { return a.First - b.First })
	if diff := cmp.Diff(faultMerge(uncertain), res.Unknown); diff != "" {
		t.Errorf("UnknownOutcomeErrors vs Result.Unknown (-errors +Result):\n%s", diff)
	}

	count, bad := faultCounts(t, db, table, 24)
	if len(bad) > 0 {
		t.Errorf("%d rows with a wrong value, e.g. ids %v", len(bad), faultHead(bad))
	}
	total := faultSum(count)
	uncertainRows := 0
	for _, r := range uncertain {
		uncertainRows += r.Len()
	}
	if int64(total) < res.Rows || int64(total) > res.Rows+int64(uncertainRows) {
		t.Errorf("table has %d rows, want between Result.Rows = %d and %d", total, res.Rows, res.Rows+int64(uncertainRows))
	}
	wrong := append(faultNotThere(count, ids, res.Written, 1), faultNotThere(count, ids, res.NotSent, 0)...)
	if len(wrong) > 0 {
		t.Errorf("%d ids outside the Unknown ranges not there exactly as Result says (once if Written, never if NotSent), e.g. %v", len(wrong), faultHead(wrong))
	}
	// One InnoDB statement is all or nothing: an uncertain chunk is there
	// whole, once, or not at all.
	for _, r := range uncertain {
		present := 0
		for _, id := range ids[r.First:r.End] {
			if count[id] > 1 {
				t.Errorf("uncertain chunk %v: id %d is there %d times", r, id, count[id])
			}
			present += min(count[id], 1)
		}
		if present != 0 && present != r.Len() {
			t.Errorf("uncertain chunk %v: %d of its %d rows are there; a statement is all or nothing", r, present, r.Len())
		}
	}
}

// faultLeaves flattens errors.Join trees into their leaves.
func faultLeaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, faultLeaves(e)...)
		}
		return out
	}
	return []error{err}
}

// faultMerge joins adjacent sorted ranges.
func faultMerge(rs []batch.Range) []batch.Range {
	var out []batch.Range
	for _, r := range rs {
		if len(out) > 0 && out[len(out)-1].End >= r.First {
			out[len(out)-1].End = max(out[len(out)-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// ---- 7. concurrent upserts of the same keys in different orders ----

func TestFaultDeadlocks(t *testing.T) {
	_, db := faultServer(t)
	const n = 20_000
	table := newTable(t, db, faultKeyed)
	ids := faultIDs(0, n)
	orders := [][]int64{slices.Clone(ids), slices.Clone(ids), slices.Clone(ids), slices.Clone(ids)}
	slices.Reverse(orders[1])
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { orders[2][i], orders[2][j] = orders[2][j], orders[2][i] })
	r.Shuffle(n, func(i, j int) { orders[3][i], orders[3][j] = orders[3][j], orders[3][i] })
	before := faultStatus(t, db, "Innodb_deadlocks")
	log := &logRecorder{}
	loads := make([]*bgLoad, len(orders))
	for i, order := range orders {
		loads[i] = startLoad(func() (batch.Result, error) {
			return batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(order, 24)),
				// CommitEvery(1): the per-chunk resend of a deadlock victim;
				// TestGroupReplayOnDeadlock covers transactions of chunks.
				batch.OnDuplicateKeyUpdateExcept("id"), batch.Workers(2), batch.CommitEvery(1), batch.Logger(log.logger()))
		})
	}
	retries := 0
	for _, l := range loads {
		res, _ := l.wait()
		retries += res.Retries
	}
	deadlocks := faultStatus(t, db, "Innodb_deadlocks") - before
	t.Logf("%d deadlocks, %d retries; log:%s", deadlocks, retries, log.summary())
	for i, l := range loads {
		if l.err != nil {
			t.Errorf("writer %d: %v", i, l.err)
		}
		faultCheckRanges(t, l.res, n)
	}
	if deadlocks == 0 || log.count("batch: resending chunk", "class", "rolled-back", "errno", "1213") == 0 {
		t.Errorf("%d deadlocks, %d resends after 1213: want both > 0", deadlocks,
			log.count("batch: resending chunk", "class", "rolled-back", "errno", "1213"))
	}
	faultExact(t, db, table, ids, 24)
}

// ---- 8. the caller's context cancelled mid-batch ----

func TestFaultCancel(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	table := newTable(t, db, faultKeyed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := startLoad(func() (batch.Result, error) {
		return batch.Insert(ctx, db, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)))
	})
	faultWaitRows(t, srv.DSN(""), table, n/10, load)
	cancelled := time.Now()
	cancel()
	res, err := load.wait()
	took := load.ended.Sub(cancelled)
	t.Logf("returned %v after cancel; %d rows written; err = %v", took, res.Rows, err)
	if took > 2*time.Second {
		t.Errorf("Insert returned %v after cancel, want < 2s", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if res.Rows == 0 || res.Rows == n {
		t.Errorf("Result.Rows = %d: the cancel did not land mid-batch", res.Rows)
	}
	if len(res.Unknown) > 0 {
		t.Errorf("Result.Unknown = %v: in-flight chunks should have been answered within the grace period", res.Unknown)
	}
	faultCheckRanges(t, res, n)
	faultExact(t, db, table, faultRangeIDs(ids, res.Written), 24)
}

// ---- 9. a chunk that crashes the server ----

// In "Chunk" each chunk commits alone (CommitEvery(1)): the marker chunk
// ends with an unknown outcome, as a statement that crashed the server may
// have been applied. In "Group", the default, it is in a transaction of
// chunks, which a crash rolls back: the group ends not sent.
func TestFaultQueryOfDeath(t *testing.T) {
	t.Parallel() // mostly waiting for restarts
	for _, tc := range []struct {
		name  string
		opts  []batch.Option
		group bool
	}{
		{"Chunk", []batch.Option{batch.CommitEvery(1)}, false},
		{"Group", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			faultQueryOfDeath(t, tc.group, tc.opts...)
		})
	}
}

func faultQueryOfDeath(t *testing.T, group bool, opts ...batch.Option) {
	srv, db := faultServer(t)
	table := newTable(t, db, faultKeyed)
	const n, markerRow = 20_000, 5500
	const marker = "QUERY-OF-DEATH-MARKER"
	ids := faultIDs(0, n)
	rows := faultInput(ids, 24)
	rows[markerRow][1] = marker

	var mu sync.Mutex
	var pids []int
	var restartErr error
	proxy, dsn := faultProxy(t, srv, faultproxy.Options{
		Marker: []byte(marker),
		OnMarker: func() {
			// The server "crashes" on the statement before running it
			// (the proxy drops it), and comes back 3 s later: far enough
			// apart for the library to see two distinct restarts.
			mu.Lock()
			defer mu.Unlock()
			pids = append(pids, srv.PID())
			if err := srv.Kill(); err != nil && restartErr == nil {
				restartErr = err
			}
			time.Sleep(3 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.Restart(ctx); err != nil && restartErr == nil {
				restartErr = err
			}
			pids = append(pids, srv.PID())
		},
	})
	pdb, _ := openDSN(t, dsn)
	log := &logRecorder{}
	res, err := batch.Replace(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, rows),
		append([]batch.Option{batch.Workers(1), batch.Logger(log.logger())}, opts...)...)
	mu.Lock()
	gotPIDs, kerr := slices.Clone(pids), restartErr
	mu.Unlock()
	t.Logf("markers %d, server pids %v, %d retries; err = %v; log:%s", proxy.Markers(), gotPIDs, res.Retries, err, log.summary())
	if kerr != nil {
		t.Fatalf("kill/restart: %v", kerr)
	}
	for i := 0; i+1 < len(gotPIDs); i += 2 {
		if gotPIDs[i] == 0 || gotPIDs[i+1] == 0 || gotPIDs[i] == gotPIDs[i+1] {
			t.Errorf("server pids before and after each crash %v: want a new process each time", gotPIDs)
		}
	}
	if got := proxy.Markers(); got != 2 {
		t.Errorf("the marker chunk was sent %d times, want 2 (stop after the second restart)", got)
	}
	var re *batch.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *batch.RetryError", err)
	}
	if !re.QueryOfDeath || !re.ServerRestarted || re.Range.First > markerRow || re.Range.End <= markerRow {
		t.Errorf("RetryError %+v: want QueryOfDeath and ServerRestarted, rows covering row %d", *re, markerRow)
	}
	var uo *batch.UnknownOutcomeError
	if !group && (!errors.As(err, &uo) || uo.Range != re.Range) {
		t.Errorf("err = %v: want an UnknownOutcomeError for rows %v inside", err, re.Range)
	}
	if group && errors.As(err, &uo) {
		t.Errorf("err = %v: want no UnknownOutcomeError (a crash rolls the transaction back)", err)
	}
	marked := re.Range
	want := struct{ Written, Unknown, NotSent []batch.Range }{
		[]batch.Range{{First: 0, End: marked.First}}, []batch.Range{marked}, []batch.Range{{First: marked.End, End: n}},
	}
	if group {
		want.Unknown, want.NotSent = nil, []batch.Range{{First: marked.First, End: n}}
	}
	if marked.First == 0 {
		want.Written = nil // the marker's transaction was the first
	}
	got := struct{ Written, Unknown, NotSent []batch.Range }{res.Written, res.Unknown, res.NotSent}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Result ranges (-want +got):\n%s", diff)
	}
	faultCheckRanges(t, res, n)
	// The proxy never delivered the marker chunk: the table holds exactly
	// the chunks before it.
	faultExact(t, db, table, faultRangeIDs(ids, res.Written), 24)
}

// ---- a caller-owned transaction is never retried ----

// TestFaultCallerTxNotRetried runs a REPLACE in the caller's transaction
// that waits for another transaction's lock, and makes it fail: the
// statement is executed once, never resent, and the table is unchanged.
func TestFaultCallerTxNotRetried(t *testing.T) {
	_, db := faultServer(t)

	t.Run("Deadlock", func(t *testing.T) {
		c := newFaultCallerTx(t, db)
		// tx locks row 1, then the batch waits for row 100 (other's); other
		// then asks for row 1: a deadlock, whose lighter victim is tx.
		if _, err := c.tx.Exec("UPDATE `" + c.table + "` SET v = 'tx' WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		deadlocks, executes := faultStatus(t, db, "Innodb_deadlocks"), faultStatus(t, db, "Com_stmt_execute")
		log := &logRecorder{}
		load := c.startBlocked(t, log)
		if _, oerr := c.other.ExecContext(context.Background(), "UPDATE `"+c.table+"` SET v = 'other' WHERE id = 1"); oerr != nil {
			t.Fatalf("the other transaction: %v (it should have won the deadlock)", oerr)
		}
		res, err := load.wait()
		deadlocks = faultStatus(t, db, "Innodb_deadlocks") - deadlocks
		executes = faultStatus(t, db, "Com_stmt_execute") - executes
		t.Logf("err = %v; %d deadlocks, %d executes; log:%s", err, deadlocks, executes, log.summary())
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1213 {
			t.Errorf("err = %v, want the deadlock (1213)", err)
		}
		var ce *batch.ChunkError
		if !errors.As(err, &ce) {
			t.Errorf("err = %v, want a *batch.ChunkError", err)
		}
		if deadlocks != 1 || executes != 1 || res.Retries != 0 || res.Rows != 0 {
			t.Errorf("%d deadlocks, %d executes, Retries = %d, Rows = %d: want 1, 1, 0, 0 (no resend in the caller's transaction)",
				deadlocks, executes, res.Retries, res.Rows)
		}
		faultCheckRanges(t, res, len(c.rows))
		c.other.ExecContext(context.Background(), "ROLLBACK")
		faultExact(t, db, c.table, c.seed, 24)
	})

	t.Run("Kill", func(t *testing.T) {
		c := newFaultCallerTx(t, db)
		executes := faultStatus(t, db, "Com_stmt_execute")
		log := &logRecorder{}
		load := c.startBlocked(t, log)
		killConn(t, db, c.txID)
		res, err := load.wait()
		executes = faultStatus(t, db, "Com_stmt_execute") - executes
		t.Logf("err = %v; %d executes; Unknown %v; log:%s", err, executes, res.Unknown, log.summary())
		if err == nil {
			t.Errorf("err = nil after the caller's connection was killed")
		}
		if executes != 1 || res.Retries != 0 || res.Rows != 0 {
			t.Errorf("%d executes, Retries = %d, Rows = %d: want 1, 0, 0 (no resend in the caller's transaction)", executes, res.Retries, res.Rows)
		}
		faultCheckRanges(t, res, len(c.rows))
		faultExact(t, db, c.table, c.seed, 24)
	})
}

// faultCallerTx is the setting of TestFaultCallerTxNotRetried: a table
// holding ids seed, another transaction that has changed (so weighs more
// than) rows 100..1999, and the caller's transaction tx, on the server's
// connection txID; the batch is rows, ids 100..109, locked by the other.
type faultCallerTx struct {
	db    *sql.DB
	table string
	seed  []int64
	rows  [][]any
	other *sql.Conn
	tx    *sql.Tx
	txID  int64
}

func newFaultCallerTx(t *testing.T, db *sql.DB) *faultCallerTx {
	t.Helper()
	ctx := context.Background()
	c := &faultCallerTx{db: db, table: newTable(t, db, faultKeyed), seed: faultIDs(1, 2000), rows: faultInput(faultIDs(100, 10), 30)}
	if _, err := batch.Insert(ctx, db, batch.Values(c.table, []string{"id", "v"}, faultInput(c.seed, 24))); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.other, err = db.Conn(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.other.Close() })
	for _, q := range []string{"BEGIN", "UPDATE `" + c.table + "` SET v = CONCAT('o', v) WHERE id BETWEEN 100 AND 1999"} {
		if _, err := c.other.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { c.other.ExecContext(ctx, "ROLLBACK") })
	if c.tx, err = db.BeginTx(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.tx.Rollback() })
	if err := c.tx.QueryRow("SELECT CONNECTION_ID()").Scan(&c.txID); err != nil {
		t.Fatal(err)
	}
	return c
}

// startBlocked starts the batch in the caller's transaction and waits
// until it waits for the other transaction's lock.
func (c *faultCallerTx) startBlocked(t *testing.T, log *logRecorder) *bgLoad {
	t.Helper()
	load := startLoad(func() (batch.Result, error) {
		return batch.Replace(context.Background(), c.tx, batch.Values(c.table, []string{"id", "v"}, c.rows), batch.Logger(log.logger()))
	})
	// The table is named too: INNODB_TRX is a cache refreshed at most every
	// 100 ms, which can still show the previous case's transaction, on the
	// same pooled connection, waiting.
	faultAwaitLockWaits(t, c.db, load, 10*time.Second, 1,
		fmt.Sprintf("trx_mysql_thread_id = %d AND trx_query LIKE '%%%s%%'", c.txID, c.table),
		"the batch waiting for the other transaction's lock")
	return load
}

// ---- a lost reply whose statement lands after the look-up ----

// TestFaultLateLanding loses the reply of a keyed INSERT whose statement is
// still waiting for a lock on the server: the look-up on a fresh connection
// finds none of the chunk's keys, the chunk is sent again and waits behind
// the first copy, and when the lock is released the first copy commits and
// the second gets 1062 (duplicate key). That 1062 is the first copy's doing:
// the load must end with every row once and no error. In "Resplit" the
// fresh connection has a smaller max_allowed_packet (lowered after the first
// connection was made), so the chunk is re-split before it is sent again.
func TestFaultLateLanding(t *testing.T) {
	srv, db := faultServer(t, "--max-allowed-packet=16M")
	const size = 2000
	// Input: the even ids 0..1998, 1000 rows of ~2 KB, one 2 MB chunk (the
	// load passes MaxBytes above the packet limit; DefaultBytes would cut
	// 96-row chunks). The odd ids 1199 and 1201 are in the table before; a
	// transaction holding the gap between them (SELECT ... WHERE id = 1200
	// FOR UPDATE) stops the chunk's statement half-way, at id 1200.
	ids := make([]int64, 1000)
	for i := range ids {
		ids[i] = int64(2 * i)
	}
	rows := faultInput(ids, size)
	want := append(slices.Clone(ids), 1199, 1201)
	for _, tc := range []struct {
		name  string
		lower bool
	}{
		{"SameLimits", false},
		{"Resplit", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mustExec(t, db, "SET GLOBAL max_allowed_packet = 16777216")
			table := newTable(t, db, "id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(4000) NOT NULL")
			mustExec(t, db, "INSERT INTO `"+table+"` (id, v) VALUES (1199, ?), (1201, ?)", faultValue(1199, size), faultValue(1201, size))
			release := faultHoldLock(t, db, "SELECT id FROM `"+table+"` WHERE id = 1200 FOR UPDATE")
			// One cut: the first connection that has sent 1 MiB (inside the
			// chunk's EXECUTE packet) loses the reply to that packet.
			proxy, dsn := faultProxy(t, srv, faultproxy.Options{MaxCuts: 1, CutMin: 1 << 20, CutMax: 1 << 20,
				Directions: faultproxy.ServerToClient})
			// openDSN pings: the pool keeps that connection, made before any
			// change of max_allowed_packet, and the load takes it first.
			pdb, _ := openDSN(t, dsn)
			if tc.lower {
				mustExec(t, db, "SET GLOBAL max_allowed_packet = 262144")
			}
			log := &logRecorder{}
			load := startLoad(func() (batch.Result, error) {
				// CommitEvery(1): a late landing is an autocommit statement's;
				// in a transaction the lost copy cannot commit.
				return batch.Insert(ctx, pdb, batch.Values(table, []string{"id", "v"}, rows), batch.MaxBytes(1<<30),
					batch.Workers(1), batch.CommitEvery(1), batch.Logger(log.logger()))
			})
			// Wait for both copies to wait for locks: the first on the gap,
			// the second on the first's rows.
			// Naming the table: INNODB_TRX is a cache up to 100 ms old,
			// which may still show the previous case's two waits.
			faultAwaitLockWaits(t, db, load, 20*time.Second, 2, "trx_query LIKE '%"+table+"%'", "two transactions waiting for locks (the lost copy and the resent one)",
				detail(func() string { return fmt.Sprintf("cuts %v; log:%s", proxy.Cuts(), log.summary()) }))
			release()
			res, err := load.wait()
			t.Logf("cuts %v, %d retries, Written %v, NotSent %v; err = %v; log:%s", proxy.Cuts(), res.Retries, res.Written, res.NotSent, err, log.summary())
			if len(proxy.Cuts()) != 1 {
				t.Errorf("cuts = %v, want 1", proxy.Cuts())
			}
			if tc.lower && log.count("batch: chunk re-split for the connection's limits") == 0 {
				t.Errorf("the chunk was not re-split: the scenario did not happen")
			}
			if err != nil {
				t.Errorf("err = %v, want nil: the 1062 came from the first copy, which landed", err)
			}
			faultCheckRanges(t, res, len(ids))
			// Whatever the error, the Result must match the table: rows it
			// calls written are there, rows it calls not sent are not.
			count, _ := faultCounts(t, db, table, size)
			if wrong := faultNotThere(count, ids, res.NotSent, 0); len(wrong) > 0 {
				t.Errorf("%d rows that Result.NotSent says were not written are in the table, e.g. ids %v", len(wrong), faultHead(wrong))
			}
			faultExact(t, db, table, want, size)
		})
	}
}

// ---- 8b. stopped while a statement waits for a lock ----

// TestFaultStopLockWait stops a load while one of its statements waits for
// a row lock that outlasts the grace period: the caller cancels, or another
// chunk fails (a duplicate key the test commits meanwhile). Insert must
// return soon after the grace period; the waiting chunk must be settled
// (stopped on the server, looked up: not written), the table must hold
// exactly the rows reported written once the lock is gone, and every
// connection must go back to the pool. With a spare connection in the pool
// the statement runs on the package's direct path, which stops waiting for
// it (logged); in a pool capped at the workers it runs through the driver's
// ExecContext, which closes the connection.
func TestFaultStopLockWait(t *testing.T) {
	srv, db := faultServer(t)
	const n, blocked, dup = 300_000, 30_000, 299_999
	ids := faultIDs(0, n)
	rows := faultInput(ids, 24)
	for _, tc := range []struct {
		name    string
		maxOpen int
		direct  bool
		fail    bool // stop by another chunk's error, not by cancelling
	}{
		{"SpareConnection/Cancel", 0, true, false},
		{"CappedPool/Cancel", 2, false, false},
		{"SpareConnection/OtherChunkFails", 0, true, true},
		{"CappedPool/OtherChunkFails", 2, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			table := newTable(t, db, faultKeyed)
			// An uncommitted row with id 30000 makes the chunk that inserts
			// that id wait for the holder's lock (50 s by default).
			release := faultHoldLock(t, db, fmt.Sprintf("INSERT INTO `%s` (id, v) VALUES (%d, 'held')", table, blocked))
			pdb, _ := openDSN(t, srv.DSN(""))
			pdb.SetMaxOpenConns(tc.maxOpen)
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			log := &logRecorder{}
			load := startLoad(func() (batch.Result, error) {
				return batch.Insert(lctx, pdb, batch.Values(table, []string{"id", "v"}, rows), batch.Logger(log.logger()))
			})
			faultAwaitLockWaits(t, db, load, 20*time.Second, 1, "", "a statement waiting for the held lock")
			stopped := time.Now()
			if tc.fail {
				// The other worker goes on; the last row's id, committed
				// now, makes its last chunk fail with a duplicate key.
				if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (id, v) VALUES (%d, ?)", table, dup), faultValue(dup, 24)); err != nil {
					t.Fatalf("the load got to row %d before the lock wait was seen: %v", dup, err)
				}
			} else {
				cancel()
			}
			res, err := load.wait()
			took := load.ended.Sub(stopped)
			t.Logf("returned %v after the stop; Written %v, NotSent %v, Unknown %v; err = %v", took, res.Written, res.NotSent, res.Unknown, err)
			limit := 4 * time.Second // 1 s grace, then the settling
			if tc.fail {
				limit *= 2 // the other worker first loads up to the duplicate
			}
			if took > limit {
				t.Errorf("Insert returned %v after the stop, want < %v", took, limit)
			}
			var ce *batch.ChunkError
			var me *mysql.MySQLError
			switch {
			case tc.fail && !(errors.As(err, &ce) && ce.Range.First <= dup && dup < ce.Range.End && errors.As(err, &me) && me.Number == 1062):
				t.Errorf("err = %v, want the duplicate key's ChunkError", err)
			case !tc.fail && !errors.Is(err, context.Canceled):
				t.Errorf("err = %v, want context.Canceled", err)
			}
			gaveUp := log.count("batch: statement still running after the grace period; its connection is dropped once it ends")
			if tc.direct && gaveUp == 0 || !tc.direct && gaveUp != 0 {
				t.Errorf("%d statements given up after the grace period, want direct path = %v", gaveUp, tc.direct)
			}
			if len(res.Unknown) > 0 {
				t.Errorf("Result.Unknown = %v: the waiting chunk should have been stopped and looked up", res.Unknown)
			}
			if !slices.ContainsFunc(res.NotSent, func(r batch.Range) bool { return r.First <= blocked && blocked < r.End }) {
				t.Errorf("row %d (the waiting chunk) is not in NotSent %v", blocked, res.NotSent)
			}
			faultCheckRanges(t, res, n)
			if waiting := faultCountLockWaits(t, db, ""); waiting != 0 {
				t.Errorf("%d statements still wait for the lock after Insert returned", waiting)
			}
			// Once the lock is gone, a statement left running would land.
			release()
			time.Sleep(200 * time.Millisecond)
			want := faultRangeIDs(ids, res.Written)
			if tc.fail {
				want = append(want, dup)
			}
			faultExact(t, db, table, want, 24)
			faultReleased(t, pdb, 5*time.Second, "Insert returned")
		})
	}
}

// ---- 8c. cancelled during a silent network partition ----

// TestFaultPartition cancels a load while the network to the server drops
// everything silently (faultproxy.Freeze: nothing closed, nothing
// delivered) and one of its statements waits for a row lock. Insert must
// still return soon after the grace period: the statements in flight cannot
// be stopped or looked up, so their rows are Unknown. Their connections stay
// in use until the network comes back (here: Thaw), then go back to the
// pool dropped; the table holds every written row once, and nothing outside
// Written and Unknown.
func TestFaultPartition(t *testing.T) {
	srv, db := faultServer(t)
	const n, blocked = 300_000, 30_000
	ids := faultIDs(0, n)
	table := newTable(t, db, faultKeyed)
	release := faultHoldLock(t, db, fmt.Sprintf("INSERT INTO `%s` (id, v) VALUES (%d, 'held')", table, blocked))
	proxy, dsn := faultProxy(t, srv, faultproxy.Options{})
	pdb, _ := openDSN(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &logRecorder{}
	load := startLoad(func() (batch.Result, error) {
		// CommitEvery(1): the waiting chunk commits on its own, so once
		// given up on its outcome is unknown; in a transaction of several
		// chunks it could not commit.
		return batch.Insert(ctx, pdb, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)), batch.CommitEvery(1), batch.Logger(log.logger()))
	})
	faultAwaitLockWaits(t, db, load, 20*time.Second, 1, "", "a statement waiting for the held lock")
	proxy.Freeze()
	cancelled := time.Now()
	cancel()
	res, err := load.wait()
	took := load.ended.Sub(cancelled)
	t.Logf("returned %v after cancel; Written %v, NotSent %v, Unknown %v; err = %v", took, res.Written, res.NotSent, res.Unknown, err)
	if took > 5*time.Second {
		t.Errorf("Insert returned %v after cancel, want < 5s (1 s grace, 2 s for the settling)", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if gaveUp := log.count("batch: statement still running after the grace period; its connection is dropped once it ends"); gaveUp == 0 {
		t.Errorf("no statement was given up after the grace period: the partition did not catch one in flight")
	}
	if !slices.ContainsFunc(res.Unknown, func(r batch.Range) bool { return r.First <= blocked && blocked < r.End }) {
		t.Errorf("row %d (the waiting chunk) is not in Unknown %v", blocked, res.Unknown)
	}
	faultCheckRanges(t, res, n)
	if inUse := pdb.Stats().InUse; inUse == 0 {
		t.Errorf("no connection in use during the partition: the given-up statements should still hold theirs")
	}
	// The network comes back; the lock goes: the waiting statement lands.
	release()
	proxy.Thaw()
	faultReleased(t, pdb, 10*time.Second, "the network came back")
	count, bad := faultCounts(t, db, table, 24)
	maybe := map[int64]bool{}
	for _, id := range faultRangeIDs(ids, res.Unknown) {
		maybe[id] = true
	}
	for _, id := range faultRangeIDs(ids, res.Written) {
		if count[id] != 1 {
			t.Errorf("written id %d is in the table %d times, want once", id, count[id])
		}
		delete(count, id)
	}
	for id, k := range count {
		if !maybe[id] || k != 1 {
			t.Errorf("id %d is in the table %d times, neither written nor unknown once", id, k)
		}
	}
	if len(bad) > 0 {
		t.Errorf("ids with a wrong value: %v", faultHead(bad))
	}
}
