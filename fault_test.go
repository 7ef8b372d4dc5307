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
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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

// faultLog is a slog.Handler that keeps every record of the batch package,
// for assertions on what the package did (resends, restarts, re-splits).
type faultLog struct {
	mu   sync.Mutex
	recs []faultRec
}

type faultRec struct {
	Msg   string
	Attrs map[string]string
}

func (h *faultLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *faultLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *faultLog) WithGroup(string) slog.Handler            { return h }
func (h *faultLog) Handle(_ context.Context, r slog.Record) error {
	rec := faultRec{Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *faultLog) logger() *slog.Logger { return slog.New(h) }

// count is the number of records with msg whose attributes include kv
// ("key", "value" pairs).
func (h *faultLog) count(msg string, kv ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
next:
	for _, r := range h.recs {
		if r.Msg != msg {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if r.Attrs[kv[i]] != kv[i+1] {
				continue next
			}
		}
		n++
	}
	return n
}

// summary counts the records by message (and class/errno for resends).
func (h *faultLog) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	counts := map[string]int{}
	for _, r := range h.recs {
		if r.Msg == "batch: connection limits" {
			continue
		}
		k := r.Msg
		if c, ok := r.Attrs["class"]; ok {
			k += " class=" + c + " errno=" + r.Attrs["errno"]
		}
		counts[k]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d  %s", counts[k], k)
	}
	return b.String()
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

// faultLockWaits waits up to 20 s for want transactions waiting for locks
// while load runs, and returns how many it saw last; the test fails if load
// ends first. (INNODB_TRX is refreshed only when last read over 100 ms ago.)
func faultLockWaits(t testing.TB, db *sql.DB, want int, load *bgLoad) int {
	t.Helper()
	waiting := 0
	for deadline := time.Now().Add(20 * time.Second); waiting < want && time.Now().Before(deadline); {
		select {
		case <-load.done:
			t.Fatalf("the load ended before the lock was released: err = %v", load.err)
		case <-time.After(150 * time.Millisecond):
		}
		waiting = faultCountLockWaits(t, db)
	}
	return waiting
}

// faultCountLockWaits is the number of transactions waiting for a lock.
func faultCountLockWaits(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	readRow(t, db, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'", &n)
	return n
}

// faultReleased fails t unless every connection of db is back in the pool
// (none in use) within d of the event named after.
func faultReleased(t testing.TB, db *sql.DB, d time.Duration, after string) {
	t.Helper()
	inUse := -1
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if inUse = db.Stats().InUse; inUse == 0 {
			return
		}
	}
	t.Errorf("%d connections still in use %v after %s", inUse, d, after)
}

// faultKiller runs KILL CONNECTION, every period, on every connection of
// user root on the server but its own, until stop is called; stop returns
// the number of connections killed.
func faultKiller(t testing.TB, dsn string, period time.Duration) (stop func() int) {
	t.Helper()
	kdb, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open killer: %v", err)
	}
	kdb.SetMaxOpenConns(1)
	var kills atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			kills.Add(int64(faultKillAll(ctx, kdb)))
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			cancel()
			<-done
			kdb.Close()
		})
		return int(kills.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}

