package batch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// class is what a failed chunk's error says about the chunk.
type class int

const (
	// classNotSent: the server never ran the statement (nothing was written,
	// or the statement never arrived whole). Resending is safe.
	classNotSent class = iota
	// classTooLarge: a packet was over a limit; nothing ran. Resend after
	// re-reading the limits on a fresh connection and re-splitting.
	classTooLarge
	// classRolledBack: the server ran the statement and rolled it back
	// (deadlock, lock wait timeout in autocommit). Resending is safe outside
	// a caller's transaction.
	classRolledBack
	// classUnknown: the statement was sent whole and no reply came; it may or
	// may not have been applied.
	classUnknown
	// classPermanent: the server refused the statement for a reason a resend
	// cannot fix.
	classPermanent
)

func (c class) String() string {
	return [...]string{"not-sent", "too-large", "rolled-back", "unknown", "permanent"}[c]
}

// MySQL error numbers this package reacts to.
const (
	erNetPacketTooLarge   = 1153 // the server closes the connection after it
	erLockWaitTimeout     = 1205
	erLockDeadlock        = 1213
	erPSManyParam         = 1390 // more than 65,535 placeholders, at PREPARE
	erMaxPreparedStmt     = 1461 // max_prepared_stmt_count reached, at PREPARE
	erClientInteractionTO = 4031 // MySQL 8.0.24+: closed an idle connection
	erDupEntry            = 1062
	erQueryInterrupted    = 1317
	erConnectionKilled    = 1927 // MariaDB
	erNoSuchThread        = 1094
)

// classify decides a failed chunk's class from its error alone.
func classify(err error) class {
	var me *mysql.MySQLError
	var ne net.Error
	switch {
	case errors.Is(err, mysql.ErrPktTooLarge):
		return classTooLarge // the driver refused before writing anything
	case errors.As(err, &me):
		switch me.Number {
		case erNetPacketTooLarge:
			return classTooLarge
		case erPSManyParam, erMaxPreparedStmt, erClientInteractionTO:
			return classNotSent
		case erLockDeadlock, erLockWaitTimeout:
			return classRolledBack
		case erQueryInterrupted, erConnectionKilled:
			// Interrupted while running: rolled back on InnoDB, perhaps half
			// done elsewhere. Resolved like a lost reply.
			return classUnknown
		}
		return classPermanent
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, mysql.ErrBusyBuffer):
		return classNotSent // nothing was written on the connection
	case errors.As(err, &ne):
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "write" {
			// Cut while writing: the server never had the whole packet. This
			// is also how a packet that is too large often ends: the server
			// answers 1153 and closes while the client is still writing.
			return classNotSent
		}
		return classUnknown // a read failed or timed out after the request went out
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return classUnknown // the request was written and the reply lost
	}
	// Anything else (the driver refusing a value it cannot encode, ...) was
	// refused before the request was written.
	return classPermanent
}

// RetryPolicy says how often and how long a chunk is resent after a failure
// that is safe to resend. The budget is per chunk, so a connection killed
// every 50 ms does not use up the batch's retries. The zero value means the
// defaults, which ride out a server restart of 10 seconds.
type RetryPolicy struct {
	// MaxElapsed is how long one chunk may keep failing before the batch
	// gives up (default 30s). A negative value disables retries.
	MaxElapsed time.Duration
	// InitialBackoff is the first wait (default 50ms); each further wait
	// doubles, up to MaxBackoff (default 2s), with full jitter.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxElapsed == 0 {
		p.MaxElapsed = 30 * time.Second
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 50 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 2 * time.Second
	}
	return p
}

// attempts tracks the retries of one chunk.
type attempts struct {
	policy RetryPolicy
	start  time.Time
	n      int
}

func (a *attempts) exhausted() bool {
	return a.policy.MaxElapsed < 0 || time.Since(a.start) > a.policy.MaxElapsed
}

