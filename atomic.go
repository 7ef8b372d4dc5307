package batch

import (
	"context"
	"time"
)

// runAtomic writes every row of vals in one transaction on one connection of
// the pool (the Atomic option). A failure before COMMIT that leaves nothing
// written (the server rolls back the open transaction of a lost connection,
// and a deadlock rolls it back too) replays the whole batch on a fresh
// connection; a failure of COMMIT itself leaves the outcome unknown.
func (e *engine) runAtomic(ctx context.Context, vals valueRows) error {
	a := attempts{policy: e.o.retry, start: time.Now()}
	for {
		done, err := e.atomicOnce(ctx, vals, &a)
		if done {
			return err
		}
		e.tally.retried()
		e.log.Warn("batch: atomic batch rolled back; replaying it", "class", classify(err).String(),
			"errno", errNumber(err), "attempt", a.n+1)
		if a.exhausted() {
			return &RetryError{Range: Range{End: vals.len()}, Attempts: a.n + 1, Elapsed: time.Since(a.start), Err: err}
		}
		if werr := a.wait(ctx); werr != nil {
			return werr
		}
	}
}

// atomicOnce makes one attempt. done is false when the attempt rolled back
// cleanly and may be replayed.
func (e *engine) atomicOnce(ctx context.Context, vals valueRows, a *attempts) (done bool, err error) {
	s, err := e.openRetrying(ctx, a)
	if err != nil {
		return true, err
	}
	defer s.discardUnlessClean()
	chunks, err := s.sc.split(nil, &e.enc, vals, 0)
	if err != nil {
		return true, err
	}
	// The transaction is opened and ended with statements on the pinned
	// connection rather than a *sql.Tx, so that the chunks go through the
	// same driver-connection path as outside Atomic. The connection goes back
	// to the pool only after COMMIT succeeded (discardUnlessClean); on any
	// other way out it is closed, and the server rolls back what it holds.
	if _, err := s.conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
		return classify(err) == classPermanent, err
	}
	var affected []int64
	for _, c := range chunks {
		n, sent, err := s.exec(ctx, c)
		if sent {
			e.tally.sent(c.size.Total())
		}
		if err != nil {
			// Roll back now rather than when the server notices the closed
			// connection, so that a replay does not wait for its locks.
			s.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			if ctx.Err() != nil {
				return true, context.Cause(ctx)
			}
			if classify(err) == classPermanent || tooLargeForGood(err) {
				return true, chunkError(c, err)
			}
			if isPktTooLarge(err) && !s.lim.ClientKnown {
				e.lowerClientCap(c.size, s.lim) // the replay splits smaller
			}
			return false, err // not committed: the server rolls it back
		}
		affected = append(affected, n)
	}
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		switch classify(err) {
		case classUnknown:
			return true, e.report(chunk{first: 0, end: vals.len()}, classUnknown, err)
		case classPermanent:
			return true, err
		}
		return tooLargeForGood(err), err
	}
	s.clean = true
	for i, c := range chunks {
		e.tally.wrote(c, affected[i], s.lim.node)
	}
	return true, nil
}

// tooLargeForGood reports whether err refuses the transaction's size itself
// (a Galera or Group Replication write set over its limit, a TiDB
// transaction too large): the one transaction of Atomic cannot be cut, so a
// replay would be refused the same way. A packet over the limit (1153, the
// driver's ErrPktTooLarge, a cut write) is not: a replay re-reads the
// limits and splits smaller.
func tooLargeForGood(err error) bool {
	return classify(err) == classTooLarge && errNumber(err) != erNetPacketTooLarge && !isPktTooLarge(err) && !isWriteCut(err)
}
