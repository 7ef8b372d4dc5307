package batch_test

// Engine tests: the errors of Galera (MariaDB Galera Cluster, Percona
// XtraDB Cluster), TiDB, Vitess and Group Replication, injected by a
// MySQL-mode fault proxy (internal/faultproxy) in front of the shared
// MariaDB server, on the Nth INSERT's COM_STMT_EXECUTE or the Nth COMMIT.
// Each case checks the action the package takes (resent, cut smaller,
// settled, reported), the exact Result and the table read back. Only the
// errors are injected: the engines themselves do not run here
// (docs/engines.md says what is tested how).

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/faultproxy"
	"github.com/batchsql/batch/internal/testserver"
)

// The load of every case: engN rows (id, value of engSize bytes) in chunks
// of engChunk rows, so 16 chunks; grouped, engGroup chunks a transaction,
// so two groups. One worker keeps the order fixed.
const (
	engN     = 4000
	engChunk = 250
	engSize  = 24
	engGroup = 8
)

// engAction is what the package must do about an injected error.
type engAction int

const (
	engResend      engAction = iota // rolled back or not run: sent again as it was
	engSplit                        // too large: cut smaller, never sent again as it was
	engSettle                       // outcome unknown: looked up, replayed, or reported unknown
	engReport                       // refused for good: a ChunkError, nothing resent
	engRowTooLarge                  // one row refused for its size: a RowTooLargeError
)

// engineCase is one injected error and what must follow.
type engineCase struct {
	name    string
	err     faultproxy.ErrPacket
	commit  bool // injected on a COMMIT (transactions only), else on an INSERT
	nth     int  // which one (from 1); 0: the 11th INSERT (rows [2500, 2750)) or the 2nd COMMIT
	forward bool // the server runs the command; the client gets err instead of its reply
	close   bool // the connection is closed after err
	want    engAction
	class   string // the class the log names for the retry
	errno   string // the errno the log names, when not err.Number
	only    string // "PerChunk" or "Grouped": run in that mode only
	write   string // "" (a plain INSERT into a keyed table), "Replace", "Unkeyed"
	// row: refused for a row's values (a duplicate key): the chunks before
	// it in its transaction are still written.
	row bool
}

// engineMode is CommitEvery(1), a chunk a statement in autocommit, or the
// default, transactions of chunks.
type engineMode struct {
	name  string
	group bool
	opts  []batch.Option
}

var engineModes = []engineMode{
	{"PerChunk", false, []batch.Option{batch.CommitEvery(1)}},
	{"Grouped", true, []batch.Option{batch.CommitEvery(engGroup)}},
}

// runEngineCases runs each case in each mode it applies to.
func runEngineCases(t *testing.T, cases []engineCase) {
	for _, c := range cases {
		for _, m := range engineModes {
			if c.only != "" && c.only != m.name || c.commit && !m.group {
				continue
			}
			t.Run(c.name+"/"+m.name, func(t *testing.T) {
				r := runEngineCase(t, c, m)
				t.Logf("err = %v; Result: Written %v Unknown %v NotSent %v, %d chunks, %d retries; commits %d; log:%s",
					r.err, r.res.Written, r.res.Unknown, r.res.NotSent, r.res.Chunks, r.res.Retries, r.wire.commitCount(), r.log.summary())
				if got := len(r.proxy.Injections()); got != 1 {
					t.Fatalf("the error was injected %d times, want once", got)
				}
				checkEngineCase(t, c, m, r)
			})
		}
	}
}

// engineWire watches what goes through the proxy: the rows of every
// INSERT (or REPLACE) execute on the table, and the COMMITs.
type engineWire struct {
	table   string
	mu      sync.Mutex
	rows    []int // rows per statement executed, failed ones included
	commits int
}

// isWrite reports whether c executes the load's statement.
func (w *engineWire) isWrite(c faultproxy.Command) bool {
	return c.Cmd == faultproxy.ComStmtExecute &&
		(strings.HasPrefix(c.SQL, "INSERT INTO `"+w.table+"`") || strings.HasPrefix(c.SQL, "REPLACE INTO `"+w.table+"`"))
}

func isCommit(c faultproxy.Command) bool { return c.Cmd == faultproxy.ComQuery && c.SQL == "COMMIT" }