// wait sleeps before the next attempt: half the backoff for sure, half
// random, so that many writers do not come back at once.
func (a *attempts) wait(ctx context.Context) error {
	d := a.policy.InitialBackoff << min(a.n, 16)
	if d <= 0 || d > a.policy.MaxBackoff {
		d = a.policy.MaxBackoff
	}
	a.n++
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isWriteCut reports whether err is a connection cut while the request was
// being written.
func isWriteCut(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "write"
}

// errNumber is the server error number in err, or 0.
func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// unknownPolicy is what may be done with a chunk whose outcome is unknown.
type unknownPolicy int

const (
	unknownFail   unknownPolicy = iota // report an UnknownOutcomeError
	unknownResend                      // resend: a second copy cannot change the result
	unknownVerify                      // look the chunk's keys up, resend only if absent
)

// unknownPolicy decides, once per batch from the statement and the table,
// whether a chunk with an unknown outcome can be resolved. Both ways need
// the inserted columns to supply a whole NOT NULL unique key: without one
// (an omitted AUTO_INCREMENT id, no unique key, nullable key columns) a
// second copy of a row is just another row.
func (e *engine) unknownPolicy() unknownPolicy {
	if !e.infoKnown || !e.info.hasNotNullKey() {
		return unknownFail
	}
	// REPLACE, IGNORE and an ON DUPLICATE KEY UPDATE that copies the new
	// row's values leave the same table whether they run once or twice.
	if e.st.ordered() {
		return unknownResend
	}
	// One InnoDB statement is all or nothing: its keys are all there or none.
	if e.info.transactional() {
		return unknownVerify
	}
	return unknownFail
}

// retryState is the history of one chunk's attempts.
type retryState struct {
	a        attempts
	last     Limits      // limits of the connection of the last failed attempt
	sc       splitConfig // and how it split
	err      error       // the last attempt's error
	inFlight bool        // the last failed attempt reached the server
	restarts int         // server restarts seen while the chunk was in flight
	dupCheck bool        // a 1062 now may come from an earlier attempt that landed
}

// send writes chunk c, resending it where that is safe. It returns the
// chunks to send instead when the limits it finds call for smaller ones.
func (e *engine) send(ctx context.Context, sp **session, planSC splitConfig, c chunk) ([]chunk, error) {
	r := retryState{a: attempts{policy: e.o.retry, start: time.Now()}, dupCheck: c.mayLand}
	pending := false       // look the chunk up before sending it again
	uncertain := c.mayLand // an attempt may have been applied, unbeknown to us
	for {
		s := *sp
		if s == nil {
			var err error
			if s, err = e.reopen(ctx, &r, c); err != nil {
				return nil, e.giveUp(c, &r, uncertain, err)
			}
			*sp = s
			if r.restarts >= 2 {
				r.a.n++
				return nil, e.giveUp(c, &r, true, errQueryOfDeath)
			}
		}
		if !s.alive(ctx) {
			e.log.Info("batch: idle connection is gone; taking a fresh one", "first", c.first, "end", c.end)
			s.discard()
			*sp = nil
			continue
		}
		if pending {
			// The last attempt may have been applied; find out on this
			// fresh connection before sending anything.
			found, err := e.verify(ctx, s, c)
			switch {
			case err != nil && ctx.Err() == nil && classify(err) != classPermanent && !r.a.exhausted():
				// The look-up lost its connection too: try again on another.
				s.discard()
				*sp = nil
				if err := r.a.wait(ctx); err != nil {
					return nil, e.stopped(c, &r, uncertain, err)
				}
				continue
			case err != nil:
				return nil, e.stopped(c, &r, uncertain, err)
			case found == c.rows():
				e.log.Info("batch: chunk with unknown outcome found written", "first", c.first, "end", c.end)
				e.led.wrote(c, int64(found))
				return nil, nil
			case found > 0:
				return nil, e.fail(c, classUnknown, fmt.Errorf("batch: %d of the chunk's %d keys found after a lost reply: %w", found, c.rows(), r.err))
			case r.dupCheck && errNumber(r.err) == erDupEntry:
				// None of the chunk's keys is there, so the duplicate is real
				// (within the chunk, or on another unique key).
				return nil, e.fail(c, classPermanent, r.err)
			}
			pending, uncertain = false, false
			r.dupCheck = true
		}
		if s.sc != planSC {
			sub, err := s.sc.split(nil, &e.enc, c.vals, c.first)
			if err != nil {
				return nil, err
			}
			if len(sub) > 1 {
				e.log.Info("batch: chunk re-split for the connection's limits",
					"first", c.first, "end", c.end, "chunks", len(sub), "packet", s.lim.Packet())
				for i := range sub {
					sub[i].mayLand = r.dupCheck || uncertain
				}
				return sub, nil
			}
			sub[0].mayLand = c.mayLand
			c = sub[0]
		}

		affected, sent, err := s.exec(ctx, c)
		if err == nil {
			e.led.sent(c.size.Total())
			e.led.wrote(c, affected)
			return nil, nil
		}
		if !sent && ctx.Err() != nil {
			return nil, e.stopped(c, &r, uncertain, context.Cause(ctx))
		}
		cl := classify(err)
		if !sent && cl == classUnknown {
			cl = classNotSent // PREPARE failed: no row can have been written
		}
		if sent && ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
			// Given up on after the grace period (exec), whatever the cause
			// (another chunk's error, the caller's own): the statement may
			// still land.
			cl = classUnknown
		}
		if cl != classNotSent && cl != classTooLarge {
			e.led.sent(c.size.Total())
		}
		if r.dupCheck && errNumber(err) == erDupEntry {
			// An earlier attempt whose reply was lost may have landed after
			// the look-up (the server finishes a statement even when the
			// client is gone): look again rather than fail.
			cl = classUnknown
		}
		if errors.Is(err, mysql.ErrPktTooLarge) && !s.lim.ClientKnown {
			// The driver's limit is below the assumed default and nothing was
			// written: lower our idea of it below this statement's largest
			// packet and re-split, on the same connection.
			e.lowerClientCap(c.size, s.lim)
			e.led.retried()
			s.refresh(e)
			e.log.Info("batch: driver refused a packet; lowering the assumed client limit",
				"first", c.first, "end", c.end, "client_max", s.lim.ClientMaxPacket)
			c.mayLand = r.dupCheck || uncertain
			return []chunk{c}, nil
		}
		cut := cl == classNotSent && isWriteCut(err)
		if cut {
			// A cut write may be a packet the server found too large: it
			// answers 1153 and closes while the client still writes.
			cl = classTooLarge
		}
		policy := unknownFail
		if cl == classUnknown {
			policy = e.unknownPolicy()
		}
		if e.pool == nil || cl == classPermanent || cl == classUnknown && policy == unknownFail {
			if uncertain {
				cl = classUnknown // an earlier attempt may still have landed
			}
			return nil, e.fail(c, cl, err)
		}
		// Safe to resend: on a fresh connection, whose limits are read anew.
		e.led.retried()
		e.log.Warn("batch: resending chunk", "first", c.first, "end", c.end, "class", cl.String(),
			"errno", errNumber(err), "attempt", r.a.n+1)
		r.last, r.sc, r.inFlight, r.err = s.lim, s.sc, sent, err
		pending = policy == unknownVerify
		uncertain = uncertain || cl == classUnknown
		s.discard()
		*sp = nil
		if r.a.exhausted() {
			return nil, e.giveUp(c, &r, uncertain, err)
		}
		if err := r.a.wait(ctx); err != nil {
			return nil, e.stopped(c, &r, uncertain, err)
		}
		if cl == classTooLarge {
			// The server refused the size. If the new connection's limits
			// are the same, our size was wrong: halve the chunk anyway so
			// the load always makes progress.
			ns, err := e.reopen(ctx, &r, c)
			if err != nil {
				return nil, e.giveUp(c, &r, uncertain, err)
			}
			*sp = ns
			if ns.sc == r.sc {
				if c.rows() == 1 && cut {
					return []chunk{c}, nil // a network cut after all: resend it
				}
				if c.rows() == 1 {
					return nil, &RowTooLargeError{Row: c.first, Size: c.size.Execute, Limit: ns.lim.Packet()}
				}
				half := c.rows() / 2
				lo, hi := e.resize(ns, c, 0, half), e.resize(ns, c, half, c.rows())
				lo.mayLand, hi.mayLand = r.dupCheck || uncertain, r.dupCheck || uncertain
				return []chunk{lo, hi}, nil
			}
			c.mayLand = r.dupCheck || uncertain
			return []chunk{c}, nil
		}
	}
}

