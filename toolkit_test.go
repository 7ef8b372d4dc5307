package batch_test

// The toolkit of the integration tests: the one way they kill server
// connections (killWhere and its forms killAll, killConn, startKiller),
// record the package's log (logRecorder), wait for something to happen
// (waitFor), and run a load in the background while they inject a fault
// (startLoad).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchsql/batch"
	"github.com/go-sql-driver/mysql"
)

// ---- killing connections ----

// sqlHandle is a pool or one of its connections.
type sqlHandle interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// killWhere runs KILL CONNECTION on every server connection whose row of
// information_schema.PROCESSLIST matches where (an SQL condition such as
// "USER = 'root'" or "ID = 42"), but the one it runs on, and returns the ids
// it killed; err joins what failed (a connection that ended between the
// look-up and its KILL is one). On a pool it takes one connection for the
// look-up and the kills. Every statement is a text query, so none counts in
// Com_stmt_execute. It does not use a *testing.T: a background goroutine may
// call it.
func killWhere(ctx context.Context, db sqlHandle, where string) (killed []int64, err error) {
	if pool, ok := db.(*sql.DB); ok {
		conn, err := pool.Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		db = conn
	}
	rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND ("+where+")")
	if err != nil {
		return nil, fmt.Errorf("processlist: %w", err)
	}
	var ids []int64
	var errs []error
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			errs = append(errs, fmt.Errorf("processlist: %w", err))
			continue
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		errs = append(errs, fmt.Errorf("processlist: %w", err))
	}
	rows.Close()
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			errs = append(errs, fmt.Errorf("KILL CONNECTION %d: %w", id, err))
			continue
		}
		killed = append(killed, id)
	}
	return killed, errors.Join(errs...)
}

// killAll kills the connections killWhere(where) finds, fails t if a
// look-up or a KILL fails, waits until the killed connections have left
// the PROCESSLIST, and returns their ids.
func killAll(t testing.TB, db sqlHandle, where string) []int64 {
	t.Helper()
	killed, err := killWhere(context.Background(), db, where)
	if err != nil {
		t.Fatalf("kill connections where %s: %v", where, err)
	}
	waitGone(t, db, killed)
	return killed
}

// waitGone waits until the connections killed have left the PROCESSLIST:
// the server has closed them, so that a pool's liveness check sees an idle
// one is dead rather than sending a query on it.
func waitGone(t testing.TB, db sqlHandle, killed []int64) {
	t.Helper()
	if len(killed) == 0 {
		return
	}
	ids := make([]string, len(killed))
	for i, id := range killed {
		ids[i] = fmt.Sprint(id)
	}
	q := "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + strings.Join(ids, ",") + ")"
	left := 0
	waitFor(t, 10*time.Second, fmt.Sprintf("the %d killed connections to leave the PROCESSLIST", len(killed)), func() bool {
		readRow(t, db, q, &left)
		return left == 0
	}, every(5*time.Millisecond), detail(func() string { return fmt.Sprintf("%d still listed", left) }))
}

// killConn kills connection id (see killAll) and fails t unless it was
// there to kill.
func killConn(t testing.TB, db sqlHandle, id int64) {
	t.Helper()
	if killed := killAll(t, db, fmt.Sprintf("ID = %d", id)); len(killed) != 1 {
		t.Fatalf("KILL CONNECTION %d: no such connection", id)
	}
}

// startKiller runs killWhere(where) every period on a pool of its own on
// dsn, until stop is called or, if max > 0, it has killed max connections;
// stop (also run when t ends) lets a round of kills end, waits until the
// server has closed every connection killed (a pool of the test may hold
// one, idle, killed an instant before) and returns the number killed.
func startKiller(t testing.TB, dsn string, period time.Duration, where string, max int) (stop func() int) {
	t.Helper()
	kdb, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open killer: %v", err)
	}
	kdb.SetMaxOpenConns(1)
	var kills atomic.Int64
	var all []int64 // read once done is closed
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for max <= 0 || kills.Load() < int64(max) {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Not ctx: a KILL cut short on the client may still run on the
			// server after stop returned, and go unrecorded.
			killed, _ := killWhere(context.Background(), kdb, where) // a connection may end before its KILL
			all = append(all, killed...)
			kills.Add(int64(len(killed)))
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			cancel()
			<-done
			waitGone(t, kdb, all)
			kdb.Close()
		})
		return int(kills.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}

