package batch

import (
	"context"
	"fmt"
	"iter"
	"slices"
)

// Writer streams rows into a table, for inputs that do not fit in memory. It
// buffers rows until a chunk is full, then hands the chunk to its workers,
// each on a connection of its own (see Workers). Each group of chunks
// written in one transaction ([CommitEvery]) is kept until its COMMIT, for
// a replay, so memory stays at about (2 x workers + 1) x CommitEvery chunks
// whatever the input size. It goes through the same code
// as Insert: the same checks, sizing, splitting and retries.
//
// Write copies what it keeps: a []byte value is copied, so the caller may
// reuse its buffers as soon as Write returns. As everywhere in the package, a
// nil []byte (or json.RawMessage) is NULL and an empty non-nil one is an
// empty value, as go-sql-driver/mysql defines them; Insert, Structs and a
// Writer write the same bytes for the same values.
//
// A Writer is not safe for concurrent use. Its first error is sticky: every
// later call returns it, and Close returns it with the Result. Every call
// that may send takes a ctx: cancelling it stops the sending of new chunks
// at once (chunks already sent get a short grace to answer, so the Result
// stays exact) and makes the cancellation the Writer's error.
type Writer struct {
	e       *engine
	p       *pipeline
	cols    int
	pending []any // normalized values of rows not yet queued
	base    int   // input index of pending's first row
	bytes   int   // approximate EXECUTE bytes of pending
	n       int   // rows accepted
	err     error
	closed  bool
	res     Result
}

// NewWriter returns a Writer that inserts into table, one value per column
// in each Write. The options are those of Insert. Bad options or names are
// reported here; nothing touches the database before the first chunk is
// full (or Flush).
func NewWriter(db DB, table string, columns []string, opts ...Option) (*Writer, error) {
	return newWriter(db, verbInsert, table, columns, opts)
}

// NewReplaceWriter is NewWriter for REPLACE statements (see Replace).
func NewReplaceWriter(db DB, table string, columns []string, opts ...Option) (*Writer, error) {
	return newWriter(db, verbReplace, table, columns, opts)
}

func newWriter(db DB, v verb, table string, columns []string, opts []Option) (*Writer, error) {
	o := buildOptions(opts)
	if o.atomic {
		return nil, fmt.Errorf("%w: Atomic needs replayable input (Insert or Replace), not a Writer", ErrOptions)
	}
	e, err := newEngine(db, v, table, columns, &o, newTally(&o, -1))
	if err != nil {
		return nil, err
	}
	return &Writer{e: e, cols: len(columns)}, nil
}

// Write adds one row: one value per column, of the types Insert accepts.
// A row with a bad value is refused (and the error is sticky) before
// anything of it is kept.
func (w *Writer) Write(ctx context.Context, values ...any) error {
	if err := w.usable(); err != nil {
		return err
	}
	if len(values) != w.cols {
		return w.setErr(arityError(w.n, len(values), w.cols))
	}
	if w.pending == nil {
		w.pending = make([]any, 0, w.flushRows()*w.cols)
	}
	k := len(w.pending)
	if k+w.cols > cap(w.pending) {
		w.pending = slices.Grow(w.pending, w.cols) // flushRows grew since the buffer was made
	}
	w.pending = w.pending[:k+w.cols]
	err := normalizeInto(w.pending[k:], w.n, w.e.st.columns, func(j int) any { return values[j] }, &w.e.enc, true)
	if err != nil {
		clear(w.pending[k:])
		w.pending = w.pending[:k]
		return w.setErr(err)
	}
	w.n++
	w.bytes += w.inline(w.pending[len(w.pending)-w.cols:])
	if rows := len(w.pending) / w.cols; rows >= w.flushRows() || w.bytes >= w.flushBytes() {
		return w.setErr(w.queue(ctx, false))
	}
	return nil
}

