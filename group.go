package batch

import (
	"context"
	"errors"
	"slices"
	"time"
)

// This file writes a group of chunks in one transaction (CommitEvery,
// Ledger): START TRANSACTION, the chunks, the ledger row, COMMIT. Until
// COMMIT nothing of the group is written, so every failure before it (a
// lost connection, a deadlock, a server restart) leaves the group not
// written and it is replayed whole; only a COMMIT whose reply is lost needs
// settling, by the ledger row or the rows' keys. fate.go decides; this file
// carries the decisions out.

// DefaultCommitEvery is the number of chunks per transaction when
// [CommitEvery] is not given. On a server that flushes its redo log at every
// commit (innodb_flush_log_at_trx_commit=1, the default of MySQL and
// MariaDB) fewer commits save a log flush each, and 32 was the fastest of
// 1, 4, 8, 16 and 32 there and on a server that does not flush
// (bench/RESULTS.md, "Group commit"). A failed transaction is replayed in
// halves, so a larger group does not slow a load that keeps failing.
const DefaultCommitEvery = 32

// group is the chunks of consecutive input rows span sent in one
// transaction, or one by one when groups are not transactions.
type group struct {
	chunks []chunk
	span   Range
	keys   []uint64 // key hashes held for per-key order until the group ends
}

// groupSize is how many chunks make a group, decided once the table is
// known: transactions need a pool and a transactional table (a statement
// of MyISAM is not rolled back); without them each chunk commits alone.
func (e *engine) groupSize() int {
	n := e.o.commitEvery
	if n == 0 {
		n = DefaultCommitEvery
	}
	e.txn = e.pool != nil && e.infoKnown && e.info.transactional() && (n > 1 || e.ledger != nil)
	if !e.txn {
		if n > 1 && e.pool != nil && e.o.commitEvery > 1 {
			e.log.Info("batch: the table is not transactional; each chunk commits on its own", "engine", e.info.engine)
		}
		return 1
	}
	return n
}

// spread lowers the chunks per group of an input of total rows (-1:
// unknown, a Writer), cut into chunks of about rows (the first chunk's: the
// packet budget, not MaxRows, sets the rows of wide ones), so that each of
// the workers gets a group: a 20,000-row Insert in groups of 32 chunks
// would be one transaction on one worker.
func spread(size, total, rows, workers int) int {
	if total < 0 || size <= 1 {
		return size
	}
	chunks := (total + rows - 1) / max(rows, 1)
	return max(1, min(size, (chunks+workers-1)/workers))
}

// txn is one group's attempts at its transaction.
type txn struct {
	g       group
	chunks  []chunk // the group's rows still to send, as now cut
	done    []sent  // chunks written in the open transaction
	rej     []Rejection
	a       attempts
	*flight       // shared by the halves of a group: a restart counts once
	err     error // the last failure
	at      chunk // the chunk of the last failed statement
}

// sent is a chunk written in the open transaction and its rows affected.
type sent struct {
	c        chunk
	affected int64
}

