package batch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"
	"reflect"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testHooks let the capture tests see each predicted packet size just before
// the driver writes the packet. Nil outside tests.
var testHooks struct {
	prepared func(payload int)   // COM_STMT_PREPARE
	executed func(size stmtSize) // COM_STMT_EXECUTE and its long data
}

// session is one connection the batch writes on, its limits, and the
// statements prepared on it. Used by one goroutine at a time.
type session struct {
	conn  *sql.Conn // nil for a caller-owned handle
	h     DB
	lim   Limits
	sc    splitConfig
	alias bool
	env   *sessionEnv
	stmts map[int]prepared
	used  time.Time // when the connection last answered
	clean bool      // the last use ended well: the connection can be reused
	// raw is true while statements go straight to the driver connection
	// through (*sql.Conn).Raw (see prepared); false on a caller's handle, or
	// when the driver lacks the context interfaces.
	raw  bool
	args []driver.NamedValue // reused arguments of raw statements
	dv   []driver.Value      // reused arguments of direct statements (runDirect)
	// running is non-nil while a statement the session gave up on (runDirect)
	// still holds the connection; it delivers that statement's reply.
	running chan direct
}

// prepared is a statement prepared on a session's connection. On the
// package's own connections it is the driver's statement, executed through
// (*sql.Conn).Raw with one reused []driver.NamedValue: the values are already
// of the driver's own types (normalize), so database/sql's per-argument
// conversion and its new []driver.NamedValue per statement (measured: 0.4 s of
// CPU and 160 MB of garbage per 500k-row, 8-column load) would only repeat
// work; go-sql-driver's own statements go further (runDirect). On a
// caller's handle it is a *sql.Stmt.
type prepared struct {
	ds     driver.Stmt // implements driver.StmtExecContext
	st     *sql.Stmt
	direct bool // ds is go-sql-driver's own statement (see runDirect)
}

// discardUnlessClean closes the session, dropping its connection unless the
// last use ended well.
func (s *session) discardUnlessClean() {
	if s.clean {
		s.close()
		return
	}
	s.discard()
}

// idleCheck is how long a pinned connection may sit unused before it is
// pinged ahead of the next chunk. The server may have closed it meanwhile
// (wait_timeout, KILL, restart); the driver only checks liveness when a
// connection comes back from the pool, so a dead pinned connection would
// otherwise swallow a whole statement and report ErrInvalidConn, an unknown
// outcome, although nothing ran.
const idleCheck = time.Second

// alive pings the connection if it sat idle.
func (s *session) alive(ctx context.Context) bool {
	if s.conn == nil || time.Since(s.used) < idleCheck {
		return true
	}
	if err := s.conn.PingContext(ctx); err != nil {
		return false
	}
	s.used = time.Now()
	return true
}

// sessionEnv is what the sessions of one load share, handed down by the
// engine: read-only once the workers start, but for the driver limit learnt
// at run time (client), which guards itself.
type sessionEnv struct {
	db             DB
	pool           pool          // nil for a caller-owned handle
	nodes          *nodes        // the pools of Failover, pool first; nil for a caller-owned handle
	cfg            *mysql.Config // nil when not given (DriverConfig)
	texts          *textCache    // the statement's SQL per shape
	plan           splitPlan     // how chunks are cut, from a connection's limits
	grace          time.Duration // how long a sent statement may answer after a cancellation
	log            *slog.Logger
	allowNonStrict bool
	client         *clientCap
	// direct lets sessions run go-sql-driver's statements with runDirect:
	// set before the workers start when the pool has a connection to spare.
	direct bool
}

// openSession takes a connection (on a pool) and reads its limits.
func openSession(ctx context.Context, env *sessionEnv) (*session, error) {
	s := &session{h: env.db, env: env, stmts: map[int]prepared{}}
	node := 0
	if env.pool != nil {
		var p pool
		node, p = env.nodes.current()
		conn, err := p.Conn(ctx)
		if err != nil {
			return nil, &nodeError{node: node, err: err}
		}
		s.conn, s.h, s.raw = conn, conn, true
	}
	lim, err := discover(ctx, s.h, env.cfg)
	if err == nil && env.nodes != nil && len(env.nodes.pools) > 1 {
		err = checkNode(ctx, s.h, &lim)
	}
	if err != nil {
		s.discard()
		return nil, &nodeError{node: node, err: err}
	}
	lim.node = node
	s.lim = lim
	s.used = time.Now()
	if !lim.Strict {
		if !env.allowNonStrict {
			s.close()
			return nil, ErrNotStrict
		}
		env.log.Warn("batch: session sql_mode is not strict; the server may truncate values silently")
	}
	s.refresh()
	env.log.Debug("batch: connection limits", "max_allowed_packet", lim.MaxAllowedPacket,
		"net_buffer_length", lim.NetBufferLength, "compressed", lim.Compressed,
		"client_max", s.lim.ClientMaxPacket, "packet", s.lim.Packet(), "flavor", lim.Flavor.String(),
		"max_rows", s.sc.maxRows)
	return s, nil
}