// ---- loading through a Writer ----

// writeAll writes rows through w and closes it; a Write error is sticky,
// so Close returns it.
func writeAll(ctx context.Context, w *batch.Writer, rows [][]any) (batch.Result, error) {
	for _, r := range rows {
		if err := w.Write(ctx, r...); err != nil {
			break
		}
	}
	return w.Close(ctx)
}

// writerLoad loads rows into columns id and v of table through a new
// Writer on db (see writeAll).
func writerLoad(ctx context.Context, db batch.DB, table string, rows [][]any, opts ...batch.Option) (batch.Result, error) {
	w, err := batch.NewWriter(db, table, []string{"id", "v"}, opts...)
	if err != nil {
		return batch.Result{}, err
	}
	return writeAll(ctx, w, rows)
}

// ---- recording the package's log ----

// logRecorder is a slog.Handler that keeps every record the package logs,
// at every level, for assertions on what it did (resends, restarts,
// re-splits) and for failure messages. The zero value is ready to use.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
}

// logRecord is one record, its attributes flattened ("group.key").
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs []logAttr
}

type logAttr struct{ Key, Value string }

// has reports whether r has every attribute of kv ("key", "value" pairs).
func (r logRecord) has(kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if !slices.Contains(r.Attrs, logAttr{kv[i], kv[i+1]}) {
			return false
		}
	}
	return true
}

// logger is a logger writing to h, for batch.Logger.
func (h *logRecorder) logger() *slog.Logger { return slog.New(h) }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	return logView{h: h}.Handle(ctx, r)
}
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler { return logView{h: h}.WithAttrs(as) }
func (h *logRecorder) WithGroup(name string) slog.Handler    { return logView{h: h}.WithGroup(name) }

// logView is a logRecorder seen through WithAttrs and WithGroup.
type logView struct {
	h      *logRecorder
	prefix string // the open groups, "a.b."
	attrs  []logAttr
}

func (v logView) Enabled(context.Context, slog.Level) bool { return true }

func (v logView) WithAttrs(as []slog.Attr) slog.Handler {
	v.attrs = flattenAttrs(slices.Clip(v.attrs), v.prefix, as)
	return v
}

func (v logView) WithGroup(name string) slog.Handler {
	if name != "" {
		v.prefix += name + "."
	}
	return v
}

func (v logView) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: slices.Clone(v.attrs)}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs = flattenAttrs(rec.Attrs, v.prefix, []slog.Attr{a})
		return true
	})
	v.h.mu.Lock()
	v.h.recs = append(v.h.recs, rec)
	v.h.mu.Unlock()
	return nil
}

func flattenAttrs(out []logAttr, prefix string, as []slog.Attr) []logAttr {
	for _, a := range as {
		a.Value = a.Value.Resolve()
		switch {
		case a.Value.Kind() == slog.KindGroup:
			p := prefix
			if a.Key != "" {
				p += a.Key + "."
			}
			out = flattenAttrs(out, p, a.Value.Group())
		case a.Key != "":
			out = append(out, logAttr{prefix + a.Key, a.Value.String()})
		}
	}
	return out
}

// records returns a copy of the records so far.
func (h *logRecorder) records() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.recs)
}

// count is the number of records with message msg whose attributes include
// kv ("key", "value" pairs).
func (h *logRecorder) count(msg string, kv ...string) int {
	n := 0
	for _, r := range h.records() {
		if r.Msg == msg && r.has(kv...) {
			n++
		}
	}
	return n
}

