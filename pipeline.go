package batch

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// DefaultWorkers is the number of connections a load through a pool uses
// when Workers is not given. Measured on a 2-core machine against MariaDB
// 10.11 (bench/RESULTS.md, narrow rows, medians of 6): 1/2/3/4 workers
// loaded 372k/568k/556k/524k rows/s on a quiet day, 201k/285k/270k/276k on
// a slow one; more than two bring nothing there.
const DefaultWorkers = 2

// pipeline sends chunks through workers, each on a connection of its own.
// Insert, Replace and Writer all go through it.
type pipeline struct {
	e      *engine
	ctx    context.Context // cancelled at the first error, or when a call's ctx is
	cancel context.CancelCauseFunc
	work   chan chunk
	wg     sync.WaitGroup // workers
	planSC splitConfig    // limits of the first connection: how chunks are planned
	order  *keyOrder      // non-nil when chunks sharing a key must not overlap
	tuner  *tuner         // non-nil with ChunkTime

	mu       sync.Mutex
	errs     []error
	inflight int
	idle     chan struct{} // closed when inflight drops to 0
}

// errStopped is the cause of the pipeline's cancellation after a worker's
// own error; it is never returned.
var errStopped = errors.New("batch: stopped after another chunk's error")

func (e *engine) start(ctx context.Context) (*pipeline, error) {
	a := attempts{policy: e.o.retry, start: time.Now()}
	s, err := e.openRetrying(ctx, &a)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	p := &pipeline{e: e, ctx: pctx, cancel: cancel, planSC: s.sc, idle: make(chan struct{})}
	close(p.idle)
	workers := e.workerCount()
	if e.pool != nil {
		// The keys decide both per-key order between workers and what can
		// be done with a chunk whose reply is lost.
		if s, err = e.readInfo(ctx, s, &a); err != nil {
			return nil, err
		}
	}
	if workers > 1 && e.st.ordered() {
		// Chunks that share a key must not overlap, or a later row could
		// lose to an earlier one. Without the keys, one worker keeps order.
		switch {
		case !e.infoKnown:
			workers = 1
		case len(e.info.keys) > 0:
			p.order = newKeyOrder()
		}
	}
	if e.o.chunkTime > 0 {
		p.tuner = &tuner{target: e.o.chunkTime, max: s.sc.maxRows, start: min(defaultRows(e.cols), s.sc.maxRows)}
	}
	e.direct = e.spareConn(workers)
	p.work = make(chan chunk, workers)
	for i := 0; i < workers; i++ {
		var first *session
		if i == 0 {
			first = s
		}
		p.wg.Add(1)
		go p.worker(first)
	}
	return p, nil
}

// readInfo reads the target table's keys on s, or on a fresh session if s
// dies meanwhile. It returns the session to go on with.
func (e *engine) readInfo(ctx context.Context, s *session, a *attempts) (*session, error) {
	for {
		info, err := readTableInfo(ctx, s.h, e.st.table, e.st.columns)
		if err == nil {
			e.info, e.infoKnown = info, true
			return s, nil
		}
		if classify(err) == classPermanent || a.exhausted() {
			e.log.Warn("batch: cannot read the table's keys; chunks with a lost reply will be reported, not resent", "err", err)
			return s, nil
		}
		e.led.retried()
		e.log.Warn("batch: reading the table's keys failed; retrying", "errno", errNumber(err), "attempt", a.n+1)
		s.discard()
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
		if s, err = e.openRetrying(ctx, a); err != nil {
			return nil, err
		}
	}
}

// submit plans the rows of vals (input rows base, base+1, ...) into chunks
// and queues them. Every row is checked against the limits before the first
// chunk is queued. ctx bounds the waiting only; cancelling it stops the
// pipeline.
//
// With keepTail, a last chunk that is not full (it ends because vals does,
// below the target rows) is not queued: the Writer keeps those rows to
// complete a chunk with the rows written next, instead of sending a short
// statement per hand-over. It returns how many rows were queued.
func (p *pipeline) submit(ctx context.Context, vals valueRows, base int, keepTail bool) (int, error) {
	if err := p.err(); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { p.cancel(context.Cause(ctx)) })
	defer stop()
	if p.tuner != nil {
		return p.submitTuned(vals, base, keepTail)
	}
	chunks, err := p.planSC.split(nil, &p.e.enc, vals, base)
	if err != nil {
		return 0, err
	}
	if last := len(chunks) - 1; keepTail && last >= 0 && chunks[last].rows() < p.planSC.maxRows {
		chunks = chunks[:last]
	}
	queued := 0
	for _, c := range chunks {
		if err := p.queue(c); err != nil {
			return queued, err
		}
		queued += c.rows()
	}
	return queued, nil
}

