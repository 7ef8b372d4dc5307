package batch

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// DefaultWorkers is the number of connections a load through a pool uses
// when [Workers] is not given: on a 2-core machine more than two brought
// nothing (bench/RESULTS.md).
const DefaultWorkers = 2

// pipeline sends chunks through workers, each on a connection of its own.
// Insert, Replace and Writer all go through it.
//
// The workers run in an errgroup.Group whose limit is the worker count, but
// they report their errors to the pipeline rather than through the group:
// a Result with every error (each UnknownOutcomeError among them) needs all
// of them, where Wait keeps the first.
type pipeline struct {
	e      *engine
	ctx    context.Context // cancelled at the first error, or when a call's ctx is
	cancel context.CancelCauseFunc
	work   chan group
	group  errgroup.Group // the workers
	planSC splitConfig    // limits of the first connection: how chunks are planned
	order  *keyOrder      // non-nil when chunks sharing a key must not overlap
	tuner  *tuner         // non-nil with ChunkTime or MaxRejects
	size   int            // chunks per group (CommitEvery, when groups are transactions)
	spread int            // workers to spread an Insert's groups over, until the first chunk sets size; 0 after
	skip   []Range        // input rows an earlier run of the load committed (Ledger), sorted

	// forming is the group being filled by submit, not yet queued; the
	// keys it holds (per-key order) are in formKeys too.
	forming  group
	formKeys map[uint64]struct{}

	mu       sync.Mutex
	errs     []error
	inflight int
	idle     chan struct{} // closed when inflight drops to 0
}

// errStopped is the cause of the pipeline's cancellation after a worker's
// own error; it is never returned.
var errStopped = errors.New("batch: stopped after another chunk's error")

// start opens the first connection, reads the table's keys, and starts the
// workers.
func (e *engine) start(ctx context.Context) (*pipeline, error) {
	a := attempts{policy: e.o.retry, start: time.Now()}
	s, err := e.openRetrying(ctx, &a)
	if err != nil {
		return nil, err
	}
	if e.pool != nil {
		// The keys decide both per-key order between workers and what can
		// be done with a chunk whose reply is lost.
		if s, err = e.readInfo(ctx, s, &a); err != nil {
			return nil, err
		}
	}
	e.policy = policyFor(e.info, e.infoKnown, e.st.ordered())
	if err := e.checkRejects(ctx, s); err != nil {
		s.close()
		return nil, err
	}
	s, skip, err := e.openLedger(ctx, s, &a)
	if err != nil {
		s.close()
		return nil, err
	}
	pctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	p := &pipeline{e: e, ctx: pctx, cancel: cancel, planSC: s.sc, idle: make(chan struct{}),
		size: e.groupSize(), skip: skip, formKeys: map[uint64]struct{}{}}
	close(p.idle)
	workers := p.orderWorkers(e.workerCount())
	p.spread = workers
	if e.o.chunkTime > 0 {
		p.tuner = &tuner{target: e.o.chunkTime, max: s.sc.maxRows, start: min(defaultRows(e.cols), s.sc.maxRows)}
	} else if e.o.maxRejects != 0 {
		p.tuner = &tuner{max: s.sc.maxRows}
	}
	e.env.direct = e.spareConn(workers)
	p.work = make(chan group, workers)
	p.group.SetLimit(workers)
	for i := range workers {
		w := &worker{e: e, plan: p.planSC}
		if i == 0 {
			w.s = s
		}
		p.group.Go(func() error { p.serve(w); return nil })
	}
	return p, nil
}

// checkRejects refuses MaxRejects on a table whose engine does not roll a
// refused statement back: rows before the refused one could stay written.
// On a caller's handle the table is read here, on the handle. A table that
// does not exist is left to the server to report.
func (e *engine) checkRejects(ctx context.Context, s *session) error {
	if e.o.maxRejects == 0 {
		return nil
	}
	if !e.infoKnown {
		if info, err := readTableInfo(ctx, s.h, e.st.table, e.st.columns); err == nil {
			e.info, e.infoKnown = info, true
		}
	}
	switch {
	case e.infoKnown && !e.info.found:
		return nil // no such table: the first statement gets the server's error (1146)
	case !e.infoKnown || !e.info.transactional():
		return detail(ErrNotTransactional, "table %q, engine %q", e.st.table, e.info.engine)
	}
	return nil
}