// faultKillAll kills every root connection but the one it runs on and
// returns how many it killed.
func faultKillAll(ctx context.Context, kdb *sql.DB) int {
	conn, err := kdb.Conn(ctx)
	if err != nil {
		return 0
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'root' AND ID <> CONNECTION_ID()")
	if err != nil {
		return 0
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	n := 0
	for _, id := range ids {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err == nil {
			n++
		}
	}
	return n
}

// faultStatus reads a global status counter.
func faultStatus(t testing.TB, db *sql.DB, name string) int64 {
	t.Helper()
	var k string
	var v int64
	readRow(t, db, "SHOW GLOBAL STATUS LIKE '"+name+"'", &k, &v)
	return v
}

// faultGate returns a WithProgress option that blocks the load's progress
// report, and so its sending, once rows rows are written, until release is
// called; reached is closed when it starts blocking.
func faultGate(rows int64) (opt batch.Option, reached <-chan struct{}, release func()) {
	r, g := make(chan struct{}), make(chan struct{})
	var once, rel sync.Once
	opt = batch.WithProgress(func(p batch.Progress) {
		if p.Rows >= rows {
			once.Do(func() { close(r) })
			<-g
		}
	})
	return opt, r, func() { rel.Do(func() { close(g) }) }
}

// faultWaitRows waits until table holds at least n rows (read with
// COUNT(*) on a pool of its own), or the load is done.
func faultWaitRows(t testing.TB, dsn, table string, n int, done <-chan struct{}) bool {
	t.Helper()
	pdb, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open poller: %v", err)
	}
	defer pdb.Close()
	for {
		var got int
		// A consistent read: it never waits for the load's locks.
		if err := pdb.QueryRow("SELECT /* poll */ COUNT(*) FROM `" + table + "`").Scan(&got); err == nil && got >= n {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

const faultKeyed = "id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(255) NOT NULL"

// faultWrites are the two loads into a table keyed by id whose lost replies
// the package settles without duplicates: REPLACE (resent) and a plain
// INSERT (looked up by key).
var faultWrites = []struct {
	name  string
	write func(context.Context, batch.DB, batch.Rows, ...batch.Option) (batch.Result, error)
}{
	{"Replace", batch.Replace},
	{"KeyedInsert", batch.Insert},
}

// ---- 1. connections killed every 50 ms ----

func TestFaultKillConnections(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	rows := faultInput(ids, 24)
	for _, tc := range faultWrites {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t, db, faultKeyed)
			log := &faultLog{}
			stop := faultKiller(t, srv.DSN(""), 50*time.Millisecond)
			res, err := tc.write(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows), batch.WithLogger(log.logger()))
			kills := stop()
			t.Logf("%d kills, %d retries, %v; log:%s", kills, res.Retries, res.Elapsed.Round(time.Millisecond), log.summary())
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if kills == 0 || res.Retries == 0 {
				t.Errorf("kills = %d, Retries = %d: want both > 0 (the fault did not happen)", kills, res.Retries)
			}
			if res.Rows != n {
				t.Errorf("Result.Rows = %d, want %d", res.Rows, n)
			}
			faultCheckRanges(t, res, n)
			faultExact(t, db, table, ids, 24)
		})
	}
}

// ---- 2. the server SIGKILLed mid-batch and restarted ----

func TestFaultServerRestart(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	rows := faultInput(ids, 24)
	for _, tc := range faultWrites {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t, db, faultKeyed)
			log := &faultLog{}
			oldPID := srv.PID()
			load := startLoad(func() (batch.Result, error) {
				return tc.write(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows), batch.WithLogger(log.logger()))
			})
			if !faultWaitRows(t, srv.DSN(""), table, n/5, load.done) {
				t.Fatalf("the load ended before %d rows were in: err = %v", n/5, load.err)
			}
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
			t.Logf("server pid %d -> %d, %d retries, %v; log:%s", oldPID, newPID, res.Retries, res.Elapsed.Round(time.Millisecond), log.summary())
			var re *batch.RetryError
			if errors.As(err, &re) {
				t.Fatalf("the load did not ride out the restart: RetryError %+v", *re)
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if newPID == 0 || newPID == oldPID {
				t.Errorf("server pid %d -> %d: want a new process", oldPID, newPID)
			}
			if got := log.count("batch: the server restarted while a chunk was in flight"); got == 0 || res.Retries == 0 {
				t.Errorf("%d restart events logged, Retries = %d: want both > 0", got, res.Retries)
			}
			faultCheckRanges(t, res, n)
			faultExact(t, db, table, ids, 24)
		})
	}
}

// ---- 3. a proxy cutting TCP connections after a random number of bytes ----

func TestFaultProxyCuts(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	rows := faultInput(ids, 24)
	for _, tc := range faultWrites {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t, db, faultKeyed)
			seed := rand.Uint64()
			proxy, err := faultproxy.Start(faultproxy.Options{Target: srv.Addr(), MaxCuts: 40, CutMin: 1, CutMax: 300_000, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			// No ping (openDSN's): any connection may be cut, even in its
			// handshake, and only the load retries.
			pdb, err := sql.Open("mysql", "root@tcp("+proxy.Addr()+")/test")
			if err != nil {
				t.Fatal(err)
			}
			defer pdb.Close()
			log := &faultLog{}
			res, err := tc.write(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, rows), batch.WithLogger(log.logger()))
			cuts := proxy.Cuts()
			dirs := map[faultproxy.Direction]int{}
			for _, c := range cuts {
				dirs[c.Direction]++
			}
			t.Logf("seed %d: %d connections, %d cuts %v, %d retries, %v; log:%s", seed, proxy.Conns(), len(cuts), dirs,
				res.Retries, res.Elapsed.Round(time.Millisecond), log.summary())
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(cuts) < 5 || dirs[faultproxy.ClientToServer] == 0 || dirs[faultproxy.ServerToClient] == 0 || res.Retries == 0 {
				t.Errorf("%d cuts %v, Retries = %d: want at least 5 cuts, in both directions, and retries", len(cuts), dirs, res.Retries)
			}
			faultCheckRanges(t, res, n)
			faultExact(t, db, table, ids, 24)
		})
	}
}

