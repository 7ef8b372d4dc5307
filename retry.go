package batch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"
)

// This file is the retry layer: the retry budget and backoff, what may be
// done after a lost reply, and the loop that carries out a chunk's fate
// (fate.go) on a worker's connection: sending, resending on a fresh
// connection, looking rows up, cutting the chunk smaller.

// RetryPolicy says how often and how long a chunk is resent after a failure
// that is safe to resend. The budget is per chunk, so a connection killed
// every 50 ms does not use up the batch's retries. The zero value means the
// defaults, which ride out a server restart of 10 seconds.
type RetryPolicy struct {
	// MaxElapsed is how long one chunk, or one transaction of chunks (see
	// CommitEvery), may keep failing before the batch gives up (default
	// 30s); a transaction replayed in parts starts afresh each time a part
	// commits. A negative value disables retries.
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

// unknownPolicy is what may be done with a chunk whose outcome is unknown.
type unknownPolicy int

const (
	unknownFail   unknownPolicy = iota // report an UnknownOutcomeError
	unknownResend                      // resend: a second copy cannot change the result
	unknownVerify                      // look the chunk's keys up, resend only if absent
)

// policyFor decides, once per batch from the statement and the table,
// whether a chunk with an unknown outcome can be resolved. Both ways need
// the inserted columns to supply a whole NOT NULL unique key: without one
// (an omitted AUTO_INCREMENT id, no unique key, nullable key columns) a
// second copy of a row is just another row. known is false when the
// table's keys could not be read.
func policyFor(info tableInfo, known, ordered bool) unknownPolicy {
	if !known || !info.hasNotNullKey() {
		return unknownFail
	}
	// REPLACE, IGNORE and an ON DUPLICATE KEY UPDATE that copies the new
	// row's values leave the same table whether they run once or twice.
	if ordered {
		return unknownResend
	}
	// One InnoDB statement is all or nothing: its keys are all there or none.
	if info.transactional() {
		return unknownVerify
	}
	return unknownFail
}

// worker sends chunks on a connection of its own. Only its goroutine uses
// it.
type worker struct {
	e    *engine
	s    *session    // nil between a failed attempt and the next one
	plan splitConfig // the configuration chunks were planned with
}

// run is one chunk's attempts.
type run struct {
	c chunk
	f fate
	a attempts
	flight
	sc splitConfig // how the connection of the last failed attempt split
}

// flight is what a chunk's or a group's last failed attempt left behind,
// to tell a server restart (a crash) from a lost connection.
type flight struct {
	last     Limits // limits of the connection of the last failed attempt
	inFlight bool   // the last failed attempt reached the server
	restarts int    // server restarts seen while it was in flight
}

// deliver writes chunk c, and the chunks it is cut into, in order.
func (w *worker) deliver(ctx context.Context, c chunk) error {
	queue := []chunk{c}
	for len(queue) > 0 {
		sub, err := w.send(ctx, queue[0])
		if err != nil {
			return err
		}
		queue = append(sub, queue[1:]...)
	}
	return nil
}

// send writes chunk c, resending it where that is safe. It returns the
// chunks to send instead when c must be cut smaller.
func (w *worker) send(ctx context.Context, c chunk) ([]chunk, error) {
	e := w.e
	r := &run{c: c, a: attempts{policy: e.o.retry, start: time.Now()}, f: fate{land: c.land, policy: e.policy,
		owned: e.pool == nil, isolate: e.o.maxRejects != 0, dupIsRow: !e.st.ordered()}}
	lookup := false // a chunk cut from an uncertain one is sent first: a 1062 then sends it to the look-up
	for {
		if err := w.connect(ctx, r); err != nil {
			return nil, err
		}
		if lookup {
			if done, err := w.lookup(ctx, r); done || err != nil {
				return nil, err
			}
			lookup = false
		}
		if w.s.sc != w.plan {
			sub, err := w.s.sc.resplit(&e.enc, r.c, r.f.land.inherited())
			if err != nil || len(sub) > 1 {
				return w.resplit(sub, err)
			}
			sub[0].land = r.c.land
			r.c = sub[0]
		}
		v := w.attempt(ctx, r)
		switch v.next {
		case stepDone:
			return nil, nil
		case stepReport:
			return nil, e.report(r.c, v.class, r.f.err)
		case stepStop:
			return nil, e.stopped(r, context.Cause(ctx))
		case stepLowerClient:
			return w.lowerClient(r), nil
		case stepIsolate:
			return w.isolate(r)
		}
		if err := w.retreat(ctx, r, v); err != nil {
			return nil, err
		}
		if v.next == stepShrink {
			return w.shrink(ctx, r)
		}
		lookup = v.next == stepLookup
	}
}

// attempt sends the chunk once on the worker's session and judges the end.
func (w *worker) attempt(ctx context.Context, r *run) verdict {
	affected, sent, err := w.s.exec(ctx, r.c)
	v := r.f.judge(attemptEnd{err: err, sent: sent, stopping: ctx.Err() != nil, cause: context.Cause(ctx),
		clientKnown: w.s.lim.ClientKnown})
	if v.counted {
		w.e.tally.sent(r.c.size.Total())
	}
	switch v.next {
	case stepDone:
		w.e.tally.wrote(r.c, affected, w.s.lim.node)
	case stepResend, stepLookup, stepShrink:
		r.last, r.sc, r.inFlight = w.s.lim, w.s.sc, sent
	}
	return v
}

// connect makes sure the worker has a live session, opening a fresh one
// after a failure.
func (w *worker) connect(ctx context.Context, r *run) error {
	for {
		if w.s == nil {
			s, err := w.e.reopen(ctx, r)
			if err != nil {
				return w.e.giveUp(r, err)
			}
			w.s = s
			if r.restarts >= 2 {
				r.a.n++
				r.f.land = landMaybe
				return w.e.giveUp(r, errQueryOfDeath)
			}
		}
		if w.s.alive(ctx) {
			return nil
		}
		w.e.log.Info("batch: idle connection is gone; taking a fresh one", "first", r.c.first, "end", r.c.end)
		w.drop()
	}
}

// drop discards the worker's session after a failure.
func (w *worker) drop() {
	w.s.discard()
	w.s = nil
}

// retreat drops the connection after a failure that may be retried, and
// waits before the next attempt; it gives the chunk up when its budget is
// spent.
func (w *worker) retreat(ctx context.Context, r *run, v verdict) error {
	e := w.e
	e.tally.retried()
	e.log.Warn("batch: resending chunk", "first", r.c.first, "end", r.c.end, "class", v.class.String(),
		"errno", errNumber(r.f.err), "attempt", r.a.n+1)
	w.drop()
	if r.a.exhausted() {
		return e.giveUp(r, r.f.err)
	}
	if err := r.a.wait(ctx); err != nil {
		return e.stopped(r, err)
	}
	return nil
}

// resplit hands back the chunks a changed connection cut the chunk into.
func (w *worker) resplit(sub []chunk, err error) ([]chunk, error) {
	if err != nil {
		return nil, err
	}
	w.e.log.Info("batch: chunk re-split for the connection's limits",
		"first", sub[0].first, "end", sub[len(sub)-1].end, "chunks", len(sub), "packet", w.s.lim.Packet())
	return sub, nil
}

// lowerClient lowers the assumed driver limit below the largest packet of
// the statement the driver refused (nothing was written) and hands the chunk
// back, to be re-split on the same connection.
func (w *worker) lowerClient(r *run) []chunk {
	w.e.lowerClientCap(r.c.size, w.s.lim)
	w.e.tally.retried()
	w.s.refresh()
	w.e.log.Info("batch: driver refused a packet; lowering the assumed client limit",
		"first", r.c.first, "end", r.c.end, "client_max", w.s.lim.ClientMaxPacket)
	c := r.c
	c.land = r.f.land.inherited()
	return []chunk{c}
}

// shrink follows a size the server refused: on a fresh connection whose
// limits are unchanged the chunk is halved (the load always makes
// progress); with changed limits it is handed back to be re-split for them.
func (w *worker) shrink(ctx context.Context, r *run) ([]chunk, error) {
	e := w.e
	s, err := e.reopen(ctx, r)
	if err != nil {
		return nil, e.giveUp(r, err)
	}
	w.s = s
	c, land := r.c, r.f.land.inherited()
	c.land = land
	switch {
	case s.sc != r.sc:
		return []chunk{c}, nil
	case c.rows() == 1 && r.f.cut:
		return []chunk{c}, nil // a network cut after all: resend it
	case c.rows() == 1:
		return nil, &RowTooLargeError{Row: c.first, Size: c.size.Execute, Limit: s.lim.Packet()}
	}
	return s.sc.halve(&e.enc, c, land), nil
}

// errQueryOfDeath is the cause of a RetryError for a chunk that was in flight
// across two server restarts.
var errQueryOfDeath = errors.New("batch: the server restarted twice while this chunk was in flight")

// reopen opens a fresh session for a chunk's next attempt (see reopenFor).
func (e *engine) reopen(ctx context.Context, r *run) (*session, error) {
	return e.reopenFor(ctx, &r.a, &r.flight, r.c.span())
}

// reopenFor opens a fresh session for the next attempt at the rows of span
// and notes whether the server restarted since the last failed one (a
// crash, not a cut). A restart counts against the rows only when their
// statement was in flight; one that came between two statements is logged
// all the same.
func (e *engine) reopenFor(ctx context.Context, a *attempts, f *flight, span Range) (*session, error) {
	s, err := e.openRetrying(ctx, a)
	if err != nil {
		return nil, err
	}
	if !s.lim.restartedSince(f.last) {
		return s, nil
	}
	uptime := int(time.Since(s.lim.ServerStarted).Seconds())
	if !f.inFlight {
		e.log.Warn("batch: the server restarted between two statements", "first", span.First, "end", span.End,
			"uptime_s", uptime)
		return s, nil
	}
	f.restarts++
	e.log.Warn("batch: the server restarted while a chunk was in flight", "first", span.First, "end", span.End,
		"restarts", f.restarts, "uptime_s", uptime)
	return s, nil
}

// setupRetrying runs f, a step of setting a load up, on s, and again on a
// fresh session while it fails in a way a wait can cure (the connection
// lost, killed, a server restarting), within the budget a. It returns the
// session to go on with, and f's error when it gives up; the session is
// nil when none could be had.
func (e *engine) setupRetrying(ctx context.Context, s *session, a *attempts, what string, f func(*session) error) (*session, error) {
	for {
		err := f(s)
		if err == nil || classify(err) == classPermanent || a.exhausted() {
			return s, err
		}
		e.tally.retried()
		e.log.Warn("batch: "+what+" failed; retrying", "errno", errNumber(err), "attempt", a.n+1)
		s.discard()
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
		if s, err = e.openRetrying(ctx, a); err != nil {
			return nil, err
		}
	}
}

// giveUp ends a chunk's retries. When its outcome is unknown, the chunk is
// recorded as such and the error says so.
func (e *engine) giveUp(r *run, err error) error {
	c := r.c
	if r.f.unknown() {
		e.tally.lost(c)
		err = &UnknownOutcomeError{Range: c.span(), Err: err}
	}
	return &RetryError{
		Range: c.span(), Bytes: c.size.Total(), Attempts: r.a.n + 1,
		Elapsed: time.Since(r.a.start), ServerRestarted: r.restarts > 0, QueryOfDeath: r.restarts >= 2,
		WaitTimeout: r.last.WaitTimeout, MaxAllowedPacket: r.last.MaxAllowedPacket, Err: err,
	}
}

// report ends chunk c with an error that describes it: an unknown outcome
// is recorded as such; anything else leaves the chunk not written.
func (e *engine) report(c chunk, cl class, err error) error {
	if cl == classUnknown {
		e.tally.lost(c)
		return &UnknownOutcomeError{Range: c.span(), Err: err}
	}
	return chunkError(c, err)
}

// chunkError is the error for chunk c refused with err, naming the input
// row when the server's message does.
func chunkError(c chunk, err error) *ChunkError {
	row := -1
	if at := atRow(err); at >= 0 && at < c.rows() {
		row = c.first + at
	}
	return &ChunkError{Range: c.span(), Row: row, Err: err}
}

// isolate takes a row the server refused for its values out of the chunk:
// the row its message names is rejected at once and the others handed back
// to be sent again; without a name, the chunk is cut in two until the row
// is alone. Every step is exact because the refused statement wrote
// nothing (a transactional engine, checked before the load started).
func (w *worker) isolate(r *run) ([]chunk, error) {
	sub, _, err := w.isolateRow(r.c, r.f.err, r.f.land.inherited())
	return sub, err
}

// isolateRow is isolate for chunk c refused with err, its parts inheriting
// land; per chunk and in a group's transaction alike. It returns the chunks
// to send instead and the row it rejected, or -1 when it only cut c.
func (w *worker) isolateRow(c chunk, err error, land landing) ([]chunk, int, error) {
	e := w.e
	at := atRow(err)
	if c.rows() == 1 {
		at = 0
	}
	if at < 0 || at >= c.rows() {
		e.tally.retried()
		sub, berr := w.s.sc.bisect(&e.enc, c, land)
		return sub, -1, berr
	}
	row := c.first + at
	if !e.tally.reject(row, err) {
		return nil, -1, &ChunkError{Range: c.span(), Row: row, Err: &tooManyRejects{cause: err}}
	}
	e.log.Info("batch: row rejected", "row", row, "errno", errNumber(err))
	if c.rows() == 1 {
		return nil, row, nil
	}
	e.tally.retried()
	sub, aerr := w.s.sc.around(&e.enc, c, at, land)
	return sub, row, aerr
}

// lowerClientCap lowers the assumed driver limit below the largest packet of
// a statement the driver refused, and records the lowered packet limit.
func (e *engine) lowerClientCap(sz stmtSize, lim Limits) {
	capped := e.env.client.lower(max(sz.Execute, sz.LargestLong) - 1)
	e.tally.packet(min(lim.Packet(), capped))
}

// isPktTooLarge reports whether the driver refused a packet over its limit.
func isPktTooLarge(err error) bool { return errors.Is(err, mysql.ErrPktTooLarge) }
