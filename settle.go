package batch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file settles chunks whose last attempt lost its reply: it looks
// their rows up by key on another connection, after making sure the lost
// statement is no longer running.

// lookup settles the worker's chunk after a lost reply, on its fresh
// connection, before anything is sent again. done says the chunk ended
// (written, or reported with the error); otherwise it is to be sent now.
func (w *worker) lookup(ctx context.Context, r *run) (done bool, err error) {
	e := w.e
	for {
		found, err := e.verify(ctx, w.s, r.c)
		switch {
		case err != nil && ctx.Err() == nil && classify(err) != classPermanent && !r.a.exhausted():
			// The look-up lost its connection too: try again on another.
			w.drop()
			if err := r.a.wait(ctx); err != nil {
				return true, e.stopped(r, err)
			}
			if err := w.connect(ctx, r); err != nil {
				return true, err
			}
			continue
		case err != nil:
			return true, e.stopped(r, err)
		}
		v, err := r.f.found(found, r.c.rows())
		switch v.next {
		case stepDone:
			e.log.Info("batch: chunk with unknown outcome found written", "first", r.c.first, "end", r.c.end)
			e.tally.wrote(r.c, int64(found), r.last.node)
			return true, nil
		case stepReport:
			return true, e.report(r.c, v.class, err)
		}
		return false, nil
	}
}

// verify counts how many of chunk c's rows are in the table, by the first
// NOT NULL unique key the inserted columns supply, on session s.
func (e *engine) verify(ctx context.Context, s *session, c chunk) (int, error) {
	key := e.info.notNullKey()
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
	err := withSyncWait(ctx, s, func() error { return s.h.QueryRowContext(ctx, b.String(), args...).Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("batch: looking up a chunk with an unknown outcome: %w", err)
	}
	return n, nil
}

// stopped ends chunk r.c when the batch stops (ctx cancelled, another
// worker's error, a failed look-up). If an earlier attempt may have been
// applied, one last look-up on a fresh connection, within the grace period
// and whatever ctx says, tries to settle it; otherwise it is an unknown
// outcome. The server goes on running a statement whose client is gone
// (waiting for a lock, say), so the look-up is trusted only once that
// statement is known to be over: it is killed first and waited for.
func (e *engine) stopped(r *run, err error) error {
	if !r.f.unknown() {
		return err // nothing of the chunk was written
	}
	c := r.c
	if e.policy == unknownVerify {
		ctx, cancel := context.WithTimeout(context.Background(), 2*e.env.grace)
		defer cancel()
		if s, oerr := e.open(ctx); oerr == nil {
			defer s.close()
			if over(ctx, s, r.last, ended) {
				found, verr := e.verify(ctx, s, c)
				switch {
				case verr == nil && found == c.rows():
					e.tally.wrote(c, int64(found), r.last.node)
					return err
				case verr == nil && found == 0:
					return err // not written: the rows stay not sent
				}
			}
		}
	}
	return e.report(c, classUnknown, err)
}

// ended stops whatever connection id is still running and reports whether
// it is over (gone, or idle) before ctx ends.
func ended(ctx context.Context, s *session, id uint64) bool {
	return killAndWait(ctx, s, id, "KILL QUERY ",
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND NOT IN ('Sleep', 'Killed')")
}

// gone kills connection id, whatever it is doing, and reports whether it
// has left the server before ctx ends: its transaction is then committed
// or rolled back for good.
func gone(ctx context.Context, s *session, id uint64) bool {
	return killAndWait(ctx, s, id, "KILL CONNECTION ", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?")
}

// killAndWait sends kill (KILL QUERY or KILL CONNECTION) for connection id
// on s, then polls count, a COUNT(*) of the process list for id, until it
// is 0; false if either fails or ctx ends first.
func killAndWait(ctx context.Context, s *session, id uint64, kill, count string) bool {
	if id == 0 {
		return false
	}
	// An integer, not a value from the input: KILL takes no placeholder.
	if _, err := s.h.ExecContext(ctx, kill+strconv.FormatUint(id, 10)); err != nil && errNumber(err) != erNoSuchThread {
		return false
	}
	for {
		var n int
		switch err := s.h.QueryRowContext(ctx, count, id).Scan(&n); {
		case err != nil:
			return false
		case n == 0:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}