// Reject records the next input row as refused by the caller, without
// sending anything: a record it could not parse or convert, say. The row
// takes its place in the input's numbering (the next Write is the row
// after it), and it counts like a row the server refused for its values:
// in [Result].Rejected (or to [OnReject]) with err as Rejection.Err, in
// Rejects, and against [MaxRejects]. Over the budget it returns an error
// wrapping [ErrTooManyRejects], which is sticky. With a [Ledger] a rejected
// row is in no ledger row: a resumed load meets it again. The rows written
// before it are handed to the workers first (a statement never spans a
// rejected row).
func (w *Writer) Reject(ctx context.Context, err error) error {
	if uerr := w.usable(); uerr != nil {
		return uerr
	}
	if err == nil {
		return w.setErr(fmt.Errorf("%w: Reject needs the reason, a non-nil error", ErrOptions))
	}
	if qerr := w.queue(ctx, true); qerr != nil {
		return w.setErr(qerr)
	}
	row := w.n
	w.n++
	w.base = w.n
	if !w.e.tally.reject(row, err) {
		return w.setErr(&ChunkError{Range: Range{row, row + 1}, Row: row, Err: &tooManyRejects{cause: err}})
	}
	return nil
}

// WriteAll writes every row of seq, then flushes. It stops at the first
// error, which is sticky as with Write.
func (w *Writer) WriteAll(ctx context.Context, seq iter.Seq[[]any]) error {
	for row := range seq {
		if err := w.Write(ctx, row...); err != nil {
			return err
		}
	}
	return w.Flush(ctx)
}

// Flush sends every row written so far and waits until each is written (or
// the Writer fails).
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.queue(ctx, true); err != nil {
		return w.setErr(err)
	}
	if w.p == nil {
		return nil
	}
	return w.setErr(w.p.flush(ctx))
}

// Close flushes, stops the workers, releases the connections and prepared
// statements, and returns what was written. The Result covers every row
// given to Write. Calling Close again returns the same Result and ErrClosed.
func (w *Writer) Close(ctx context.Context) (Result, error) {
	if w.closed {
		return w.res, ErrClosed
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.queue(ctx, true)
	}
	if w.p != nil {
		if perr := w.p.close(ctx); err == nil {
			err = perr
		}
	}
	w.res = w.e.tally.result(w.n)
	return w.res, err
}

// queue hands the pending rows to the workers, starting them on first use.
// Unless all, the rows of a last chunk that is not full stay pending.
func (w *Writer) queue(ctx context.Context, all bool) error {
	if len(w.pending) == 0 {
		return nil
	}
	if w.p == nil {
		p, err := w.e.start(ctx)
		if err != nil {
			return err
		}
		w.p = p
	}
	vals := flatRows(w.pending, w.cols)
	queued, err := w.p.submit(ctx, vals, w.base, !all)
	w.base += queued
	// The queued chunks keep the old buffer; the rest moves to a new one.
	rest := w.pending[queued*w.cols:]
	w.pending, w.bytes = nil, 0
	if len(rest) > 0 {
		w.pending = make([]any, 0, max(len(rest), w.flushRows()*w.cols))
		w.pending = append(w.pending, rest...)
		w.bytes = w.inline(rest)
	}
	return err
}

// inline is the EXECUTE bytes of normalized values, all counted inline: the
// estimate by which the Writer hands rows over (the splitter then sizes them
// exactly).
func (w *Writer) inline(vals []any) int {
	n := 0
	for _, v := range vals {
		in, _ := w.e.enc.inlineSize(v, 1<<62)
		n += in
	}
	return n
}

// flushBytes is how many EXECUTE bytes make a chunk now. Before the first
// connection's limits are known: MaxBytes, else DefaultBytes, the budget a
// connection's packet limit can only lower, so the first chunk is bounded in
// bytes too and sized like the next ones.
func (w *Writer) flushBytes() int {
	switch {
	case w.p != nil:
		return w.p.planSC.maxBytes
	case w.e.o.maxBytes > 0:
		return w.e.o.maxBytes
	}
	return DefaultBytes
}

// flushRows is how many rows make a chunk now.
func (w *Writer) flushRows() int {
	switch {
	case w.p != nil && w.p.tuner != nil:
		return w.p.tuner.rows()
	case w.p != nil:
		return w.p.planSC.maxRows
	case w.e.o.chunkTime > 0 && w.e.o.maxRows == 0:
		return defaultRows(w.cols)
	}
	return w.e.o.targetRows(w.cols)
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func (w *Writer) setErr(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return err
}