// deliverGroup writes group g: in one transaction, or chunk by chunk.
func (w *worker) deliverGroup(ctx context.Context, g group) error {
	if !w.e.txn {
		for _, c := range g.chunks {
			if err := w.deliver(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}
	return w.runTxns(ctx, []*txn{w.e.newTxn(g.chunks, g.span, nil)})
}

// runTxns delivers the transactions of queue in order, and those each is
// cut into. A group that ends with an error may leave a prefix to write
// first: the chunks before a row the server refused, which are written as
// they would be chunk by chunk. The retry budget is one of time without
// progress, as a chunk's is: when a part of a group commits, the parts
// still to go start a fresh budget.
func (w *worker) runTxns(ctx context.Context, queue []*txn) error {
	for len(queue) > 0 {
		next, err := w.deliverTxn(ctx, queue[0])
		if err != nil {
			if len(next) > 0 {
				return errors.Join(err, w.runTxns(ctx, next))
			}
			return err
		}
		if next == nil { // committed
			for _, t := range queue[1:] {
				t.a = attempts{policy: t.a.policy, start: time.Now()}
			}
		}
		queue = append(next, queue[1:]...)
	}
	return nil
}

func (e *engine) newTxn(chunks []chunk, span Range, rej []Rejection) *txn {
	return &txn{g: group{chunks: chunks, span: span}, chunks: slices.Clone(chunks), rej: rej,
		a: attempts{policy: e.o.retry, start: time.Now()}, flight: &flight{}}
}

// deliverTxn writes t's group in one transaction. A group rolled back is
// replayed in two halves, each a transaction of its own, so that a load
// keeps making progress when transactions keep failing (connections killed
// faster than a whole group goes through); it returns the halves.
func (w *worker) deliverTxn(ctx context.Context, t *txn) ([]*txn, error) {
	for {
		next, err := w.txnOnce(ctx, t)
		if next == txSettle {
			next, err = w.settleCommit(ctx, t)
		}
		switch next {
		case txCommitted:
			w.e.commitGroup(t)
			return nil, nil
		case txReport:
			return w.e.prefix(t, err), err
		case txStop:
			return nil, err
		}
		if err := w.replayWait(ctx, t); err != nil {
			return nil, err
		}
		// Reconnect before cutting: a restart the failure caused counts
		// for this group, which holds the statement that was in flight.
		if err := w.connectTxn(ctx, t); err != nil {
			return nil, err
		}
		if len(t.chunks) > 1 {
			return w.e.halves(t), nil
		}
	}
}

// prefix is the transaction of the chunks a group wrote before the
// statement that ended it, when that statement was refused for a row's
// value (InnoDB rolled back that statement alone): nil otherwise, or when
// there are none.
func (e *engine) prefix(t *txn, err error) []*txn {
	if len(t.done) == 0 || !refusesRow(err, true) {
		return nil
	}
	end := t.at.first
	var rej []Rejection
	for _, r := range t.rej {
		if r.Row < end {
			rej = append(rej, r)
		}
	}
	p := e.newTxn(t.doneChunks(), Range{t.g.span.First, end}, rej)
	p.a = t.a
	return []*txn{p}
}

// halves cuts a rolled-back group in two at a chunk boundary; the rows it
// rejected go with the half they are in.
func (e *engine) halves(t *txn) []*txn {
	mid := t.chunks[len(t.chunks)/2].first
	var rej [2][]Rejection
	for _, r := range t.rej {
		i := 0
		if r.Row >= mid {
			i = 1
		}
		rej[i] = append(rej[i], r)
	}
	k := len(t.chunks) / 2
	a := e.newTxn(t.chunks[:k], Range{t.g.span.First, mid}, rej[0])
	b := e.newTxn(t.chunks[k:], Range{mid, t.g.span.End}, rej[1])
	a.a, b.a = t.a, t.a                     // the budget goes on
	a.flight, b.flight = t.flight, t.flight // one history of restarts
	return []*txn{a, b}
}

// replayWait drops the connection of a rolled-back group and waits before
// the replay; it gives the group up when its budget is spent.
func (w *worker) replayWait(ctx context.Context, t *txn) error {
	e := w.e
	e.tally.retried()
	e.log.Warn("batch: transaction rolled back; replaying it", "first", t.g.span.First, "end", t.g.span.End,
		"class", classify(t.err).String(), "errno", errNumber(t.err), "attempt", t.a.n+1)
	w.drop()
	if t.a.exhausted() {
		return e.giveUpGroup(t, false)
	}
	if classify(t.err) == classTooLarge {
		return ctx.Err() // a smaller transaction needs no wait
	}
	return t.a.wait(ctx)
}

// txnOnce makes one attempt at the group's transaction on the worker's
// session.
func (w *worker) txnOnce(ctx context.Context, t *txn) (txStep, error) {
	if err := w.connectTxn(ctx, t); err != nil {
		return txReport, err
	}
	s := w.s
	if _, err := s.conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
		return w.txnFailed(ctx, t, judgeTxn(attemptEnd{err: err, stopping: ctx.Err() != nil}, false, false), err)
	}
	t.done = t.done[:0]
	if next, err := w.txnChunks(ctx, t); next != txCommitted {
		if next == txStop && w.s != nil {
			return w.commitPart(ctx, t, err)
		}
		return next, err
	}
	if l := w.e.ledger; l != nil {
		if err := l.record(ctx, s.conn, t.g.span, t.written(), t.rej); err != nil {
			return w.txnFailed(ctx, t, judgeTxn(attemptEnd{err: err, sent: true, stopping: ctx.Err() != nil}, false, false), err)
		}
	}
	if ctx.Err() != nil {
		return w.txnFailed(ctx, t, txStop, context.Cause(ctx))
	}
	return w.commit(ctx, t)
}

// txnChunks sends the group's chunks in the open transaction. A row the
// server refuses for its values is rejected and the others sent again in
// the same transaction: the refused statement alone was rolled back.
func (w *worker) txnChunks(ctx context.Context, t *txn) (txStep, error) {
	e, s := w.e, w.s
	queue := slices.Clone(t.chunks)
	for len(queue) > 0 {
		if ctx.Err() != nil { // the load is stopping: no new statement
			t.chunks = append(t.doneChunks(), queue...)
			return txStop, context.Cause(ctx)
		}
		c := queue[0]
		if s.sc != w.plan {
			sub, err := s.sc.resplit(&e.enc, c, landNone)
			if err != nil {
				return w.txnFailed(ctx, t, txReport, err)
			}
			if len(sub) > 1 {
				w.resplit(sub, nil)
			}
			queue = append(sub, queue[1:]...)
			c = queue[0]
		}
		t.at = c
		affected, wasSent, err := s.exec(ctx, c)
		next := judgeTxn(attemptEnd{err: err, sent: wasSent, stopping: ctx.Err() != nil, cause: context.Cause(ctx),
			clientKnown: s.lim.ClientKnown}, e.o.maxRejects != 0, !e.st.ordered())
		if wasSent && (err == nil || countsBytes(err)) {
			e.tally.sent(c.size.Total())
		}
		switch next {
		case txNext:
			t.done = append(t.done, sent{c, affected})
			queue = queue[1:]
			continue
		case txIsolate:
			sub, err := w.isolateInTxn(t, c, err)
			if err != nil {
				return w.txnFailed(ctx, t, txReport, err)
			}
			queue = append(sub, queue[1:]...)
			continue
		}
		t.chunks, t.inFlight = append(t.doneChunks(), queue...), wasSent
		return w.txnFailed(ctx, t, next, err)
	}
	t.chunks = t.doneChunks()
	return txCommitted, nil
}

// commitPart ends the transaction of a stopping load, on its connection
// (no statement in flight): the chunks written so far are committed, as
// they would be chunk by chunk, within the grace period, and the rest of
// the group stays not sent. With none written, it is rolled back.
func (w *worker) commitPart(ctx context.Context, t *txn, cause error) (txStep, error) {
	if len(t.done) == 0 {
		w.rollback(ctx)
		return txStop, cause
	}
	end := t.chunks[len(t.done)].first
	t.g.span.End = end
	t.rej = slices.DeleteFunc(t.rej, func(r Rejection) bool { return r.Row >= end })
	t.chunks = t.doneChunks()
	if l := w.e.ledger; l != nil {
		gctx, cancel := w.s.graceCtx(ctx)
		err := l.record(gctx, w.s.conn, t.g.span, t.written(), t.rej)
		cancel()
		if err != nil {
			w.drop() // not committed: the server rolls it back
			return txStop, cause
		}
	}
	next, err := w.commit(ctx, t)
	if next == txSettle {
		next, err = w.settleCommit(ctx, t)
	}
	if next == txCommitted {
		w.e.commitGroup(t)
		return txStop, cause
	}
	if next != txStop && next != txReport {
		w.drop()
		return txStop, cause
	}
	return next, err
}

// isolateInTxn rejects the row the server refused in chunk c (or cuts c in
// two to find it), remembering it for the group's ledger row, and returns
// the chunks to send instead in the same transaction.
func (w *worker) isolateInTxn(t *txn, c chunk, err error) ([]chunk, error) {
	sub, row, err2 := w.isolateRow(c, err, landNone)
	if row >= 0 {
		t.rej = append(t.rej, Rejection{Row: row, Err: err})
	}
	return sub, err2
}

// txnFailed ends an attempt that failed before COMMIT: the transaction is
// rolled back, and next says what comes of the group.
func (w *worker) txnFailed(ctx context.Context, t *txn, next txStep, err error) (txStep, error) {
	t.err, t.last = err, w.s.lim
	if next == txStop {
		// The server rolls back the transaction of a closed connection; a
		// statement still running there is killed, so that it frees its
		// locks now.
		id := w.s.lim.connID
		w.drop()
		if t.inFlight {
			w.e.killStopped(ctx, id)
		}
		return txStop, err
	}
	w.rollback(ctx)
	switch next {
	case txShrink:
		if err := w.shrinkInTxn(t); err != nil {
			return txReport, err
		}
		return txReplay, nil
	case txLowerClient:
		w.e.lowerClientCap(t.at.size, t.last)
		return txReplay, nil
	case txReport:
		return txReport, w.e.groupError(t, err)
	}
	return txReplay, nil
}

// rollback rolls the open transaction back, within the grace period; the
// server rolls it back anyway once the connection is closed, but a replay
// should not wait for its locks.
func (w *worker) rollback(ctx context.Context) {
	if w.s.running != nil {
		w.drop() // a statement still holds the connection (runDirect)
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.e.env.grace)
	defer cancel()
	if _, err := w.s.conn.ExecContext(rctx, "ROLLBACK"); err != nil {
		w.drop()
	}
}

// shrinkInTxn halves the chunk whose size the server refused (t.at); a
// fresh connection with other limits re-splits it further. A one-row chunk
// is too large, unless the refusal was a network cut after all.
func (w *worker) shrinkInTxn(t *txn) error {
	w.drop()
	e, c := w.e, t.at
	i := slices.IndexFunc(t.chunks, func(d chunk) bool { return d.first == c.first })
	switch {
	case i < 0, c.rows() == 1 && isWriteCut(t.err):
		return nil
	case c.rows() == 1:
		return &RowTooLargeError{Row: c.first, Size: c.size.Execute, Limit: t.last.Packet()}
	}
	half := e.env.plan.config(t.last).halve(&e.enc, t.chunks[i], landNone)
	t.chunks = slices.Concat(t.chunks[:i], half, t.chunks[i+1:])
	return nil
}

// connectTxn makes sure the worker has a live session for an attempt. A
// group in flight across two server restarts is given up: it may be what
// crashes the server.
func (w *worker) connectTxn(ctx context.Context, t *txn) error {
	for {
		if w.s == nil {
			s, err := w.e.reopenFor(ctx, &t.a, t.flight, t.g.span)
			if err != nil {
				t.err = err
				return w.e.giveUpGroup(t, false)
			}
			w.s, t.inFlight = s, false // counted once
			if t.restarts >= 2 {
				t.err = errQueryOfDeath
				return w.e.giveUpGroup(t, false)
			}
		}
		if w.s.alive(ctx) {
			return nil
		}
		w.e.log.Info("batch: idle connection is gone; taking a fresh one", "first", t.g.span.First, "end", t.g.span.End)
		w.drop()
	}
}

// commit sends COMMIT, with the grace period of a sent statement.
func (w *worker) commit(ctx context.Context, t *txn) (txStep, error) {
	s := w.s
	t.last = s.lim
	gctx, cancel := s.graceCtx(ctx)
	defer cancel()
	_, err := s.conn.ExecContext(gctx, "COMMIT")
	if err == nil {
		s.used = time.Now()
		return txCommitted, nil
	}
	t.err, t.inFlight = err, true
	next := judgeCommit(err, ctx.Err() != nil && errors.Is(err, context.Cause(ctx)))
	switch next {
	case txReport:
		return w.txnFailed(ctx, t, txReport, err)
	case txShrink:
		// A group of several chunks is replayed in halves; a single chunk
		// is cut in two itself.
		if len(t.chunks) != 1 {
			return w.txnFailed(ctx, t, txReplay, err)
		}
		t.at = t.chunks[0]
		return w.txnFailed(ctx, t, txShrink, err)
	case txReplay:
		w.rollback(ctx)
	}
	return next, nil
}

// settleCommit finds out whether a COMMIT whose reply was lost committed:
// once the old connection is gone (killed and waited for), by the ledger
// row, or the rows' keys. It replays the group when nothing was written.
func (w *worker) settleCommit(ctx context.Context, t *txn) (txStep, error) {
	e := w.e
	w.drop()
	if e.policy == unknownResend && e.ledger == nil {
		return txReplay, nil // the statements leave the same table run twice
	}
	sctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*e.env.grace)
		defer cancel()
	}
	var so settled
	for {
		s, err := e.openRetrying(sctx, &t.a)
		if err == nil {
			var found bool
			found, err = e.committed(sctx, s, t, &so)
			s.close()
			if err == nil {
				e.log.Info("batch: lost COMMIT settled", "first", t.g.span.First, "end", t.g.span.End,
					"committed", found, "by", e.settledBy())
			}
			if err == nil && found {
				return txCommitted, nil
			}
			if err == nil {
				if ctx.Err() != nil {
					return txStop, context.Cause(ctx) // not written
				}
				return txReplay, nil
			}
		}
		if errors.Is(err, errNotSettled) {
			e.lostGroup(t)
			return txReport, &UnknownOutcomeError{Range: t.g.span, Err: t.err}
		}
		if sctx.Err() != nil || t.a.exhausted() {
			return txReport, e.giveUpGroup(t, true)
		}
		if werr := t.a.wait(sctx); werr != nil {
			return txReport, e.giveUpGroup(t, true)
		}
	}
}

