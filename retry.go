package batch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"net"
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
)

// classify decides a failed chunk's class from its error alone.
func classify(err error) class {
	var me *mysql.MySQLError
	var ne *net.OpError
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
		}
		return classPermanent
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return classNotSent // nothing was written on the connection
	case errors.As(err, &ne) && ne.Op == "write":
		// Cut while writing: the server never had the whole packet. This is
		// also how a packet that is too large often ends: the server answers
		// 1153 and closes while the client is still writing.
		return classNotSent
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return classUnknown
	}
	// mysql.ErrInvalidConn, io.EOF, read errors and timeouts: the request was
	// written and the reply lost.
	return classUnknown
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

// errNumber is the server error number in err, or 0.
func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// send writes chunk c, resending it where that is safe. It returns the
// chunks to send instead when the limits it finds call for smaller ones.
func (e *engine) send(ctx context.Context, sp **session, planSC splitConfig, c chunk) ([]chunk, error) {
	a := attempts{policy: e.o.retry, start: time.Now()}
	for {
		s := *sp
		if s == nil {
			var err error
			if s, err = e.openRetrying(ctx, &a); err != nil {
				return nil, err
			}
			*sp = s
		}
		if !s.alive(ctx) {
			e.log.Info("batch: idle connection is gone; taking a fresh one", "first", c.first, "end", c.end)
			s.discard()
			*sp = nil
			continue
		}
		if s.sc != planSC {
			sub, err := s.sc.split(nil, &e.enc, c.vals, c.first)
			if err != nil {
				return nil, err
			}
			if len(sub) > 1 {
				e.log.Info("batch: chunk re-split for the connection's limits",
					"first", c.first, "end", c.end, "chunks", len(sub), "packet", s.lim.Packet())
				return sub, nil
			}
			c = sub[0]
		}

		affected, sent, err := s.exec(ctx, c)
		if err == nil {
			e.led.sent(c.size.Total())
			e.led.wrote(c, affected)
			return nil, nil
		}
		if !sent && ctx.Err() != nil {
			return nil, context.Cause(ctx) // the chunk stays not sent
		}
		cl := classify(err)
		if !sent && cl == classUnknown {
			cl = classNotSent // PREPARE failed: no row can have been written
		}
		if cl != classNotSent && cl != classTooLarge {
			e.led.sent(c.size.Total())
		}
		clientRefused := errors.Is(err, mysql.ErrPktTooLarge)
		if clientRefused && !s.lim.ClientKnown {
			// The driver's limit is below the assumed default and nothing was
			// written: lower our idea of it below this statement's largest
			// packet and re-split, on the same connection.
			e.lowerClientCap(c.size)
			e.led.retried()
			s.refresh(e)
			e.log.Info("batch: driver refused a packet; lowering the assumed client limit",
				"first", c.first, "end", c.end, "client_max", s.lim.ClientMaxPacket)
			return []chunk{c}, nil
		}
		if e.pool == nil || cl == classPermanent || cl == classUnknown {
			return nil, e.fail(c, cl, err)
		}
		// Safe to resend: on a fresh connection, whose limits are read anew.
		e.led.retried()
		e.log.Warn("batch: resending chunk", "first", c.first, "end", c.end, "class", cl.String(),
			"errno", errNumber(err), "attempt", a.n+1)
		oldSC := s.sc
		s.discard()
		*sp = nil
		if a.exhausted() {
			return nil, e.fail(c, cl, err)
		}
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
		if cl == classTooLarge {
			// The server refused the size. If the new connection's limits
			// are the same, our size was wrong: halve the chunk anyway so
			// the load always makes progress.
			ns, err := e.openRetrying(ctx, &a)
			if err != nil {
				return nil, err
			}
			*sp = ns
			if ns.sc == oldSC {
				if c.rows() == 1 {
					return nil, &RowTooLargeError{Row: c.first, Size: c.size.Execute, Limit: ns.lim.Packet()}
				}
				half := c.rows() / 2
				return []chunk{e.resize(ns, c, 0, half), e.resize(ns, c, half, c.rows())}, nil
			}
			return []chunk{c}, nil
		}
	}
}

// fail records chunk c as lost or not sent and returns the error that
// describes it.
func (e *engine) fail(c chunk, cl class, err error) error {
	if cl == classUnknown {
		e.led.lost(c)
		return &UnknownOutcomeError{FirstRow: c.first, Rows: c.rows(), Err: err}
	}
	return &ChunkError{FirstRow: c.first, Rows: c.rows(), Err: err}
}