// orderWorkers sets up per-key order when the statement needs it and
// returns the workers to use: chunks that share a key must not overlap, or
// a later row could lose to an earlier one. Without the keys, one worker
// keeps order.
func (p *pipeline) orderWorkers(workers int) int {
	e := p.e
	if workers <= 1 || !e.st.ordered() && e.o.maxRejects == 0 { // with MaxRejects a 1062 rejects the later row
		return workers
	}
	switch {
	case !e.infoKnown:
		return 1
	case len(e.info.keys) > 0:
		p.order = newKeyOrder()
	}
	return workers
}

// submit plans the rows of vals (input rows base, base+1, ...) into chunks
// and queues them, in groups of p.size. Rows an earlier run committed
// (p.skip) are passed over. Every row is checked against the limits before
// the first chunk is queued. ctx bounds the waiting only; cancelling it
// stops the pipeline.
//
// With keepTail, a last chunk that is not full (it ends because vals does,
// below the target rows) is not queued: the Writer keeps those rows to
// complete a chunk with the rows written next, instead of sending a short
// statement per hand-over. It returns how many rows were queued or passed
// over, from the first.
func (p *pipeline) submit(ctx context.Context, vals valueRows, base int, keepTail bool) (int, error) {
	if err := p.err(); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { p.cancel(context.Cause(ctx)) })
	defer stop()
	end := base + vals.len()
	todo := complement(end, p.skip, []Range{{0, base}})
	for i := 0; len(todo) > 1 && i < len(todo); i++ { // one range: plan checks it
		r := todo[i]
		if err := p.planSC.checkRows(&p.e.enc, vals.slice(r.First-base, r.End-base), r.First); err != nil {
			return 0, err
		}
	}
	consumed := base
	for _, r := range todo {
		consumed = r.First // the rows before were committed by an earlier run
		n, err := p.submitRange(vals.slice(r.First-base, r.End-base), r.First, keepTail && r.End == end)
		consumed += n
		if err != nil || consumed < r.End {
			return consumed - base, err
		}
	}
	return end - base, nil
}

// submitRange queues the chunks of vals, input rows base, base+1, ...; see
// submit.
func (p *pipeline) submitRange(vals valueRows, base int, keepTail bool) (int, error) {
	queued := 0
	for c, err := range p.planSC.plan(&p.e.enc, vals, base, p.tuner) {
		if err != nil {
			return queued, err
		}
		if keepTail && c.end == base+vals.len() && c.rows() < p.planSC.target(p.tuner) {
			break
		}
		if err := p.queue(c); err != nil {
			return queued, err
		}
		queued += c.rows()
	}
	return queued, nil
}

// queue adds chunk c to the forming group, which is handed to the workers
// once full or when c does not follow it. With per-key order, the group
// waits for the groups in flight that share a key with c.
func (p *pipeline) queue(c chunk) error {
	if p.spread > 0 { // the first chunk: how many chunks the input makes
		p.size, p.spread = spread(p.size, p.e.tally.total, c.rows(), p.spread), 0
	}
	if len(p.forming.chunks) > 0 && c.first != p.forming.span.End {
		if err := p.sendForming(); err != nil {
			return err
		}
	}
	if p.order != nil {
		fresh := p.newKeys(p.e.info.keyHashes(nil, c, p.e.cols))
		if err := p.order.acquire(p.ctx, fresh); err != nil {
			p.order.release(p.forming.keys)
			p.forming, p.formKeys = group{}, map[uint64]struct{}{}
			return p.errOr(err)
		}
		p.forming.keys = append(p.forming.keys, fresh...)
	}
	if len(p.forming.chunks) == 0 {
		p.forming.span.First = c.first
	}
	p.forming.chunks = append(p.forming.chunks, c)
	p.forming.span.End = c.end
	if len(p.forming.chunks) >= p.size {
		return p.sendForming()
	}
	return nil
}

// newKeys is the distinct hashes of hs that the forming group does not
// hold yet, in place of hs, and marks them held: a group may hold a key
// twice (its chunks run in order, in one transaction), another group in
// flight may not.
func (p *pipeline) newKeys(hs []uint64) []uint64 {
	fresh := hs[:0]
	for _, h := range hs {
		if _, held := p.formKeys[h]; !held {
			p.formKeys[h] = struct{}{}
			fresh = append(fresh, h)
		}
	}
	return fresh
}

