package batch_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/faultproxy"
	"github.com/google/go-cmp/cmp"
)

// Tests of transactions (CommitEvery) and the ledger (Ledger): every case
// runs against a real server, most with a real fault.

const (
	txUnkeyed   = "id BIGINT NOT NULL, v VARCHAR(255) NOT NULL, KEY (id)"
	ledgerTable = "batch_ledger"
	childEnv    = "BATCH_TEST_LEDGER_CHILD"
)

// ledgerLoad writes ids into table with the ledger of loadID.
func ledgerLoad(ctx context.Context, db batch.DB, table, loadID string, ids []int64, opts ...batch.Option) (batch.Result, error) {
	opts = append([]batch.Option{batch.Ledger(ledgerTable, loadID)}, opts...)
	return batch.Insert(ctx, db, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)), opts...)
}

// ledgerWritten is what the ledger says load loadID committed.
func ledgerWritten(t testing.TB, db sqlHandle, loadID string) (rows, written int) {
	t.Helper()
	readRow(t, db, "SELECT COUNT(*), COALESCE(SUM(written), 0) FROM "+ledgerTable+" WHERE load_id = '"+loadID+"'", &rows, &written)
	return rows, written
}

// TestLedgerKillLoop: connections killed every 50 ms during a 200k-row
// load into a table without a unique key. Without a ledger such a load
// reports unknown outcomes (TestFaultKillNoUniqueKey); with one, every lost
// COMMIT is settled by its ledger row, so the load ends with no error and
// every row exactly once.
func TestLedgerKillLoop(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	table := newTable(t, db, txUnkeyed)
	log := &logRecorder{}
	stop := faultKiller(t, srv.DSN(""), 50*time.Millisecond)
	res, err := ledgerLoad(context.Background(), db, table, "kill-loop", ids, batch.Logger(log.logger()))
	kills := stop()
	t.Logf("%d kills, %d retries, %v; log:%s", kills, res.Retries, res.Elapsed.Round(time.Millisecond), log.summary())
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if kills == 0 || res.Retries == 0 {
		t.Errorf("kills = %d, Retries = %d: want both > 0 (the fault did not happen)", kills, res.Retries)
	}
	if res.Rows != n || len(res.Unknown) != 0 {
		t.Errorf("Rows = %d, Unknown = %v: want %d, none", res.Rows, res.Unknown, n)
	}
	faultCheckRanges(t, res, n)
	faultExact(t, db, table, ids, 24)
	if _, written := ledgerWritten(t, db, "kill-loop"); written != n {
		t.Errorf("the ledger says %d rows written, want %d", written, n)
	}
}

// TestLedgerResumeAfterSIGKILL: a child process loading 200k rows with the
// ledger is SIGKILLed mid-load; the table then holds exactly the rows the
// ledger says committed (the ledger row commits if and only if its rows
// do), and the same load run again with the same load id writes the rest:
// every row exactly once, Resumed = what the first run committed.
func TestLedgerResumeAfterSIGKILL(t *testing.T) {
	srv, db := faultServer(t)
	const n = 200_000
	ids := faultIDs(0, n)
	table := newTable(t, db, txUnkeyed)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{srv.DSN(""), table, "sigkill", strconv.Itoa(n)}, "|"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	waitFor(t, 2*time.Minute, "the child to commit 2 transactions", func() bool {
		select {
		case <-exited:
			t.Fatal("the child exited before it was killed")
		default:
		}
		var rows int // the child creates the ledger table
		db.QueryRow("SELECT COUNT(*) FROM " + ledgerTable + " WHERE load_id = 'sigkill'").Scan(&rows)
		return rows >= 2
	}, every(5*time.Millisecond))
	cmd.Process.Kill() // SIGKILL
	<-exited
	waitFor(t, 30*time.Second, "the child's transactions to end", func() bool {
		return queryInt(t, db, "SELECT COUNT(*) FROM information_schema.INNODB_TRX") == 0
	}, every(200*time.Millisecond))
	time.Sleep(200 * time.Millisecond) // INNODB_TRX is a cache up to 100 ms old
	_, committed := ledgerWritten(t, db, "sigkill")
	if got := countRows(t, db, table); got != committed || committed >= n {
		t.Fatalf("after SIGKILL the table holds %d rows, the ledger %d committed of %d: want equal, below %d", got, committed, n, n)
	}
	res, err := ledgerLoad(context.Background(), db, table, "sigkill", ids)
	t.Logf("first run committed %d rows; rerun: %+v", committed, res)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if res.Resumed != int64(committed) || res.Rows != n {
		t.Errorf("rerun: Resumed = %d, Rows = %d; want %d, %d", res.Resumed, res.Rows, committed, n)
	}
	faultCheckRanges(t, res, n)
	faultExact(t, db, table, ids, 24)
}