// observe is the Match of a rule that never fires: it records c.
func (w *engineWire) observe(c faultproxy.Command) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.isWrite(c):
		w.rows = append(w.rows, strings.Count(c.SQL, "(?"))
	case isCommit(c):
		w.commits++
	}
	return false
}

func (w *engineWire) statements() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.rows...)
}

func (w *engineWire) commitCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.commits
}

// engineRun is what a case's load did.
type engineRun struct {
	res   batch.Result
	err   error
	log   *logRecorder
	wire  *engineWire
	proxy *faultproxy.Proxy
	db    *sql.DB // the shared server, directly
	table string
	n     int
}

// engineProxy starts a MySQL-mode proxy in front of the shared server and
// returns it and a pool through it.
func engineProxy(t *testing.T) (*faultproxy.Proxy, *sql.DB) {
	t.Helper()
	cfg, err := mysql.ParseDSN(testserver.Shared(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("the test server is on %s, not tcp", cfg.Net)
	}
	proxy, err := faultproxy.Start(faultproxy.Options{Target: cfg.Addr, MySQL: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	pcfg := cfg.Clone()
	pcfg.Addr = proxy.Addr()
	pdb, _ := openDSN(t, pcfg.FormatDSN())
	return proxy, pdb
}

// runEngineCase loads the case's rows through a proxy that injects its
// error.
func runEngineCase(t *testing.T, c engineCase, m engineMode) engineRun {
	db, _ := sharedDB(t, "")
	def, write := faultKeyed, batch.Insert
	switch c.write {
	case "Replace":
		write = batch.Replace
	case "Unkeyed":
		def = txUnkeyed
	}
	r := engineRun{db: db, table: newTable(t, db, def), log: &logRecorder{}, n: engN}
	chunk := engChunk
	if c.want == engRowTooLarge {
		r.n, chunk = 10, 1
	}
	proxy, pdb := engineProxy(t)
	r.proxy, r.wire = proxy, &engineWire{table: r.table}
	match, nth := r.wire.isWrite, c.nth
	if c.commit {
		match = isCommit
	}
	if nth == 0 {
		nth = 11
		if c.commit {
			nth = 2
		}
	}
	for _, rule := range []faultproxy.Rule{
		{Match: r.wire.observe, Close: true}, // never fires
		{Match: match, Nth: nth, Forward: c.forward, Err: &c.err, Close: c.close},
	} {
		if err := proxy.Inject(rule); err != nil {
			t.Fatal(err)
		}
	}
	opts := append([]batch.Option{batch.Workers(1), batch.MaxRows(chunk), batch.Logger(r.log.logger())}, m.opts...)
	rows := faultInput(faultIDs(0, int64(r.n)), engSize)
	r.res, r.err = write(context.Background(), pdb, batch.Values(r.table, []string{"id", "v"}, rows), opts...)
	return r
}

// engineExpect is the Result and table a case must end with.
type engineExpect struct {
	Written, Unknown, NotSent []batch.Range
	table                     []batch.Range // the input rows in the table, each once
}

// failedAt is the rows of the statement the case injects its error on:
// the chunk, or with commit the group, of the Nth INSERT or COMMIT.
func (c engineCase) failedAt(m engineMode, n, chunk int) (stmt, group batch.Range) {
	nth := c.nth
	if nth == 0 {
		nth = 11
		if c.commit {
			nth = 2
		}
	}
	span := chunk * engGroup
	if !m.group {
		span = chunk
	}
	if c.commit {
		g := batch.Range{First: (nth - 1) * span, End: min(nth*span, n)}
		return g, g
	}
	stmt = batch.Range{First: (nth - 1) * chunk, End: nth * chunk}
	group = batch.Range{First: stmt.First / span * span, End: min((stmt.First/span+1)*span, n)}
	return stmt, group
}

// expect is the Result and table the case must end with in mode m.
func (c engineCase) expect(m engineMode, n, chunk int) engineExpect {
	all := []batch.Range{{First: 0, End: n}}
	stmt, group := c.failedAt(m, n, chunk)
	switch {
	case c.want == engReport || c.want == engRowTooLarge:
		// Not written: the statement, or its whole transaction, and
		// everything after it (one worker: the load stops there).
		w := batch.Range{First: 0, End: group.First}
		if c.row {
			w.End = stmt.First
		}
		return engineExpect{Written: nonEmpty(w), NotSent: []batch.Range{{First: w.End, End: n}}, table: nonEmpty(w)}
	case c.want == engSettle && c.write == "Unkeyed" && (c.commit || !m.group):
		// Nothing can tell whether it was written: unknown. The server did
		// run it (forwarded), so its rows are in the table.
		w := batch.Range{First: 0, End: group.First}
		ran := batch.Range{First: 0, End: group.End}
		return engineExpect{Written: nonEmpty(w), Unknown: []batch.Range{stmt},
			NotSent: nonEmpty(batch.Range{First: group.End, End: n}), table: []batch.Range{ran}}
	}
	return engineExpect{Written: all, table: all}
}

func nonEmpty(r batch.Range) []batch.Range {
	if r.Len() == 0 {
		return nil
	}
	return []batch.Range{r}
}

// checkEngineCase checks the Result, the error, the table and the action.
func checkEngineCase(t *testing.T, c engineCase, m engineMode, r engineRun) {
	t.Helper()
	chunk := engChunk
	if c.want == engRowTooLarge {
		chunk = 1
	}
	want := c.expect(m, r.n, chunk)
	faultCheckRanges(t, r.res, r.n)
	got := engineExpect{Written: r.res.Written, Unknown: r.res.Unknown, NotSent: r.res.NotSent, table: want.table}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(engineExpect{})); diff != "" {
		t.Errorf("Result ranges (-want +got):\n%s", diff)
	}
	var ids []int64
	for _, rg := range want.table {
		ids = append(ids, faultIDs(int64(rg.First), int64(rg.Len()))...)
	}
	if diff := cmp.Diff(faultWantRows(ids, engSize), faultRows(t, r.db, r.table), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	checkEngineError(t, c, m, r)
	checkEngineAction(t, c, m, r)
}

// checkEngineError checks the error the load returned.
func checkEngineError(t *testing.T, c engineCase, m engineMode, r engineRun) {
	t.Helper()
	stmt, _ := c.failedAt(m, r.n, engChunk)
	var ce *batch.ChunkError
	var uo *batch.UnknownOutcomeError
	var tl *batch.RowTooLargeError
	switch {
	case c.want == engReport:
		if !errors.As(r.err, &ce) || ce.Range != stmt || errors.As(r.err, &uo) {
			t.Errorf("err = %v, want a ChunkError for rows %v", r.err, stmt)
		} else if n := serverErrno(r.err); n != c.err.Number {
			t.Errorf("the ChunkError wraps error %d, want the server's %d", n, c.err.Number)
		}
	case c.want == engRowTooLarge:
		if !errors.As(r.err, &tl) || tl.Row != c.nth-1 {
			t.Errorf("err = %v, want a RowTooLargeError for row %d", r.err, c.nth-1)
		}
	case c.want == engSettle && c.write == "Unkeyed" && (c.commit || !m.group):
		if !errors.As(r.err, &uo) || uo.Range != stmt {
			t.Errorf("err = %v, want an UnknownOutcomeError for rows %v", r.err, stmt)
		}
	case r.err != nil:
		t.Errorf("err = %v, want nil", r.err)
	}
}

// Log messages of the retries (retry.go, group.go, settle.go).
const (
	logResend  = "batch: resending chunk"
	logReplay  = "batch: transaction rolled back; replaying it"
	logFound   = "batch: chunk with unknown outcome found written"
	logSettled = "batch: lost COMMIT settled"
)

// checkEngineAction checks that the package did what the error calls for:
// the retries it counted and logged, and the statements it sent.
func checkEngineAction(t *testing.T, c engineCase, m engineMode, r engineRun) {
	t.Helper()
	retry := logResend
	if m.group {
		retry = logReplay
	}
	errno := c.errno
	if errno == "" {
		errno = strconv.Itoa(int(c.err.Number))
	}
	retries := r.log.count(logResend) + r.log.count(logReplay)
	switch c.want {
	case engReport:
		if r.res.Retries != 0 || retries != 0 {
			t.Errorf("%d retries, %d logged: want none (refused for good)", r.res.Retries, retries)
		}
	case engRowTooLarge:
		if got := len(r.wire.statements()); got != c.nth {
			t.Errorf("%d statements executed, want %d: the row must not be sent again", got, c.nth)
		}
	case engSettle:
		checkEngineSettle(t, c, m, r, errno)
	default:
		if r.res.Retries != 1 || r.log.count(retry, "class", c.class, "errno", errno) != 1 || retries != 1 {
			t.Errorf("Retries = %d, %d retries logged (%d as %q class=%s errno=%s): want one, that one",
				r.res.Retries, retries, r.log.count(retry, "class", c.class, "errno", errno), retry, c.class, errno)
		}
	}
	if c.want == engSplit {
		checkEngineSplit(t, c, m, r)
	}
}

// checkEngineSplit checks that a size refused was cut smaller: the chunk
// halved (one more statement, of half the rows), or, refused at COMMIT,
// the transaction replayed in two halves (two more COMMITs).
func checkEngineSplit(t *testing.T, c engineCase, m engineMode, r engineRun) {
	t.Helper()
	stmts, halves := r.wire.statements(), 0
	for _, k := range stmts {
		if k == engChunk/2 {
			halves++
		}
	}
	switch {
	case c.commit:
		groups := (r.n + engChunk*engGroup - 1) / (engChunk * engGroup)
		if got := r.wire.commitCount(); got != groups+2 || r.res.Chunks != r.n/engChunk || halves != 0 {
			t.Errorf("%d COMMITs, %d chunks, %d half statements: want %d COMMITs (the refused one, then its halves), %d chunks, none halved",
				got, r.res.Chunks, halves, groups+2, r.n/engChunk)
		}
	case r.res.Chunks != r.n/engChunk+1 || halves != 2:
		t.Errorf("%d chunks, %d statements of %d rows: want %d chunks, the refused one halved", r.res.Chunks, halves, engChunk/2, r.n/engChunk+1)
	}
}

// checkEngineSettle checks how an unknown outcome was settled: looked up
// (a plain INSERT into a keyed table), replayed (REPLACE; or any
// statement of an open transaction, which the closed connection rolled
// back), or reported (no key).
func checkEngineSettle(t *testing.T, c engineCase, m engineMode, r engineRun, errno string) {
	t.Helper()
	var msg string
	var kv []string
	switch {
	case m.group && !c.commit:
		msg, kv = logReplay, []string{"class", "unknown", "errno", errno}
	case c.write == "Unkeyed":
		if r.res.Retries != 0 {
			t.Errorf("Retries = %d, want 0: nothing may be resent", r.res.Retries)
		}
		return
	case c.write == "Replace" && m.group:
		msg, kv = logReplay, []string{"class", "unknown", "errno", errno}
	case c.write == "Replace":
		msg, kv = logResend, []string{"class", "unknown", "errno", errno}
	case m.group:
		msg, kv = logSettled, []string{"committed", "true", "by", "keys"}
	default:
		msg = logFound
	}
	if got := r.log.count(msg, kv...); got != 1 {
		t.Errorf("%d log records %q %v, want 1", got, msg, kv)
	}
}

// ---- the engines ----

// TestEngineGalera: MariaDB Galera Cluster and Percona XtraDB Cluster. A
// certification conflict (1213, on the statement or at COMMIT) rolls back:
// resent. A node outside the primary component (1047) runs nothing:
// resent on a fresh connection (Failover moves it to another node). A
// write set over wsrep_max_ws_rows or wsrep_max_ws_size (1180, or 1105 on
// Galera 4) is cut smaller. pxc_strict_mode's refusal is final.
func TestEngineGalera(t *testing.T) {
	wsrepDeadlock := faultproxy.ErrPacket{Number: 1213, SQLState: "40001", Message: "Deadlock: wsrep aborted transaction"}
	notPrepared := faultproxy.ErrPacket{Number: 1047, SQLState: "08S01", Message: "WSREP has not yet prepared node for application use"}
	runEngineCases(t, []engineCase{
		{name: "1213Certification", err: wsrepDeadlock, want: engResend, class: "rolled-back"},
		{name: "1213CertificationAtCommit", err: wsrepDeadlock, commit: true, want: engResend, class: "rolled-back"},
		{name: "1047NotPrepared", err: notPrepared, want: engResend, class: "not-sent"},
		{name: "1047NotPreparedAtCommit", err: notPrepared, commit: true, want: engResend, class: "not-sent"},
		{name: "1180MaxWsSize", err: faultproxy.ErrPacket{Number: 1180, Message: "Got error 5 during COMMIT"},
			want: engSplit, class: "too-large"},
		{name: "1180MaxWsSizeAtCommit", err: faultproxy.ErrPacket{Number: 1180, Message: `Got error 5 "Input/output error" during COMMIT`},
			commit: true, want: engSplit, class: "too-large"},
		{name: "1180MaxWsRows", err: faultproxy.ErrPacket{Number: 1180, Message: "wsrep_max_ws_rows exceeded"},
			want: engSplit, class: "too-large"},
		{name: "1105MaxWritesetAtCommit", err: faultproxy.ErrPacket{Number: 1105, Message: "Maximum writeset size exceeded"},
			commit: true, want: engSplit, class: "too-large"},
		{name: "1105StrictMode", err: faultproxy.ErrPacket{Number: 1105, Message: "Percona-XtraDB-Cluster prohibits use of " +
			"DML command on a table (test.t) without an explicit primary key with pxc_strict_mode = ENFORCING or MASTER"},
			want: engReport},
	})
}

// TestEngineTiDB: an entry over txn-entry-size-limit (8025) or a
// transaction over txn-total-size-limit (8004) is cut smaller, and one row
// alone over the entry limit is a RowTooLargeError; write conflicts, schema
// changes, PD and TiKV timeouts and busy stores roll back: resent; an
// "execution result undetermined" COMMIT, after which TiDB closes the
// connection, is settled like a lost reply.
func TestEngineTiDB(t *testing.T) {
	undetermined := faultproxy.ErrPacket{Number: 1105, Message: "execution result undetermined"}
	writeConflict := faultproxy.ErrPacket{Number: 9007, Message: "Write conflict, txnStartTS=449993112530944001, " +
		"conflictStartTS=449993112530944002, conflictCommitTS=449993112530944003, key={tableID=88, handle=2500}, " +
		"reason=Optimistic [try again later]"}
	cases := []engineCase{
		{name: "8025EntryTooLarge", err: faultproxy.ErrPacket{Number: 8025,
			Message: "entry too large, the max entry size is 6291456, the size of data is 6291597"}, want: engSplit, class: "too-large"},
		{name: "8025OneRow", err: faultproxy.ErrPacket{Number: 8025,
			Message: "entry too large, the max entry size is 6291456, the size of data is 6291597"}, nth: 3, want: engRowTooLarge},
		{name: "8004TxnTooLarge", err: faultproxy.ErrPacket{Number: 8004, Message: "Transaction is too large, size: 104857600"},
			want: engSplit, class: "too-large"},
		{name: "9007WriteConflict", err: writeConflict, want: engResend, class: "rolled-back"},
		{name: "9007WriteConflictAtCommit", err: writeConflict, commit: true, want: engResend, class: "rolled-back"},
		{name: "8022Retryable", err: faultproxy.ErrPacket{Number: 8022, Message: "Error: KV error safe to retry " +
			"tikv restarts txn: Txn(Mvcc(WriteConflict)) [try again later]"}, want: engResend, class: "rolled-back"},
		{name: "8028SchemaChangedAtCommit", err: faultproxy.ErrPacket{Number: 8028, Message: "Information schema is changed " +
			"during the execution of the statement(for example, table definition may be updated by other DDL ran in parallel). " +
			"If you see this error often, try increasing `tidb_max_delta_schema_count`. [try again later]"},
			commit: true, want: engResend, class: "rolled-back"},
		{name: "1105TryAgainLater", err: faultproxy.ErrPacket{Number: 1105, Message: "other error: region epoch not match [try again later]"},
			want: engResend, class: "rolled-back", only: "PerChunk"},
		{name: "1205LockWaitTimeout", err: faultproxy.ErrPacket{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"},
			want: engResend, class: "rolled-back", only: "PerChunk"},
		{name: "1213Deadlock", err: faultproxy.ErrPacket{Number: 1213, SQLState: "40001",
			Message: "Deadlock found when trying to get lock; try restarting transaction"}, want: engResend, class: "rolled-back", only: "PerChunk"},
	}
	for _, e := range []struct {
		n   uint16
		msg string
	}{{9001, "PD server timeout"}, {9002, "TiKV server timeout"}, {9003, "TiKV server is busy"},
		{9004, "Resolve lock timeout"}, {9005, "Region is unavailable"}} {
		cases = append(cases, engineCase{name: strconv.Itoa(int(e.n)) + strings.ReplaceAll(e.msg, " ", ""),
			err: faultproxy.ErrPacket{Number: e.n, Message: e.msg}, want: engResend, class: "rolled-back", only: "PerChunk"})
	}
	for _, w := range []string{"", "Replace", "Unkeyed"} {
		cases = append(cases,
			engineCase{name: "Undetermined" + w, err: undetermined, forward: true, close: true, want: engSettle, write: w, only: "PerChunk"},
			engineCase{name: "UndeterminedAtCommit" + w, err: undetermined, commit: true, forward: true, close: true, want: engSettle, write: w})
	}
	cases = append(cases, engineCase{name: "UndeterminedInTransaction", err: undetermined, forward: true, close: true,
		want: engSettle, only: "Grouped"})
	runEngineCases(t, cases)
}

// TestEngineVitess: vtgate's "primary is not serving" during a reparent
// (1105 or 1317) ran nothing: resent; a tablet's MySQL error inside
// Vitess's own number ("(errno N)") is read as that error; a deadline
// exceeded or a lost tablet connection is settled like a lost reply; a
// statement over the gRPC message limit is cut smaller.
func TestEngineVitess(t *testing.T) {
	notServing := "target: commerce.0.primary: primary is not serving, there may be a reparent operation in progress"
	tail := `: Sql: "insert into t(id, v) values (:v1, :v2)", BindVars: {v1: "type:INT64 value:\"2500\""}`
	overflow := "target: commerce.0.primary: vttablet: rpc error: code = ResourceExhausted desc = " +
		"grpc: received message larger than max (17825792 vs. 16777216)"
	runEngineCases(t, []engineCase{
		{name: "1105NotServing", err: faultproxy.ErrPacket{Number: 1105, Message: notServing}, want: engResend, class: "not-sent"},
		{name: "1317NotServing", err: faultproxy.ErrPacket{Number: 1317, SQLState: "70100", Message: notServing},
			want: engResend, class: "not-sent"},
		{name: "1105Errno1213", err: faultproxy.ErrPacket{Number: 1105, Message: "target: commerce.0.primary: vttablet: " +
			"rpc error: code = Aborted desc = Deadlock found when trying to get lock; try restarting transaction " +
			"(errno 1213) (sqlstate 40001) (CallerID: app)" + tail}, want: engResend, class: "rolled-back", errno: "1213"},
		{name: "1105Errno1062", err: faultproxy.ErrPacket{Number: 1105, Message: "target: commerce.0.primary: vttablet: " +
			"rpc error: code = AlreadyExists desc = Duplicate entry '2500' for key 't.PRIMARY' " +
			"(errno 1062) (sqlstate 23000) (CallerID: app)" + tail}, want: engReport, row: true},
		{name: "1317DeadlineExceeded", err: faultproxy.ErrPacket{Number: 1317, SQLState: "70100", Message: "target: commerce.0.primary: " +
			"vttablet: rpc error: code = DeadlineExceeded desc = context deadline exceeded"}, forward: true, want: engSettle},
		{name: "1815Errno2013", err: faultproxy.ErrPacket{Number: 1815, Message: "target: commerce.0.primary: vttablet: " +
			"rpc error: code = Internal desc = Lost connection to MySQL server during query (errno 2013) (sqlstate HY000) " +
			"(CallerID: app)" + tail}, forward: true, want: engSettle, errno: "2013"},
		{name: "1153MessageTooLarge", err: faultproxy.ErrPacket{Number: 1153, SQLState: "08S01", Message: overflow},
			want: engSplit, class: "too-large"},
		{name: "1203MessageTooLarge", err: faultproxy.ErrPacket{Number: 1203, SQLState: "42000", Message: overflow},
			want: engSplit, class: "too-large", only: "PerChunk"},
		{name: "1203PoolFull", err: faultproxy.ErrPacket{Number: 1203, SQLState: "42000", Message: "target: commerce.0.primary: " +
			"vttablet: rpc error: code = ResourceExhausted desc = transaction pool connection limit exceeded"},
			want: engResend, class: "not-sent"},
	})
}

// TestEngineGroupReplication: a transaction over
// group_replication_transaction_size_limit (3100, at the commit hook) is
// cut smaller; a certification conflict (3101) rolled back: resent; a
// secondary's super_read_only (1290) ran nothing: resent on a fresh
// connection (Failover moves it to another node).
func TestEngineGroupReplication(t *testing.T) {
	hook := faultproxy.ErrPacket{Number: 3100, Message: "Error on observer while running replication hook 'before_commit'."}
	rollback := faultproxy.ErrPacket{Number: 3101, SQLState: "40000", Message: "Plugin instructed the server to rollback the current transaction."}
	readOnly := faultproxy.ErrPacket{Number: 1290, Message: "The MySQL server is running with the --super-read-only option so it cannot execute this statement"}
	runEngineCases(t, []engineCase{
		{name: "3100SizeLimit", err: hook, want: engSplit, class: "too-large", only: "PerChunk"},
		{name: "3100SizeLimitAtCommit", err: hook, commit: true, want: engSplit, class: "too-large"},
		{name: "3101Rollback", err: rollback, want: engResend, class: "rolled-back", only: "PerChunk"},
		{name: "3101RollbackAtCommit", err: rollback, commit: true, want: engResend, class: "rolled-back"},
		{name: "1290SuperReadOnly", err: readOnly, want: engResend, class: "not-sent"},
		{name: "1290SuperReadOnlyAtCommit", err: readOnly, commit: true, want: engResend, class: "not-sent"},
	})
}

// TestVitessPacketCap: through Vitess no packet is over 15 MiB (16 MiB
// gRPC messages, less room for the bind variables), whatever
// max_allowed_packet says; other flavours keep their limits.
func TestVitessPacketCap(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		lim  batch.Limits
		want int
	}{
		{batch.Limits{Flavor: batch.Vitess, MaxAllowedPacket: 1 << 30, NetBufferLength: 16384, ClientMaxPacket: 1 << 30}, 15 * mib},
		{batch.Limits{Flavor: batch.Vitess, MaxAllowedPacket: 64 * mib, NetBufferLength: 16384, ClientMaxPacket: 64 * mib}, 15 * mib},
		{batch.Limits{Flavor: batch.Vitess, MaxAllowedPacket: 64 * mib, NetBufferLength: 16384, ClientMaxPacket: 64 * mib, Compressed: true}, 15 * mib},
		{batch.Limits{Flavor: batch.Vitess, MaxAllowedPacket: 4 * mib, NetBufferLength: 16384, ClientMaxPacket: 64 * mib}, 4*mib - 1},
		{batch.Limits{Flavor: batch.Vitess, MaxAllowedPacket: 64 * mib, NetBufferLength: 16384, ClientMaxPacket: 8 * mib}, 8 * mib},
		{batch.Limits{Flavor: batch.MariaDB, MaxAllowedPacket: 1 << 30, NetBufferLength: 16384, ClientMaxPacket: 1 << 30}, 1<<30 - 1},
		{batch.Limits{Flavor: batch.MySQL, MaxAllowedPacket: 64 * mib, NetBufferLength: 16384, ClientMaxPacket: 64 * mib}, 64*mib - 1},
		{batch.Limits{Flavor: batch.TiDB, MaxAllowedPacket: 64 * mib, NetBufferLength: 16384, ClientMaxPacket: 64 * mib}, 64*mib - 1},
	} {
		if got := tc.lim.Packet(); got != tc.want {
			t.Errorf("%v, max_allowed_packet %d, client %d, compressed %v: Packet() = %d, want %d",
				tc.lim.Flavor, tc.lim.MaxAllowedPacket, tc.lim.ClientMaxPacket, tc.lim.Compressed, got, tc.want)
		}
	}
}

// TestEngineGaleraReal: a write set over wsrep_max_ws_size on a real
// 3-node MariaDB Galera cluster (internal/testserver.Galera; skipped where
// galera-4 is not installed, failed under CI). The server's own refusal is
// read as a size refused: chunks and transactions are cut smaller until
// they pass, and every node ends with exactly the input. (Failover's
// TestGalera covers certification conflicts, 1047 on a node cut off, and
// wsrep_max_ws_rows on the same kind of cluster.)
func TestEngineGaleraReal(t *testing.T) {
	c := testserver.Galera(t, testserver.GaleraOptions{})
	db0, _ := openDSN(t, c.DSN(0, ""))
	const maxWsSize = 8192 // bytes: a few dozen of the load's rows
	mustExec(t, db0, "SET GLOBAL wsrep_max_ws_size = "+strconv.Itoa(maxWsSize))
	t.Cleanup(func() { db0.Exec("SET GLOBAL wsrep_max_ws_size = DEFAULT") })
	pdb, _ := openDSN(t, c.DSN(0, "")) // connections made after the change
	errno := galeraProbe(t, pdb, maxWsSize)
	// Per chunk, 250-row statements are refused (at their commit) and
	// halved; in transactions of 8 chunks of 50 rows, the COMMITs are
	// refused and the transactions replayed in halves.
	for _, tc := range []struct {
		mode      engineMode
		rows      int
		wantSplit func(res batch.Result) bool
	}{
		{engineModes[0], engChunk, func(res batch.Result) bool { return res.Chunks > engN/engChunk }},
		{engineModes[1], 50, func(res batch.Result) bool { return res.Chunks == engN/50 }},
	} {
		t.Run("MaxWsSize/"+tc.mode.name, func(t *testing.T) {
			table := newTable(t, pdb, faultKeyed)
			log := &logRecorder{}
			opts := append([]batch.Option{batch.MaxRows(tc.rows), batch.Logger(log.logger())}, tc.mode.opts...)
			ids := faultIDs(0, engN)
			res, err := batch.Insert(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, faultInput(ids, engSize)), opts...)
			t.Logf("%d chunks, %d retries; log:%s", res.Chunks, res.Retries, log.summary())
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			faultCheckRanges(t, res, engN)
			if log.countWith("class", "too-large", "errno", errno) == 0 || !tc.wantSplit(res) {
				t.Errorf("%d chunks, %d retries of errno %s logged as too-large: want the refused write sets cut smaller",
					res.Chunks, log.countWith("class", "too-large", "errno", errno), errno)
			}
			for i := range c.Size() {
				ndb, _ := openDSN(t, c.DSN(i, "wsrep_sync_wait=1")) // reads wait for the node to catch up
				if diff := cmp.Diff(faultWantRows(ids, engSize), faultRows(t, ndb, table)); diff != "" {
					t.Errorf("node %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
	t.Run("MaxWsSize/GroupedOneChunk", func(t *testing.T) {
		// 250-row chunks, each alone over the limit: the transactions are
		// halved down to one chunk, and that chunk is then cut smaller
		// (judgeCommit: txShrink) until its write set passes.
		table := newTable(t, pdb, faultKeyed)
		log := &logRecorder{}
		rows := faultInput(faultIDs(0, engN), engSize)
		res, err := batch.Insert(context.Background(), pdb, batch.Values(table, []string{"id", "v"}, rows),
			batch.MaxRows(engChunk), batch.Retry(batch.RetryPolicy{MaxElapsed: 5 * time.Second}), batch.Logger(log.logger()))
		t.Logf("%d chunks, %d retries; log:%s", res.Chunks, res.Retries, log.summary())
		if err != nil || res.Chunks <= engN/engChunk {
			t.Fatalf("err = %v, %d chunks: want every row written, the chunks halved", err, res.Chunks)
		}
		faultCheckRanges(t, res, engN)
	})
}

// galeraProbe sends one INSERT larger than wsrep_max_ws_size through db and
// returns the number of the server's refusal, as the log writes it.
func galeraProbe(t *testing.T, db *sql.DB, maxWsSize int) string {
	t.Helper()
	table := newTable(t, db, faultKeyed)
	values := make([]string, 500)
	for i := range values {
		values[i] = "(" + strconv.Itoa(i) + ", '" + faultValue(int64(i), engSize) + "')"
	}
	_, err := db.Exec("INSERT INTO `" + table + "` (id, v) VALUES " + strings.Join(values, ","))
	t.Logf("a 500-row INSERT with wsrep_max_ws_size = %d: %v", maxWsSize, err)
	if serverErrno(err) == 0 {
		t.Fatalf("a 500-row INSERT with wsrep_max_ws_size = %d: err = %v, want the server's refusal", maxWsSize, err)
	}
	return strconv.Itoa(int(serverErrno(err)))
}
