package batch

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

// Range is the input rows First to End-1.
type Range struct {
	First, End int
}

// Len is the number of rows in the range.
func (r Range) Len() int { return r.End - r.First }

// String formats the range as "[First, End)".
func (r Range) String() string { return "[" + strconv.Itoa(r.First) + ", " + strconv.Itoa(r.End) + ")" }

// Result says what a call wrote. It is returned with every error, and is
// exact even then: every input row is in exactly one of Written, Unknown,
// NotSent (each a sorted list of disjoint ranges) and Rejected, so a caller
// can resume by sending NotSent (and, after checking, Unknown) again.
type Result struct {
	Rows         int64 // input rows confirmed written (the sum of Written)
	RowsAffected int64 // the server's count, summed over statements
	Chunks       int   // statements that succeeded
	Bytes        int64 // payload bytes of EXECUTE and long-data packets sent, resends included
	Retries      int   // chunks resent, or re-split after a limit was hit
	// MinPacketLimit is the smallest packet limit (Limits.Packet) seen on
	// the connections used: no packet sent was larger. 0 if none was opened.
	MinPacketLimit int

	Written []Range // confirmed written
	Unknown []Range // sent, outcome unknown (see UnknownOutcomeError)
	NotSent []Range // not written: never sent, or refused by the server

	// Rejected are the rows the server refused for their own values and
	// that were skipped (MaxRejects), sorted by row; nil when OnReject
	// took them. Rejects counts them either way.
	Rejected []Rejection
	Rejects  int

	// Resumed is how many of the rows in Written an earlier run of the same
	// load committed (Ledger): they were found in the ledger and not sent.
	Resumed int64

	// NodeRows is, with Failover, the rows written through each node (0:
	// the DB given to the load, then the alternates in order); Moves lists
	// when the load moved from one node to another, in order. Rows found
	// written by a look-up count for the node that sent them.
	NodeRows []int64
	Moves    []Move

	Elapsed time.Duration
}

// Rejection is an input row the server refused for its values (see
// MaxRejects). Err is the server's error as it wrote it, a
// *mysql.MySQLError: its message may name the column and quote the value.
type Rejection struct {
	Row int
	Err error
}

// RowsPerSecond is Rows divided by Elapsed.
func (r Result) RowsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Elapsed.Seconds()
}

// tally is the single place where chunk outcomes are recorded; Result is
// read off it. Only the retry layer (retry.go, settle.go), Atomic and
// opening a connection (the packet limit) write to it. Safe for concurrent
// use.
type tally struct {
	mu      sync.Mutex
	res     Result
	unknown []Range
	written []Range

	// Rejections: kept, or handed to onReject, up to maxRejects (< 0: no
	// limit).
	rejected   []Rejection
	rejRows    []Range // the rejected rows, kept even when onReject takes the errors
	maxRejects int
	onReject   func(Rejection)
	rejectMu   sync.Mutex // serializes onReject calls

	progress func(Progress)
	progMu   sync.Mutex // serializes progress calls
	total    int        // input rows, or -1 when unknown (a Writer)
	start    time.Time
}

// newTally returns the tally of a load of total input rows (-1: unknown)
// with options o (nil: the defaults).
func newTally(o *options, total int) *tally {
	t := &tally{total: total, start: time.Now()}
	if o != nil {
		t.progress, t.maxRejects, t.onReject = o.progress, o.maxRejects, o.onReject
	}
	return t
}

// wrote records chunk c written through node, the server counting
// affected rows.
func (l *tally) wrote(c chunk, affected int64, node int) {
	l.mu.Lock()
	if node < len(l.res.NodeRows) {
		l.res.NodeRows[node] += int64(c.rows())
	}
	l.written = append(l.written, Range{c.first, c.end})
	l.res.Rows += int64(c.rows())
	l.res.RowsAffected += affected
	l.res.Chunks++
	l.mu.Unlock()
	l.report()
}

// report calls the progress callback, one call at a time and in order.
func (l *tally) report() {
	if l.progress == nil {
		return
	}
	l.progMu.Lock()
	defer l.progMu.Unlock()
	l.mu.Lock()
	p := Progress{Rows: l.res.Rows, Bytes: l.res.Bytes, Chunks: l.res.Chunks, Retries: l.res.Retries,
		Total: l.total, Elapsed: time.Since(l.start)}
	l.mu.Unlock()
	l.progress(p)
}