// ledgerChild is the child process of TestLedgerResumeAfterSIGKILL: it
// loads the rows its environment names, slowly enough to be killed
// mid-load, and exits. It reports whether it ran.
func ledgerChild() bool {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return false
	}
	parts := strings.Split(spec, "|")
	n, _ := strconv.Atoi(parts[3])
	db, err := openPool(parts[0])
	if err == nil {
		_, err = ledgerLoad(context.Background(), db, parts[1], parts[2], faultIDs(0, int64(n)), batch.Workers(1))
	}
	fmt.Fprintln(os.Stderr, "ledger child:", err)
	return true
}

// TestGroupReplayOnDeadlock: four loads upsert the same keys in different
// orders, in transactions of 8 chunks: InnoDB picks victims among them,
// each victim's group is rolled back whole and replayed, and every load
// completes with each key written.
func TestGroupReplayOnDeadlock(t *testing.T) {
	_, db := faultServer(t)
	const n = 20_000
	table := newTable(t, db, faultKeyed)
	ids := faultIDs(0, n)
	log := &logRecorder{}
	before := faultStatus(t, db, "Innodb_deadlocks")
	loads := make([]*bgLoad, 4)
	for i := range loads {
		order := faultShuffled(ids, uint64(i))
		loads[i] = startLoad(func() (batch.Result, error) {
			return batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, faultInput(order, 24)),
				batch.OnDuplicateKeyUpdateExcept("id"), batch.CommitEvery(8), batch.MaxRows(250), batch.Logger(log.logger()))
		})
	}
	for i, l := range loads {
		if _, err := l.wait(); err != nil {
			t.Errorf("load %d: %v", i, err)
		}
		faultCheckRanges(t, l.res, n)
	}
	deadlocks := faultStatus(t, db, "Innodb_deadlocks") - before
	replays := log.count("batch: transaction rolled back; replaying it", "errno", "1213")
	t.Logf("%d deadlocks, %d group replays after 1213; log:%s", deadlocks, replays, log.summary())
	if deadlocks == 0 || replays == 0 {
		t.Errorf("%d deadlocks, %d group replays after 1213: want both > 0", deadlocks, replays)
	}
	faultExact(t, db, table, ids, 24)
}