// Why a lost COMMIT could not be settled: errNotGone may pass (try again),
// errNotSettled does not.
var (
	errNotGone    = errors.New("batch: the connection of a lost COMMIT is still on the server")
	errNotSettled = errors.New("batch: nothing tells whether a lost COMMIT committed (no ledger, no NOT NULL unique key)")
)

// settledBy names what settles a lost COMMIT, for the log.
func (e *engine) settledBy() string {
	if e.ledger != nil {
		return "ledger"
	}
	return "keys"
}

// settled is how far the look-ups after a lost COMMIT got on the
// connections that were lost before they ended: once the old connection is
// gone, what it committed stays, so an attempt goes on where the last one
// stopped (with connections killed often, a look-up of every chunk of a
// large group on one connection might never end).
type settled struct {
	gone       bool // the old connection is known to be gone
	chunks     int  // chunks counted
	found, all int  // their rows found, and in all
}

// committed reports, on a fresh session s, whether the group's lost COMMIT
// committed; so records what is known already.
func (e *engine) committed(ctx context.Context, s *session, t *txn, so *settled) (bool, error) {
	if !so.gone && !over(ctx, s, t.last, gone) {
		return false, errNotGone
	}
	so.gone = true
	if e.ledger != nil {
		var found bool
		err := withSyncWait(ctx, s, func() (err error) {
			found, err = e.ledger.committed(ctx, s.h, t.g.span)
			return err
		})
		return found, err
	}
	if e.policy != unknownVerify {
		return false, errNotSettled
	}
	for _, d := range t.chunks[so.chunks:] {
		n, err := e.verify(ctx, s, d)
		if err != nil {
			return false, err
		}
		so.chunks, so.found, so.all = so.chunks+1, so.found+n, so.all+d.rows()
	}
	if so.found != 0 && so.found != so.all {
		return false, errNotSettled
	}
	return so.found == so.all && so.all > 0, nil
}