// sendForming hands the forming group, if any, to the workers.
func (p *pipeline) sendForming() error {
	g := p.forming
	p.forming = group{}
	clear(p.formKeys)
	if len(g.chunks) == 0 {
		return nil
	}
	p.mu.Lock()
	if p.inflight == 0 {
		p.idle = make(chan struct{})
	}
	p.inflight++
	p.mu.Unlock()
	select {
	case p.work <- g:
		return nil
	case <-p.ctx.Done():
		p.done(g)
		return p.errOr(context.Cause(p.ctx))
	}
}

// done marks group g finished, sent or not.
func (p *pipeline) done(g group) {
	if p.order != nil {
		p.order.release(g.keys)
	}
	p.mu.Lock()
	if p.inflight--; p.inflight == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// flush queues the forming group and waits until every queued group is
// finished.
func (p *pipeline) flush(ctx context.Context) error {
	if err := p.sendForming(); err != nil {
		return err
	}
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		p.cancel(context.Cause(ctx))
		<-idle // in-flight chunks finish within their grace
	}
	return p.err()
}

// close stops the workers after the queued chunks and returns the errors.
func (p *pipeline) close(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.cancel(context.Cause(ctx)) })
	defer stop()
	serr := p.sendForming()
	close(p.work)
	p.group.Wait()
	err := p.err()
	if err == nil {
		err = serr
	}
	p.cancel(errStopped)
	return err
}

// serve sends the queued groups on worker w until the queue is closed.
func (p *pipeline) serve(w *worker) {
	defer func() { w.s.close() }()
	for g := range p.work {
		if p.ctx.Err() == nil {
			start, rejects := time.Now(), p.e.tally.rejects()
			if err := w.deliverGroup(p.ctx, g); err != nil {
				p.fail(err)
			} else if p.tuner != nil {
				p.tuner.observe(g.span.Len()/len(g.chunks), time.Since(start)/time.Duration(len(g.chunks)))
				p.tuner.observeRejects(g.span.Len(), p.e.tally.rejects()-rejects)
			}
		}
		p.done(g)
	}
}

// fail records a worker's error and stops the pipeline: no new chunk is
// sent; chunks in flight finish.
func (p *pipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var uo *UnknownOutcomeError
	if cause := context.Cause(p.ctx); cause != nil && !errors.As(err, &uo) &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cause)) {
		return // stopped by the cancellation, not a failure of its own
	}
	p.errs = append(p.errs, err)
	p.cancel(errStopped)
}

// err is every worker's error, and the cause of a cancellation that came
// from a caller's ctx.
func (p *pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := p.errs
	if cause := context.Cause(p.ctx); cause != nil && !errors.Is(cause, errStopped) {
		errs = append([]error{cause}, errs...)
	}
	return errors.Join(errs...)
}

func (p *pipeline) errOr(err error) error {
	if e := p.err(); e != nil {
		return e
	}
	return err
}

// workerCount is Workers (default DefaultWorkers) for a pool, capped by its
// MaxOpenConns so that the batch never waits for a connection it holds
// itself; 1 for a caller-owned handle.
func (e *engine) workerCount() int {
	if e.pool == nil {
		return 1
	}
	n := e.o.workers
	if n <= 0 {
		n = DefaultWorkers
	}
	if m, ok := e.maxOpenConns(); ok && m > 0 {
		n = min(n, m)
	}
	return n
}

// maxOpenConns is the pool's SetMaxOpenConns (0: no limit), and whether the
// pool says it (a *sql.DB, or anything with its Stats method).
func (e *engine) maxOpenConns() (int, bool) {
	st, ok := e.db.(interface{ Stats() sql.DBStats })
	if !ok {
		return 0, false
	}
	return st.Stats().MaxOpenConnections, true
}

// spareConn reports whether the pool can open a connection beyond the
// given number of workers (no MaxOpenConns, or a larger one), as the
// settling of a statement runDirect gave up on needs.
func (e *engine) spareConn(workers int) bool {
	m, ok := e.maxOpenConns()
	return ok && (m == 0 || m > workers)
}