// TestLedgerRefusals: what the ledger refuses, before anything is sent.
func TestLedgerRefusals(t *testing.T) {
	db, _ := sharedDB(t, "")
	ctx := context.Background()
	ids := faultIDs(0, 100)
	t.Run("MyISAMTarget", func(t *testing.T) {
		table := newTable(t, db, faultKeyed)
		mustExec(t, db, "ALTER TABLE `"+table+"` ENGINE=MyISAM")
		_, err := ledgerLoad(ctx, db, table, "myisam", ids)
		if !errors.Is(err, batch.ErrNotTransactional) {
			t.Errorf("err = %v, want ErrNotTransactional", err)
		}
		if got := countRows(t, db, table); got != 0 {
			t.Errorf("%d rows written, want 0", got)
		}
	})
	t.Run("OtherInput", func(t *testing.T) {
		table := newTable(t, db, faultKeyed)
		id := "other-input-" + table
		if _, err := ledgerLoad(ctx, db, table, id, ids); err != nil {
			t.Fatal(err)
		}
		_, err := ledgerLoad(ctx, db, table, id, ids[:50])
		if !errors.Is(err, batch.ErrLedgerMismatch) {
			t.Errorf("rerun with 50 of 100 rows: err = %v, want ErrLedgerMismatch", err)
		}
		other := newTable(t, db, faultKeyed)
		_, err = ledgerLoad(ctx, db, other, id, ids)
		if !errors.Is(err, batch.ErrLedgerMismatch) {
			t.Errorf("rerun into another table: err = %v, want ErrLedgerMismatch", err)
		}
		if got := countRows(t, db, other); got != 0 {
			t.Errorf("%d rows written into the other table, want 0", got)
		}
	})
	t.Run("Options", func(t *testing.T) {
		for name, opt := range map[string]batch.Option{
			"CommitEvery0": batch.CommitEvery(0), "EmptyLoadID": batch.Ledger(ledgerTable, ""),
			"LongLoadID": batch.Ledger(ledgerTable, strings.Repeat("x", 192)), "EmptyTable": batch.Ledger("", "x"),
		} {
			_, err := batch.Insert(ctx, db, batch.Values("t", []string{"id"}, [][]any{{1}}), opt)
			if !errors.Is(err, batch.ErrOptions) && !errors.Is(err, batch.ErrEmptyName) {
				t.Errorf("%s: err = %v, want ErrOptions or ErrEmptyName", name, err)
			}
		}
	})
}

// TestLedgerResumeAndDelete: a finished load run again writes nothing and
// resumes everything, rejects included; after DeleteLedger it starts over.
func TestLedgerResumeAndDelete(t *testing.T) {
	db, _ := sharedDB(t, "")
	ctx := context.Background()
	table := newTable(t, db, "id BIGINT NOT NULL, v VARCHAR(8) NOT NULL")
	rows := [][]any{{1, "a"}, {2, "too long value"}, {3, "c"}}
	load := func() (batch.Result, error) {
		return batch.Insert(ctx, db, batch.Values(table, []string{"id", "v"}, rows), batch.Ledger(ledgerTable, table), batch.MaxRejects(-1))
	}
	first, err := load()
	if err != nil || first.Rows != 2 || first.Rejects != 1 {
		t.Fatalf("first run: Rows %d, Rejects %d, err %v; want 2, 1, nil", first.Rows, first.Rejects, err)
	}
	again, err := load()
	if err != nil {
		t.Fatal(err)
	}
	want := batch.Result{Rows: 2, Resumed: 2, Rejects: 1, Written: []batch.Range{{0, 1}, {2, 3}}}
	got := batch.Result{Rows: again.Rows, Resumed: again.Resumed, Rejects: again.Rejects, Written: again.Written}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rerun (-want +got):\n%s", diff)
	}
	if len(again.Rejected) != 1 || again.Rejected[0].Row != 1 || serverErrno(again.Rejected[0].Err) != 1406 {
		t.Errorf("rerun: Rejected = %v, want row 1 with error 1406", again.Rejected)
	}
	if got := countRows(t, db, table); got != 2 {
		t.Errorf("table holds %d rows after the rerun, want 2", got)
	}
	if err := batch.DeleteLedger(ctx, db, ledgerTable, table); err != nil {
		t.Fatal(err)
	}
	if third, err := load(); err != nil || third.Resumed != 0 || third.Rows != 2 {
		t.Errorf("after DeleteLedger: Resumed %d, Rows %d, err %v; want 0, 2, nil", third.Resumed, third.Rows, err)
	}
	if got := countRows(t, db, table); got != 4 {
		t.Errorf("table holds %d rows after starting over, want 4", got)
	}
}