// killStopped kills connection id, whose statement a stopping load gave
// up on, from a fresh connection within twice the grace period.
func (e *engine) killStopped(ctx context.Context, id uint64) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*e.env.grace)
	defer cancel()
	s, err := e.open(kctx)
	if err != nil {
		return
	}
	defer s.close()
	gone(kctx, s, id)
}

// commitGroup records a committed group's chunks as written.
func (e *engine) commitGroup(t *txn) {
	for _, d := range t.done {
		e.tally.wrote(d.c, d.affected, t.last.node) // the node COMMIT was sent to
	}
}

// giveUpGroup ends a group's retries; unknown says its last COMMIT is
// unsettled, so its rows have an unknown outcome.
func (e *engine) giveUpGroup(t *txn, unknown bool) error {
	span := t.g.span
	err := t.err
	if unknown {
		e.lostGroup(t)
		err = &UnknownOutcomeError{Range: span, Err: t.err}
	}
	return &RetryError{Range: span, Attempts: t.a.n + 1, Elapsed: time.Since(t.a.start),
		ServerRestarted: t.restarts > 0, QueryOfDeath: t.restarts >= 2,
		WaitTimeout: t.last.WaitTimeout, MaxAllowedPacket: t.last.MaxAllowedPacket, Err: err}
}

// lostGroup records the group's rows as having an unknown outcome.
func (e *engine) lostGroup(t *txn) {
	for _, c := range t.chunks {
		e.tally.lost(c)
	}
}

// groupError is the error of a group refused for good: nothing of it is
// written. It names the chunk the server refused.
func (e *engine) groupError(t *txn, err error) error {
	var ce *ChunkError
	var tl *RowTooLargeError
	if errors.As(err, &ce) || errors.As(err, &tl) {
		return err
	}
	if len(t.chunks) > len(t.done) {
		return chunkError(t.chunks[len(t.done)], err)
	}
	return &ChunkError{Range: t.g.span, Row: -1, Err: err}
}

func (t *txn) written() int64 {
	var n int64
	for _, d := range t.done {
		n += int64(d.c.rows())
	}
	return n
}

func (t *txn) doneChunks() []chunk {
	out := make([]chunk, len(t.done))
	for i, d := range t.done {
		out[i] = d.c
	}
	return out
}