// ---- 4. max_allowed_packet lowered mid-run while connections are killed ----

func TestFaultMaxAllowedPacketLowered(t *testing.T) {
	srv, db := faultServer(t, "--max-allowed-packet=16M")
	const n, size = 20_000, 2000 // 1000-row chunks of ~2 MB (with MaxBytes above the packet limit)
	ids := faultIDs(0, n)
	rows := faultInput(ids, size)
	for _, tc := range faultWrites {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, db, "SET GLOBAL max_allowed_packet = 16777216")
			// A pool of its own: the shared one may keep idle connections
			// made with the lowered limit, and the load would then plan
			// small chunks from the start.
			db, _ := openDSN(t, srv.DSN(""))
			table := newTable(t, db, "id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(4000) NOT NULL")
			log := &faultLog{}
			// The load pauses once 2000 rows are in, until the limit is
			// lowered and its connections killed: loads this size can
			// otherwise finish before the faults land.
			gate, reached, release := faultGate(2000)
			t.Cleanup(release)
			load := startLoad(func() (batch.Result, error) {
				return tc.write(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows),
					batch.MaxBytes(1<<30), batch.WithLogger(log.logger()), gate)
			})
			select {
			case <-reached:
			case <-load.done:
				t.Fatalf("the load ended before 2000 rows were in: err = %v", load.err)
			}
			mustExec(t, db, "SET GLOBAL max_allowed_packet = 262144")
			stop := faultKiller(t, srv.DSN(""), 100*time.Millisecond)
			time.Sleep(250 * time.Millisecond) // two rounds of kills while the workers wait
			release()
			res, err := load.wait()
			kills := stop()
			t.Logf("%d kills, %d retries, MaxPacket %d, %v; log:%s", kills, res.Retries, res.MaxPacket, res.Elapsed.Round(time.Millisecond), log.summary())
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if res.MaxPacket > 262144 || log.count("batch: chunk re-split for the connection's limits") == 0 {
				t.Errorf("MaxPacket = %d, %d re-splits: want <= 262144 and > 0 (the lowered limit was not met)",
					res.MaxPacket, log.count("batch: chunk re-split for the connection's limits"))
			}
			if kills == 0 {
				t.Errorf("no connection was killed")
			}
			faultCheckRanges(t, res, n)
			faultExact(t, db, table, ids, size)
		})
	}
}

// ---- 5. wait_timeout shorter than the gaps of a streaming Writer ----

func TestFaultWaitTimeout(t *testing.T) {
	t.Parallel() // mostly sleeping
	_, db := faultServer(t, "--wait-timeout=2")
	table := newTable(t, db, faultKeyed)
	log := &faultLog{}
	ctx := context.Background()
	w, err := batch.NewWriter(db, table, []string{"id", "v"}, batch.MaxRows(1), batch.WithLogger(log.logger()))
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
	log := &faultLog{}
	load := startLoad(func() (batch.Result, error) {
		return batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)), batch.WithLogger(log.logger()))
	})
	// Kill once some rows are in, so that Written, Unknown and NotSent are
	// all likely to be non-empty.
	if !faultWaitRows(t, srv.DSN(""), table, n/10, load.done) {
		t.Fatalf("the load ended before %d rows were in: err = %v", n/10, load.err)
	}
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
		uncertain = append(uncertain, batch.Range{First: uo.FirstRow, End: uo.FirstRow + uo.Rows})
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
	var wrong []int64
	for _, id := range faultRangeIDs(ids, res.Written) {
		if count[id] != 1 {
			wrong = append(wrong, id)
		}
	}
	for _, id := range faultRangeIDs(ids, res.NotSent) {
		if count[id] != 0 {
			wrong = append(wrong, id)
		}
	}
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
	log := &faultLog{}
	results := make([]batch.Result, len(orders))
	errs := make([]error, len(orders))
	var wg sync.WaitGroup
	for i, order := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(order, 24)),
				batch.OnDuplicateKeyUpdateExcept("id"), batch.Workers(2), batch.WithLogger(log.logger()))
		}()
	}
	wg.Wait()
	deadlocks := faultStatus(t, db, "Innodb_deadlocks") - before
	retries := 0
	for _, res := range results {
		retries += res.Retries
	}
	t.Logf("%d deadlocks, %d retries; log:%s", deadlocks, retries, log.summary())
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
		faultCheckRanges(t, results[i], n)
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
	if !faultWaitRows(t, srv.DSN(""), table, n/10, load.done) {
		t.Fatalf("the load ended before %d rows were in: err = %v", n/10, load.err)
	}
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