// openPool opens a pool on dsn, outside any test (ledgerChild).
func openPool(dsn string) (*sql.DB, error) { return sql.Open("mysql", dsn) }

// faultShuffled is ids in an order of its own for each seed: 0 as given, 1
// reversed, others shuffled.
func faultShuffled(ids []int64, seed uint64) []int64 {
	out := slices.Clone(ids)
	switch seed {
	case 0:
	case 1:
		slices.Reverse(out)
	default:
		r := rand.New(rand.NewPCG(seed, seed*7))
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

// TestLostCommitReply: the server commits a group but the client never
// gets the reply (a proxy forwards the second COMMIT, swallows its reply
// and resets the connection). With a ledger, or a NOT NULL unique key, one
// look-up on a fresh connection settles the group exactly; REPLACE replays
// it (a second copy changes nothing); an unkeyed table without a ledger
// reports the group's rows as unknown, and they are in the table once.
func TestLostCommitReply(t *testing.T) {
	srv, db := faultServer(t)
	const n = 20_000
	ids := faultIDs(0, n)
	cases := []struct {
		name, def string
		write     func(context.Context, batch.DB, batch.Rows, ...batch.Option) (batch.Result, error)
		ledger    bool
		settled   string // how the log says the group was settled; "" for none
		unknown   bool
	}{
		{"Ledger/Unkeyed", txUnkeyed, batch.Insert, true, "ledger", false},
		{"Ledger/Keyed", faultKeyed, batch.Insert, true, "ledger", false},
		{"Keys/KeyedInsert", faultKeyed, batch.Insert, false, "keys", false},
		{"Replay/Replace", faultKeyed, batch.Replace, false, "", false},
		{"Unknown/Unkeyed", txUnkeyed, batch.Insert, false, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t, db, tc.def)
			proxy, dsn := faultProxy(t, srv, faultproxy.Options{MySQL: true})
			if err := proxy.Inject(faultproxy.Rule{Match: faultproxy.SQLContains(faultproxy.ComQuery, "COMMIT"), Nth: 2,
				Forward: true, Close: true}); err != nil {
				t.Fatal(err)
			}
			pdb, _ := openDSN(t, dsn)
			log := &logRecorder{}
			opts := []batch.Option{batch.CommitEvery(4), batch.MaxRows(1000), batch.Workers(1), batch.Logger(log.logger())}
			if tc.ledger {
				opts = append(opts, batch.Ledger(ledgerTable, table))
			}
			res, err := tc.write(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)), opts...)
			t.Logf("injections %v; err = %v; Unknown %v; log:%s", proxy.Injections(), err, res.Unknown, log.summary())
			if got := len(proxy.Injections()); got != 1 {
				t.Fatalf("%d COMMIT replies lost, want 1 (the fault did not happen)", got)
			}
			faultCheckRanges(t, res, n)
			if tc.settled != "" && log.count("batch: lost COMMIT settled", "committed", "true", "by", tc.settled) != 1 {
				t.Errorf("no lost COMMIT settled by %s found committed", tc.settled)
			}
			if !tc.unknown {
				if err != nil || res.Rows != n {
					t.Fatalf("err = %v, Rows = %d; want nil, %d", err, res.Rows, n)
				}
				faultExact(t, db, table, ids, 24)
				return
			}
			var uo *batch.UnknownOutcomeError
			want := []batch.Range{{4000, 8000}}
			if !errors.As(err, &uo) || !cmp.Equal(res.Unknown, want) {
				t.Fatalf("err = %v, Unknown = %v: want an UnknownOutcomeError for %v", err, res.Unknown, want)
			}
			faultExact(t, db, table, faultRangeIDs(ids, append(res.Written, want...)), 24)
		})
	}
}