// submitTuned plans one chunk at a time, at the row count the tuner asks for
// now.
func (p *pipeline) submitTuned(vals valueRows, base int, keepTail bool) (int, error) {
	sc := p.planSC
	if err := sc.checkRows(&p.e.enc, vals, base); err != nil {
		return 0, err
	}
	n := vals.len()
	for first := 0; first < n; {
		sc.maxRows = p.tuner.rows()
		c, err := sc.nextAt(&p.e.enc, vals, first, base)
		if err != nil {
			return first, err
		}
		if keepTail && c.end-base == n && c.rows() < sc.maxRows {
			return first, nil
		}
		if err := p.queue(c); err != nil {
			return first, err
		}
		first = c.end - base
	}
	return n, nil
}

// queue hands chunk c to the workers, after the chunks in flight that share
// a key with it.
func (p *pipeline) queue(c chunk) error {
	if p.order != nil {
		c.keys = p.e.info.keyHashes(nil, c, p.e.cols)
		if err := p.order.acquire(p.ctx, c.keys); err != nil {
			return p.errOr(err)
		}
	}
	p.mu.Lock()
	if p.inflight == 0 {
		p.idle = make(chan struct{})
	}
	p.inflight++
	p.mu.Unlock()
	select {
	case p.work <- c:
		return nil
	case <-p.ctx.Done():
		p.done(c)
		return p.errOr(context.Cause(p.ctx))
	}
}

// done marks chunk c finished, sent or not.
func (p *pipeline) done(c chunk) {
	if p.order != nil {
		p.order.release(c.keys)
	}
	p.mu.Lock()
	if p.inflight--; p.inflight == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// flush waits until every queued chunk is finished.
func (p *pipeline) flush(ctx context.Context) error {
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
	close(p.work)
	p.wg.Wait()
	err := p.err()
	p.cancel(errStopped)
	return err
}

func (p *pipeline) worker(s *session) {
	defer p.wg.Done()
	defer func() { s.close() }()
	for c := range p.work {
		if p.ctx.Err() == nil {
			start := time.Now()
			if err := p.e.sendAll(p.ctx, &s, p.planSC, c); err != nil {
				p.fail(err)
			} else if p.tuner != nil {
				p.tuner.observe(c.rows(), time.Since(start))
			}
		}
		p.done(c)
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

// sendAll sends chunk c, and the chunks it is re-split into, in order.
func (e *engine) sendAll(ctx context.Context, sp **session, planSC splitConfig, c chunk) error {
	queue := []chunk{c}
	for len(queue) > 0 {
		sub, err := e.send(ctx, sp, planSC, queue[0])
		if err != nil {
			return err
		}
		queue = append(sub, queue[1:]...)
	}
	return nil
}

// tuner adapts the rows per statement so that a chunk takes about target
// (ChunkTime), from the time chunks took so far. It only picks shapes of the
// ladder (shapeFloor), so prepared statements keep being reused.
type tuner struct {
	mu     sync.Mutex
	target time.Duration
	max    int     // the ceiling from the limits and MaxRows
	start  int     // rows until the first observation
	perRow float64 // moving average of seconds per row; 0 before any chunk
}

func (t *tuner) rows() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perRow == 0 {
		return t.start
	}
	k := int(t.target.Seconds() / t.perRow)
	return shapeFloor(max(1, min(k, t.max)), t.max)
}

func (t *tuner) observe(rows int, d time.Duration) {
	x := d.Seconds() / float64(rows)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perRow == 0 {
		t.perRow = x
		return
	}
	t.perRow = 0.7*t.perRow + 0.3*x
}