// errQueryOfDeath is the cause of a RetryError for a chunk that was in flight
// across two server restarts.
var errQueryOfDeath = errors.New("batch: the server restarted twice while this chunk was in flight")

// reopen opens a fresh session for a chunk's next attempt and notes whether
// the server restarted since the last failed one (a crash, not a cut).
func (e *engine) reopen(ctx context.Context, r *retryState, c chunk) (*session, error) {
	s, err := e.openRetrying(ctx, &r.a)
	if err != nil {
		return nil, err
	}
	if r.inFlight && s.lim.restartedSince(r.last) {
		r.restarts++
		e.log.Warn("batch: the server restarted while a chunk was in flight", "first", c.first, "end", c.end,
			"restarts", r.restarts, "uptime_s", int(time.Since(s.lim.ServerStarted).Seconds()))
	}
	return s, nil
}

// giveUp ends a chunk's retries. When its outcome is unknown, the chunk is
// recorded as such and the error says so.
func (e *engine) giveUp(c chunk, r *retryState, unknown bool, err error) error {
	if unknown {
		e.led.lost(c)
		err = &UnknownOutcomeError{FirstRow: c.first, Rows: c.rows(), Err: err}
	}
	return &RetryError{
		FirstRow: c.first, Rows: c.rows(), Bytes: c.size.Total(), Attempts: r.a.n + 1,
		Elapsed: time.Since(r.a.start), ServerRestarted: r.restarts > 0, QueryOfDeath: r.restarts >= 2,
		WaitTimeout: r.last.WaitTimeout, MaxAllowedPacket: r.last.MaxAllowedPacket, Err: err,
	}
}