// refresh recomputes the split configuration from the limits, with the
// driver limit learnt so far.
func (s *session) refresh() {
	if !s.lim.ClientKnown {
		s.env.client.apply(&s.lim)
	}
	s.alias = s.lim.rowAlias()
	s.sc = s.env.plan.config(s.lim)
}

// exec sends chunk c on the session. Once the statement is on its way it
// gets a grace period to answer even if ctx is cancelled, so that its outcome
// is known and the Result stays exact.
func (s *session) exec(ctx context.Context, c chunk) (affected int64, sent bool, err error) {
	stmt, err := s.prepare(ctx, c.rows())
	if err != nil {
		return 0, false, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	execCtx, cancel := s.graceCtx(ctx)
	defer cancel()
	if testHooks.executed != nil {
		testHooks.executed(c.size)
	}
	n, err := s.run(execCtx, stmt, c.vals)
	if err != nil {
		if cause := context.Cause(execCtx); cause != nil && errors.Is(err, context.Canceled) {
			err = cause // the caller's deadline, say, not a bare "canceled"
		}
		return 0, true, err
	}
	s.used = time.Now()
	return n, true, nil
}

// graceCtx is the context of a statement once it is on its way: it ends
// the grace period after ctx does, with ctx's cause, so that the statement
// can still answer.
func (s *session) graceCtx(ctx context.Context) (context.Context, func()) {
	gctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(s.env.grace, func() { cancel(context.Cause(ctx)) })
	})
	return gctx, func() { stop(); cancel(nil) }
}