// TestLedgerWriterResume: a Writer with a ledger that wrote the first half
// of an input, then a Writer of the same load given the whole input: the
// first half is passed over (Resumed), the second written, each row once.
func TestLedgerWriterResume(t *testing.T) {
	db, _ := sharedDB(t, "")
	ctx := context.Background()
	const n = 30_000
	ids := faultIDs(0, n)
	rows := faultInput(ids, 24)
	table := newTable(t, db, txUnkeyed)
	write := func(rows [][]any) (batch.Result, error) {
		return writerLoad(ctx, db, table, rows, batch.Ledger(ledgerTable, table), batch.MaxRows(1000))
	}
	first, err := write(rows[:n/2])
	if err != nil || first.Rows != n/2 {
		t.Fatalf("first half: Rows %d, err %v", first.Rows, err)
	}
	second, err := write(rows)
	if err != nil {
		t.Fatal(err)
	}
	if second.Resumed != n/2 || second.Rows != n {
		t.Errorf("whole input: Resumed %d, Rows %d; want %d, %d", second.Resumed, second.Rows, n/2, n)
	}
	faultCheckRanges(t, second, n)
	faultExact(t, db, table, ids, 24)
}

// TestWriterReject: rows the caller rejects (Writer.Reject) keep their
// place in the numbering, count against MaxRejects and, with a ledger, are
// met again by a resumed load while the written rows are passed over.
func TestWriterReject(t *testing.T) {
	db, _ := sharedDB(t, "")
	ctx := context.Background()
	table := newTable(t, db, faultKeyed)
	bad := errors.New("unparsable record")
	load := func(max int) (batch.Result, error) {
		w, err := batch.NewWriter(db, table, []string{"id", "v"}, batch.Ledger(ledgerTable, table), batch.MaxRejects(max))
		if err != nil {
			return batch.Result{}, err
		}
		for i := range 10 {
			if i == 3 || i == 7 {
				err = w.Reject(ctx, bad)
			} else {
				err = w.Write(ctx, int64(i), faultValue(int64(i), 24))
			}
			if err != nil {
				break
			}
		}
		return w.Close(ctx)
	}
	res, err := load(1)
	if !errors.Is(err, batch.ErrTooManyRejects) {
		t.Fatalf("budget 1, 2 rejects: err = %v, want ErrTooManyRejects", err)
	}
	rejCover(t, res, res.Rejected, 8)
	mustExec(t, db, "DELETE FROM `"+table+"`")
	if err := batch.DeleteLedger(ctx, db, ledgerTable, table); err != nil {
		t.Fatal(err)
	}
	for run, resumed := range []int64{0, 8} {
		res, err := load(-1)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		got := struct {
			Written []batch.Range
			Rows    int64
			Resumed int64
			Rejects int
			Rows3   int
		}{res.Written, res.Rows, res.Resumed, res.Rejects, len(res.Rejected)}
		want := got
		want.Written, want.Rows, want.Resumed, want.Rejects, want.Rows3 = []batch.Range{{0, 3}, {4, 7}, {8, 10}}, 8, resumed, 2, 2
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d (-want +got):\n%s", run, diff)
		}
		for _, r := range res.Rejected {
			if (r.Row != 3 && r.Row != 7) || !errors.Is(r.Err, bad) {
				t.Errorf("run %d: rejected %+v, want rows 3 and 7 with the caller's error", run, r)
			}
		}
		rejCover(t, res, res.Rejected, 10)
		faultExact(t, db, table, []int64{0, 1, 2, 4, 5, 6, 8, 9}, 24)
	}
}