// verify counts how many of chunk c's rows are in the table, by the first
// NOT NULL unique key the inserted columns supply, on session s.
func (e *engine) verify(ctx context.Context, s *session, c chunk) (int, error) {
	var key uniqueKey
	for _, k := range e.info.keys {
		if k.notNull {
			key = k
			break
		}
	}
	var b strings.Builder
	b.WriteString("SELECT COUNT(*) FROM ")
	quoteTable(&b, e.st.table)
	b.WriteString(" WHERE (")
	for i, col := range key.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		quoteIdent(&b, e.st.columns[col])
	}
	b.WriteString(") IN (")
	tuple := "(" + strings.Repeat("?,", len(key.cols)-1) + "?)"
	args := make([]any, 0, c.rows()*len(key.cols))
	for i := 0; i < c.rows(); i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
		for _, col := range key.cols {
			args = append(args, c.vals.row(i)[col])
		}
	}
	b.WriteByte(')')
	var n int
	if err := s.h.QueryRowContext(ctx, b.String(), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("batch: looking up a chunk with an unknown outcome: %w", err)
	}
	return n, nil
}

// fail ends chunk c with an error that describes it: an unknown outcome is
// recorded as such; anything else leaves the chunk not written.
func (e *engine) fail(c chunk, cl class, err error) error {
	if cl == classUnknown {
		e.led.lost(c)
		return &UnknownOutcomeError{FirstRow: c.first, Rows: c.rows(), Err: err}
	}
	return &ChunkError{FirstRow: c.first, Rows: c.rows(), Err: err}
}

// stopped ends chunk c when the batch stops (ctx cancelled, another
// worker's error, a failed look-up). If an earlier attempt may have been
// applied, one last look-up on a fresh connection, within the grace period
// and whatever ctx says, tries to settle it; otherwise it is an unknown
// outcome. The server goes on running a statement whose client is gone
// (waiting for a lock, say), so the look-up is trusted only once that
// statement is known to be over: it is killed first and waited for.
func (e *engine) stopped(c chunk, r *retryState, uncertain bool, err error) error {
	if !uncertain {
		return err // nothing of the chunk was written
	}
	if e.unknownPolicy() == unknownVerify {
		ctx, cancel := context.WithTimeout(context.Background(), 2*e.grace)
		defer cancel()
		if s, oerr := e.open(ctx); oerr == nil {
			defer s.close()
			if e.ended(ctx, s, r.last.connID) {
				found, verr := e.verify(ctx, s, c)
				switch {
				case verr == nil && found == c.rows():
					e.led.wrote(c, int64(found))
					return err
				case verr == nil && found == 0:
					return err // not written: the rows stay not sent
				}
			}
		}
	}
	return e.fail(c, classUnknown, err)
}

// ended stops whatever connection id is still running and reports whether
// it is over (gone, or idle) before ctx ends.
func (e *engine) ended(ctx context.Context, s *session, id uint64) bool {
	if id == 0 {
		return false
	}
	// An integer, not a value from the input: KILL takes no placeholder.
	if _, err := s.h.ExecContext(ctx, "KILL QUERY "+strconv.FormatUint(id, 10)); err != nil && errNumber(err) != erNoSuchThread {
		return false
	}
	for {
		var running int
		err := s.h.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND NOT IN ('Sleep', 'Killed')", id).Scan(&running)
		switch {
		case err != nil:
			return false
		case running == 0:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}