// run executes stmt with vals and returns the rows affected.
func (s *session) run(ctx context.Context, stmt prepared, vals valueRows) (int64, error) {
	n := vals.len() * vals.cols
	if stmt.st != nil {
		args := make([]any, 0, n)
		for i := range vals.len() {
			args = append(args, vals.row(i)...)
		}
		res, err := stmt.st.ExecContext(ctx, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	if stmt.direct && s.env.direct {
		return s.runDirect(ctx, stmt.ds, vals)
	}
	if len(s.args) < n {
		s.args = make([]driver.NamedValue, n)
		for i := range s.args {
			s.args[i].Ordinal = i + 1
		}
	}
	args := s.args[:n]
	for i := range vals.len() {
		for j, v := range vals.row(i) {
			args[i*vals.cols+j].Value = v
		}
	}
	defer func() {
		for i := range args {
			args[i].Value = nil // keep no caller's value alive
		}
	}()
	var affected int64
	err := s.conn.Raw(func(any) error {
		res, err := stmt.ds.(driver.StmtExecContext).ExecContext(ctx, args)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	return affected, err
}

// runDirect executes go-sql-driver's statement ds with its
// Exec([]driver.Value) and one reused []driver.Value per session, with the
// rows affected as the result. The driver's ExecContext is that same Exec
// after two steps: it copies the arguments into a new []driver.Value (8,000
// values of a 1000-row, 8-column statement are a 128 KiB allocation per
// statement; measured, 0.2-0.4 s of client CPU per 500k-row load, much of it
// page faults on fresh heap) and it hands ctx to the connection's watcher,
// which closes the connection if ctx ends first.
//
// Here the statement runs on a goroutine of its own and the session stops
// waiting when ctx ends (the grace period after the caller's cancellation,
// see exec): the error is then ctx's cause, an unknown outcome, and the
// statement keeps the connection until it returns. stopped settles such a
// chunk on a fresh connection, killing the statement first (ended), and the
// connection is dropped when the statement returns (close). That fresh
// connection must not wait for the one the statement holds, so this path is
// taken only when the pool has a connection to spare beyond the workers
// (engine.direct).
func (s *session) runDirect(ctx context.Context, ds driver.Stmt, vals valueRows) (int64, error) {
	n := vals.len() * vals.cols
	if cap(s.dv) < n {
		s.dv = make([]driver.Value, n)
	}
	dv := s.dv[:n]
	for i := range vals.len() {
		for j, v := range vals.row(i) {
			dv[i*vals.cols+j] = v
		}
	}
	done := make(chan direct, 1)
	conn := s.conn // close may clear s.conn while the statement runs
	go func() {
		var r direct
		r.err = conn.Raw(func(any) error {
			res, err := ds.Exec(dv)
			if err != nil {
				return err
			}
			r.n, err = res.RowsAffected()
			return err
		})
		clear(dv) // keep no caller's value alive
		done <- r
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-done: // answered just in time
		return r.n, r.err
	default:
	}
	s.running = done
	s.env.log.Warn("batch: statement still running after the grace period; its connection is dropped once it ends",
		"conn_id", s.lim.connID)
	return 0, context.Cause(ctx)
}

// direct is the reply to a statement run by runDirect.
type direct struct {
	n   int64
	err error
}

// isDriverStmt reports whether ds is a statement of go-sql-driver/mysql,
// whose Exec runDirect relies on (v1.10: ExecContext minus the argument copy
// and the cancel watch).
func isDriverStmt(ds driver.Stmt) bool {
	t := reflect.TypeOf(ds)
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "github.com/go-sql-driver/mysql" && t.Elem().Name() == "mysqlStmt"
}

func (s *session) prepare(ctx context.Context, k int) (prepared, error) {
	if st, ok := s.stmts[k]; ok {
		return st, nil
	}
	if len(s.stmts) >= maxStmtsPerConn {
		s.closeStmts()
	}
	text := s.env.texts.text(k, s.alias)
	if testHooks.prepared != nil {
		testHooks.prepared(prepareSize(len(text)))
	}
	st, err := s.prepareText(ctx, text)
	if errNumber(err) == erMaxPreparedStmtCount && len(s.stmts) > 0 {
		// max_prepared_stmt_count is server-wide: give ours back and try
		// once more before the chunk is retried on a fresh connection.
		s.env.log.Warn("batch: max_prepared_stmt_count reached; closing this connection's statements")
		s.closeStmts()
		st, err = s.prepareText(ctx, text)
	}
	if err != nil {
		return prepared{}, err
	}
	s.stmts[k] = st
	return st, nil
}

// prepareText prepares text on the driver connection when the session is
// raw and the driver allows it, else through database/sql.
func (s *session) prepareText(ctx context.Context, text string) (prepared, error) {
	if s.raw {
		var p prepared
		err := s.conn.Raw(func(dc any) error {
			cp, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return nil
			}
			ds, err := cp.PrepareContext(ctx, text)
			if err != nil {
				return err
			}
			if _, ok := ds.(driver.StmtExecContext); !ok {
				ds.Close() // and prepare again through database/sql
				return nil
			}
			p.ds, p.direct = ds, isDriverStmt(ds)
			return nil
		})
		if err != nil || p.ds != nil {
			return p, err
		}
		s.raw = false // a driver (or a wrapper) without the context interfaces
	}
	st, err := s.h.PrepareContext(ctx, text)
	return prepared{st: st}, err
}

// maxStmtsPerConn bounds the statements one connection keeps prepared, far
// below the server-wide max_prepared_stmt_count (16,382 by default). The
// shape ladder (splitter.go) needs about 2*log2(rows) shapes at most.
const maxStmtsPerConn = 32

func (s *session) closeStmts() {
	var raw []driver.Stmt
	for k, st := range s.stmts {
		if st.st != nil {
			st.st.Close()
		} else {
			raw = append(raw, st.ds)
		}
		delete(s.stmts, k)
	}
	if len(raw) > 0 {
		// On a connection that is already gone, Raw does not call f: the
		// server dropped the statements with the connection.
		_ = s.conn.Raw(func(any) error {
			for _, ds := range raw {
				ds.Close()
			}
			return nil
		})
	}
}

// close releases the session's statements and returns its connection to
// the pool. Safe on a nil session.
func (s *session) close() {
	if s == nil {
		return
	}
	if s.running != nil {
		// A statement the session gave up on holds the connection: drop the
		// connection (and its statements with it) once that returns.
		conn, running := s.conn, s.running
		go func() {
			<-running
			markBad(conn)
			conn.Close()
		}()
		clear(s.stmts)
		s.conn, s.running = nil, nil
		return
	}
	s.closeStmts()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// discard closes the session and makes sure its connection is not reused:
// after a failure it may be dead or in an unknown state.
func (s *session) discard() {
	if s == nil {
		return
	}
	if s.conn != nil && s.running == nil {
		markBad(s.conn)
	}
	s.close()
}

// markBad makes the pool discard conn's driver connection instead of
// reusing it: database/sql closes a connection whose Raw returns ErrBadConn.
func markBad(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}