// TestGroupsSpread counts the COMMITs and INSERT executions a load sends
// (through the MySQL-aware proxy): groups are as long as CommitEvery says,
// and shorter only so that each worker gets one. Wide rows, whose chunks
// the packet budget cuts at a few rows, once got groups of 3 chunks (they
// were spread as if MaxRows rows made a chunk).
func TestGroupsSpread(t *testing.T) {
	srv, db := faultServer(t)
	cases := []struct {
		name       string
		n, size    int // rows, blob bytes per row
		maxCommits func(execs int) int
	}{
		// ~30 rows per 248 KB chunk, ~67 chunks: groups of 32.
		{"Wide", 2000, 8 << 10, func(execs int) int { return (execs+31)/32 + 1 }},
		// 20 chunks of 1000 rows on 2 workers: two groups of 10.
		{"SmallInput", 20_000, 8, func(int) int { return 2 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t, db, "id BIGINT NOT NULL PRIMARY KEY, b MEDIUMBLOB NOT NULL")
			proxy, dsn := faultProxy(t, srv, faultproxy.Options{MySQL: true})
			var commits, execs atomic.Int64
			count := func(c faultproxy.Command) bool {
				switch {
				case c.Cmd == faultproxy.ComQuery && c.SQL == "COMMIT":
					commits.Add(1)
				case c.Cmd == faultproxy.ComStmtExecute && strings.HasPrefix(c.SQL, "INSERT"):
					execs.Add(1)
				}
				return false
			}
			if err := proxy.Inject(faultproxy.Rule{Match: count, Close: true}); err != nil {
				t.Fatal(err)
			}
			pdb, _ := openDSN(t, dsn)
			rows := make([][]any, tc.n)
			for i := range rows {
				rows[i] = []any{int64(i), bytes.Repeat([]byte{byte('a' + i%26)}, tc.size)}
			}
			res, err := batch.Insert(context.Background(), pdb, batch.Values(table, []string{"id", "b"}, rows), batch.Workers(2))
			if err != nil {
				t.Fatal(err)
			}
			c, x := int(commits.Load()), int(execs.Load())
			t.Logf("%d rows, %d statements, %d COMMITs", res.Rows, x, c)
			if x != res.Chunks || c < 2 || c > tc.maxCommits(x) {
				t.Errorf("%d statements (Result.Chunks %d), %d COMMITs: want one group per worker at least, %d COMMITs at most",
					x, res.Chunks, c, tc.maxCommits(x))
			}
			var got, length int64
			readRow(t, db, "SELECT COUNT(*), COALESCE(SUM(LENGTH(b)), 0) FROM `"+table+"`", &got, &length)
			if got != int64(tc.n) || length != int64(tc.n*tc.size) {
				t.Errorf("table holds %d rows, %d blob bytes; want %d, %d", got, length, tc.n, tc.n*tc.size)
			}
		})
	}
}

// cutEverySecond makes the proxy lose, by resetting the connection before
// the server gets it, the second command that match accepts on a
// connection since the last one that restart accepts (nil: since the
// connection opened), up to cuts times in all. Commands are counted as
// they run; a prepare is not counted.
func cutEverySecond(t *testing.T, proxy *faultproxy.Proxy, match, restart func(faultproxy.Command) bool, cuts int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[int]int{} // by connection
	counts := func(c faultproxy.Command) bool { return c.Cmd != faultproxy.ComStmtPrepare && match(c) }
	count := func(c faultproxy.Command) bool {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case restart != nil && restart(c):
			seen[c.Conn] = 0
		case counts(c):
			seen[c.Conn]++
		}
		return false // it only counts
	}
	second := func(c faultproxy.Command) bool {
		mu.Lock()
		defer mu.Unlock()
		return counts(c) && seen[c.Conn] == 2
	}
	rules := []faultproxy.Rule{{Match: count, Close: true}}
	for range cuts {
		rules = append(rules, faultproxy.Rule{Match: second, Close: true}) // a lost request
	}
	for _, r := range rules {
		if err := proxy.Inject(r); err != nil {
			t.Fatal(err)
		}
	}
}