// countWith is the number of records, whatever their message, whose
// attributes include kv.
func (h *logRecorder) countWith(kv ...string) int {
	n := 0
	for _, r := range h.records() {
		if r.has(kv...) {
			n++
		}
	}
	return n
}

// summary counts the records by message (and class/errno for resends), for
// t.Log.
func (h *logRecorder) summary() string {
	counts := map[string]int{}
	for _, r := range h.records() {
		if r.Msg == "batch: connection limits" {
			continue
		}
		k := r.Msg
		attrs := map[string]string{}
		for _, a := range r.Attrs {
			attrs[a.Key] = a.Value
		}
		if c, ok := attrs["class"]; ok {
			k += " class=" + c + " errno=" + attrs["errno"]
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

// String is the whole log, a line a record, for failure messages.
func (h *logRecorder) String() string {
	var b strings.Builder
	for _, r := range h.records() {
		fmt.Fprintf(&b, "level=%s msg=%q", r.Level, r.Msg)
		for _, a := range r.Attrs {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ---- waiting ----

// waitFor calls cond, and again every 10 ms (see every), until it returns
// true. If timeout passes first it fails t with t.Fatalf, saying what it
// waited for; with during(load) it fails as soon as that load ends first;
// with nonFatal it reports with t.Errorf and returns false instead. cond
// runs on the caller's goroutine and may call t.Fatal.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool, opts ...waitOption) bool {
	t.Helper()
	c := waitConfig{every: 10 * time.Millisecond}
	for _, o := range opts {
		o(&c)
	}
	var ended <-chan struct{} // nil without during: never ready
	if c.load != nil {
		ended = c.load.done
	}
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		var msg string
		select {
		case <-ended:
			msg = fmt.Sprintf("the load ended before %s (err = %v)", what, c.load.err)
		default:
			if time.Now().After(deadline) {
				msg = fmt.Sprintf("gave up after %v waiting for %s", timeout, what)
			}
		}
		if msg != "" {
			for _, d := range c.details {
				msg += "; " + d()
			}
			if c.nonFatal {
				t.Errorf("%s", msg)
				return false
			}
			t.Fatalf("%s", msg)
		}
		select {
		case <-ended:
		case <-time.After(c.every):
		}
	}
}

type waitConfig struct {
	every    time.Duration
	load     *bgLoad
	details  []func() string
	nonFatal bool
}

type waitOption func(*waitConfig)

// every sets how often waitFor calls cond. (INNODB_TRX, for one, is a cache
// that MariaDB refreshes only when it was last read over 100 ms ago: polled
// faster, it never changes.)
func every(d time.Duration) waitOption { return func(c *waitConfig) { c.every = d } }

// during makes waitFor fail as soon as load ends, if cond has not held by then.
func during(load *bgLoad) waitOption { return func(c *waitConfig) { c.load = load } }

// detail adds what f returns, at the time of a failure, to its message.
func detail(f func() string) waitOption {
	return func(c *waitConfig) { c.details = append(c.details, f) }
}

// nonFatal makes waitFor report a failure with t.Errorf and return false.
func nonFatal() waitOption { return func(c *waitConfig) { c.nonFatal = true } }

// closed is a waitFor condition: ch is closed.
func closed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// ---- a load in the background ----

// bgLoad is a load running in the background while a test injects faults.
type bgLoad struct {
	done  chan struct{} // closed when the load has returned
	res   batch.Result  // valid once done is closed
	err   error
	ended time.Time // when the load returned
}

// startLoad runs load in a goroutine of its own. The test injects its
// fault, waiting with waitFor(..., during(load)) for the moment to, then
// collects what the load returned with wait, and when with ended.
func startLoad(load func() (batch.Result, error)) *bgLoad {
	l := &bgLoad{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.res, l.err = load()
		l.ended = time.Now()
	}()
	return l
}

// wait waits for the load to return and returns what it returned.
func (l *bgLoad) wait() (batch.Result, error) {
	<-l.done
	return l.res, l.err
}

// serverErrno is the server's error number in err, or 0.
func serverErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}