// Progress is a snapshot of a load, given to the OnProgress callback.
type Progress struct {
	Rows    int64 // input rows confirmed written so far
	Bytes   int64 // payload bytes sent so far
	Chunks  int   // statements that succeeded
	Retries int
	Total   int // input rows in all, or -1 when unknown (a Writer)
	Elapsed time.Duration
}

// reject records row as rejected for err and reports whether the budget
// allowed it; a row over the budget is not recorded (it stays not sent).
func (l *tally) reject(row int, err error) bool {
	l.mu.Lock()
	if l.maxRejects >= 0 && l.res.Rejects >= l.maxRejects {
		l.mu.Unlock()
		return false
	}
	l.res.Rejects++
	r := Rejection{Row: row, Err: err}
	if l.onReject == nil {
		l.rejected = append(l.rejected, r)
	}
	l.rejRows = append(l.rejRows, Range{row, row + 1})
	if n := len(l.rejRows); n >= 64 && n&(n-1) == 0 {
		l.rejRows = mergeRanges(l.rejRows) // keep a Writer's memory near the distinct runs
	}
	l.mu.Unlock()
	if l.onReject != nil {
		l.rejectMu.Lock()
		defer l.rejectMu.Unlock()
		l.onReject(r)
	}
	return true
}

// resume records a ledger entry of an earlier run: its rows are written,
// but those it rejected. OnReject is not called for them.
func (l *tally) resume(en entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rej []Range
	for _, r := range en.rejects {
		rej = append(rej, Range{r.Row, r.Row + 1})
		l.res.Rejects++
		if l.onReject == nil {
			l.rejected = append(l.rejected, r)
		}
	}
	l.rejRows = append(l.rejRows, rej...)
	for _, w := range complement(en.span.End, rej, []Range{{0, en.span.First}}) {
		l.written = append(l.written, w)
		l.res.Rows += int64(w.Len())
		l.res.Resumed += int64(w.Len())
	}
}

// nodes sets up NodeRows for n nodes (Failover).
func (l *tally) nodes(n int) {
	if n > 1 {
		l.res.NodeRows = make([]int64, n)
	}
}

// moved records a move from node from to node to, for err.
func (l *tally) moved(from, to int, err error) {
	l.mu.Lock()
	l.res.Moves = append(l.res.Moves, Move{At: time.Since(l.start), From: from, To: to, Err: err})
	l.mu.Unlock()
}

// rejects is the number of rows rejected so far.
func (l *tally) rejects() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res.Rejects
}

func (l *tally) sent(bytes int) {
	l.mu.Lock()
	l.res.Bytes += int64(bytes)
	l.mu.Unlock()
}

func (l *tally) retried() {
	l.mu.Lock()
	l.res.Retries++
	l.mu.Unlock()
}

func (l *tally) lost(c chunk) {
	l.mu.Lock()
	l.unknown = append(l.unknown, Range{c.first, c.end})
	l.mu.Unlock()
}

func (l *tally) packet(p int) {
	l.mu.Lock()
	if l.res.MinPacketLimit == 0 || p < l.res.MinPacketLimit {
		l.res.MinPacketLimit = p
	}
	l.mu.Unlock()
}

// result returns the Result for an input of n rows (so far).
func (l *tally) result(n int) Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.res
	r.NodeRows, r.Moves = slices.Clone(l.res.NodeRows), slices.Clone(l.res.Moves)
	r.Written = mergeRanges(l.written)
	r.Unknown = mergeRanges(l.unknown)
	if len(l.rejected) > 0 {
		r.Rejected = slices.Clone(l.rejected)
		slices.SortFunc(r.Rejected, func(a, b Rejection) int { return a.Row - b.Row })
	}
	r.NotSent = complement(n, r.Written, append(slices.Clone(r.Unknown), l.rejRows...))
	r.Elapsed = time.Since(l.start)
	return r
}

// mergeRanges sorts a copy of rs and joins adjacent ranges.
func mergeRanges(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b Range) int { return a.First - b.First })
	out := s[:1]
	for _, r := range s[1:] {
		if last := &out[len(out)-1]; r.First <= last.End {
			last.End = max(last.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// complement is [0, n) minus the ranges of a and b (which may reach
// beyond n).
func complement(n int, a, b []Range) []Range {
	taken := mergeRanges(append(slices.Clone(a), b...))
	var out []Range
	next := 0
	for _, r := range taken {
		if r.First >= n {
			break
		}
		if r.First > next {
			out = append(out, Range{next, r.First})
		}
		next = max(next, r.End)
	}
	if next < n {
		out = append(out, Range{next, n})
	}
	return out
}