func TestFaultQueryOfDeath(t *testing.T) {
	t.Parallel() // mostly waiting for restarts
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
	proxy, err := faultproxy.Start(faultproxy.Options{
		Target: srv.Addr(),
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
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	pdb, _ := openDSN(t, "root@tcp("+proxy.Addr()+")/test")
	log := &faultLog{}
	res, err := batch.Replace(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, rows),
		batch.Workers(1), batch.WithLogger(log.logger()))
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
	if !re.QueryOfDeath || !re.ServerRestarted || re.FirstRow > markerRow || re.FirstRow+re.Rows <= markerRow {
		t.Errorf("RetryError %+v: want QueryOfDeath and ServerRestarted, rows covering row %d", *re, markerRow)
	}
	var uo *batch.UnknownOutcomeError
	if !errors.As(err, &uo) || uo.FirstRow != re.FirstRow || uo.Rows != re.Rows {
		t.Errorf("err = %v: want an UnknownOutcomeError for rows %d+%d inside", err, re.FirstRow, re.Rows)
	}
	marked := batch.Range{First: re.FirstRow, End: re.FirstRow + re.Rows}
	want := struct{ Written, Unknown, NotSent []batch.Range }{
		[]batch.Range{{First: 0, End: marked.First}}, []batch.Range{marked}, []batch.Range{{First: marked.End, End: n}},
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

func TestFaultCallerTxNotRetried(t *testing.T) {
	_, db := faultServer(t)
	seed := faultIDs(1, 2000)
	setup := func(t *testing.T) (table string, other *sql.Conn, tx *sql.Tx) {
		table = newTable(t, db, faultKeyed)
		if _, err := batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(seed, 24))); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		other, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		// The other transaction changes (so weighs more than) rows 100..1999.
		for _, q := range []string{"BEGIN", "UPDATE `" + table + "` SET v = CONCAT('o', v) WHERE id BETWEEN 100 AND 1999"} {
			if _, err := other.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		t.Cleanup(func() { other.ExecContext(ctx, "ROLLBACK") })
		if tx, err = db.BeginTx(ctx, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		return table, other, tx
	}
	// waitLockWait waits until the transaction of connection id waits for
	// a lock. INNODB_TRX is a cache that MariaDB refreshes only when it was
	// last read over 100 ms ago: polled faster, it never changes.
	waitLockWait := func(t *testing.T, id int64, done <-chan struct{}) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				t.Fatal("the batch ended before it waited for the other transaction's lock")
			case <-time.After(200 * time.Millisecond):
			}
			var waiting int
			// No args: a text query, not counted in Com_stmt_execute.
			q := fmt.Sprintf("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' AND trx_mysql_thread_id = %d", id)
			if err := db.QueryRow(q).Scan(&waiting); err == nil && waiting > 0 {
				return
			}
		}
		t.Fatal("the batch never waited for the other transaction's lock")
	}
	// connID is the server's id of the caller's connection.
	connID := func(t *testing.T, tx *sql.Tx) int64 {
		t.Helper()
		var id int64
		if err := tx.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	batchRows := faultInput(faultIDs(100, 10), 30) // rows 100..109, locked by the other transaction

	t.Run("Deadlock", func(t *testing.T) {
		table, other, tx := setup(t)
		txID := connID(t, tx)
		// tx locks row 1, then the batch waits for row 100 (other's); other
		// then asks for row 1: a deadlock, whose lighter victim is tx.
		if _, err := tx.Exec("UPDATE `" + table + "` SET v = 'tx' WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		deadlocks, executes := faultStatus(t, db, "Innodb_deadlocks"), faultStatus(t, db, "Com_stmt_execute")
		log := &faultLog{}
		load := startLoad(func() (batch.Result, error) {
			return batch.Replace(context.Background(), tx, batch.Values(table, []string{"id", "v"}, batchRows), batch.WithLogger(log.logger()))
		})
		waitLockWait(t, txID, load.done)
		if _, oerr := other.ExecContext(context.Background(), "UPDATE `"+table+"` SET v = 'other' WHERE id = 1"); oerr != nil {
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
		faultCheckRanges(t, res, len(batchRows))
		other.ExecContext(context.Background(), "ROLLBACK")
		faultExact(t, db, table, seed, 24)
	})

	t.Run("Kill", func(t *testing.T) {
		table, _, tx := setup(t)
		txID := connID(t, tx)
		executes := faultStatus(t, db, "Com_stmt_execute")
		log := &faultLog{}
		load := startLoad(func() (batch.Result, error) {
			return batch.Replace(context.Background(), tx, batch.Values(table, []string{"id", "v"}, batchRows), batch.WithLogger(log.logger()))
		})
		waitLockWait(t, txID, load.done)
		mustExec(t, db, fmt.Sprintf("KILL CONNECTION %d", txID))
		res, err := load.wait()
		executes = faultStatus(t, db, "Com_stmt_execute") - executes
		t.Logf("err = %v; %d executes; Unknown %v; log:%s", err, executes, res.Unknown, log.summary())
		if err == nil {
			t.Errorf("err = nil after the caller's connection was killed")
		}
		if executes != 1 || res.Retries != 0 || res.Rows != 0 {
			t.Errorf("%d executes, Retries = %d, Rows = %d: want 1, 0, 0 (no resend in the caller's transaction)", executes, res.Retries, res.Rows)
		}
		faultCheckRanges(t, res, len(batchRows))
		faultExact(t, db, table, seed, 24)
	})
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
			proxy, err := faultproxy.Start(faultproxy.Options{Target: srv.Addr(), MaxCuts: 1, CutMin: 1 << 20, CutMax: 1 << 20,
				Directions: faultproxy.ServerToClient})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			// openDSN pings: the pool keeps that connection, made before any
			// change of max_allowed_packet, and the load takes it first.
			pdb, _ := openDSN(t, "root@tcp("+proxy.Addr()+")/test")
			if tc.lower {
				mustExec(t, db, "SET GLOBAL max_allowed_packet = 262144")
			}
			log := &faultLog{}
			load := startLoad(func() (batch.Result, error) {
				return batch.Insert(ctx, pdb, batch.Values(table, []string{"id", "v"}, rows), batch.MaxBytes(1<<30),
					batch.Workers(1), batch.WithLogger(log.logger()))
			})
			// Wait for both copies to wait for locks: the first on the gap,
			// the second on the first's rows. (INNODB_TRX is refreshed only
			// when last read over 100 ms ago.)
			if waiting := faultLockWaits(t, db, 2, load); waiting < 2 {
				t.Fatalf("%d transactions wait for locks, want 2 (the lost copy and the resent one); cuts %v; log:%s", waiting, proxy.Cuts(), log.summary())
			}
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
			var wrong []int64
			for _, id := range faultRangeIDs(ids, res.NotSent) {
				if count[id] != 0 {
					wrong = append(wrong, id)
				}
			}
			if len(wrong) > 0 {
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
			log := &faultLog{}
			load := startLoad(func() (batch.Result, error) {
				return batch.Insert(lctx, pdb, batch.Values(table, []string{"id", "v"}, rows), batch.WithLogger(log.logger()))
			})
			if faultLockWaits(t, db, 1, load) < 1 {
				t.Fatalf("no statement waits for the held lock")
			}
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
			case tc.fail && !(errors.As(err, &ce) && ce.FirstRow <= dup && dup < ce.FirstRow+ce.Rows && errors.As(err, &me) && me.Number == 1062):
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
			if waiting := faultCountLockWaits(t, db); waiting != 0 {
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
	proxy, err := faultproxy.Start(faultproxy.Options{Target: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	pdb, _ := openDSN(t, "root@tcp("+proxy.Addr()+")/test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &faultLog{}
	load := startLoad(func() (batch.Result, error) {
		return batch.Insert(ctx, pdb, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)), batch.WithLogger(log.logger()))
	})
	if faultLockWaits(t, db, 1, load) < 1 {
		t.Fatalf("no statement waits for the held lock")
	}
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