// budgetInsert inserts ids into table through dsn on one worker, in chunks
// of 100 rows and groups of commitEvery chunks, with a retry budget of 2 s
// and waits of wait/2 to wait; it returns what the load logged too.
func budgetInsert(t *testing.T, dsn, table string, ids []int64, commitEvery int, wait time.Duration) (batch.Result, *logRecorder, error) {
	pdb, _ := openDSN(t, dsn)
	log := &logRecorder{}
	res, err := batch.Insert(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, faultInput(ids, 24)),
		batch.MaxRows(100), batch.CommitEvery(commitEvery), batch.Workers(1), batch.Logger(log.logger()),
		batch.Retry(batch.RetryPolicy{MaxElapsed: 2 * time.Second, InitialBackoff: wait, MaxBackoff: wait}))
	return res, log, err
}

// TestGroupBudgetAfterProgress fails every transaction of more than one
// chunk at its second INSERT (the proxy drops it and resets the
// connection): a group of 16 chunks is replayed in halves down to single
// chunks, 15 failures in all, each followed by a wait of 200-400 ms. The
// retry budget (2 s) covers the longest run of failures without a commit
// (16, 8, 4, 2 chunks: 3 waits), not the 14 waits of the whole group: a
// budget counted from the group's first attempt gives up.
func TestGroupBudgetAfterProgress(t *testing.T) {
	srv, db := faultServer(t)
	table := newTable(t, db, faultKeyed)
	proxy, dsn := faultProxy(t, srv, faultproxy.Options{MySQL: true})
	const failures = 15
	cutEverySecond(t, proxy, func(c faultproxy.Command) bool { return strings.HasPrefix(c.SQL, "INSERT") },
		func(c faultproxy.Command) bool { return c.SQL == "START TRANSACTION" }, failures)
	ids := faultIDs(0, 1600)
	res, log, err := budgetInsert(t, dsn, table, ids, 16, 400*time.Millisecond)
	t.Logf("%d injections, %d retries, %v; log:%s", len(proxy.Injections()), res.Retries, res.Elapsed.Round(time.Millisecond), log.summary())
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if got := len(proxy.Injections()); got != failures || res.Retries != failures {
		t.Errorf("%d transactions failed, Retries = %d: want %d of each", got, res.Retries, failures)
	}
	faultCheckRanges(t, res, len(ids))
	faultExact(t, db, table, ids, 24)
}

// TestLostCommitLookupResumes loses the reply to a group's COMMIT (the
// server committed it), then loses the connection of every second key
// look-up on a connection: each settling attempt counts one more of the
// group's four chunks. What was counted is kept across attempts (the old
// connection is gone, so the table no longer changes for these rows), so
// the group settles as committed after three lost look-ups; counting from
// the first chunk again on every connection would never get past the
// second, and would give up when the budget ran out.
func TestLostCommitLookupResumes(t *testing.T) {
	srv, db := faultServer(t)
	table := newTable(t, db, faultKeyed)
	proxy, dsn := faultProxy(t, srv, faultproxy.Options{MySQL: true})
	if err := proxy.Inject(faultproxy.Rule{Match: faultproxy.SQLContains(faultproxy.ComQuery, "COMMIT"), Forward: true, Close: true}); err != nil {
		t.Fatal(err) // the reply lost, the COMMIT run
	}
	cutEverySecond(t, proxy, func(c faultproxy.Command) bool {
		return strings.HasPrefix(c.SQL, "SELECT COUNT(*) FROM `"+table+"`")
	}, nil, 20)
	ids := faultIDs(0, 400)
	res, log, err := budgetInsert(t, dsn, table, ids, 4, 200*time.Millisecond)
	t.Logf("%d injections; log:%s", len(proxy.Injections()), log.summary())
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if got := len(proxy.Injections()); got != 4 {
		t.Errorf("%d injections, want 4: the COMMIT reply and three look-ups lost", got)
	}
	if log.count("batch: lost COMMIT settled", "committed", "true", "by", "keys") != 1 {
		t.Error("no lost COMMIT settled by keys found committed")
	}
	faultCheckRanges(t, res, len(ids))
	faultExact(t, db, table, ids, 24)
}
