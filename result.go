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
// exact even then: every input row is in exactly one of Written, Unknown and
// NotSent, each a sorted list of disjoint ranges, so a caller can resume by
// sending NotSent (and, after checking, Unknown) again.
type Result struct {
	Rows         int64 // input rows confirmed written (the sum of Written)
	RowsAffected int64 // the server's count, summed over statements
	Chunks       int   // statements that succeeded
	Bytes        int64 // payload bytes of EXECUTE and long-data packets sent, resends included
	Retries      int   // chunks resent, or re-split after a limit was hit
	// MaxPacket is the smallest packet limit (Limits.Packet) seen on the
	// connections used; 0 if none was opened.
	MaxPacket int

	Written []Range // confirmed written
	Unknown []Range // sent, outcome unknown (see UnknownOutcomeError)
	NotSent []Range // not written: never sent, or refused by the server

	Elapsed time.Duration
}

// RowsPerSecond is Rows divided by Elapsed.
func (r Result) RowsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Elapsed.Seconds()
}

// ledger is the single place where chunk outcomes are recorded; Result is
// read off it. Safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	res     Result
	unknown []Range
	written []Range

	progress func(Progress)
	progMu   sync.Mutex // serializes progress calls
	total    int
	start    time.Time
}

func (l *ledger) wrote(c chunk, affected int64) {
	l.mu.Lock()
	l.written = append(l.written, Range{c.first, c.end})
	l.res.Rows += int64(c.rows())
	l.res.RowsAffected += affected
	l.res.Chunks++
	l.mu.Unlock()
	l.report()
}

// report calls the progress callback, one call at a time and in order.
func (l *ledger) report() {
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

// Progress is a snapshot of a load, given to the WithProgress callback.
type Progress struct {
	Rows    int64 // input rows confirmed written so far
	Bytes   int64 // payload bytes sent so far
	Chunks  int   // statements that succeeded
	Retries int
	Total   int // input rows in all, or -1 when unknown (a Writer)
	Elapsed time.Duration
}

func (l *ledger) sent(bytes int) {
	l.mu.Lock()
	l.res.Bytes += int64(bytes)
	l.mu.Unlock()
}

func (l *ledger) retried() {
	l.mu.Lock()
	l.res.Retries++
	l.mu.Unlock()
}

func (l *ledger) lost(c chunk) {
	l.mu.Lock()
	l.unknown = append(l.unknown, Range{c.first, c.end})
	l.mu.Unlock()
}

func (l *ledger) packet(p int) {
	l.mu.Lock()
	if l.res.MaxPacket == 0 || p < l.res.MaxPacket {
		l.res.MaxPacket = p
	}
	l.mu.Unlock()
}

// result returns the Result for an input of n rows (so far).
func (l *ledger) result(n int, start time.Time) Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.res
	r.Written = mergeRanges(l.written)
	r.Unknown = mergeRanges(l.unknown)
	r.NotSent = complement(n, r.Written, r.Unknown)
	r.Elapsed = time.Since(start)
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

// complement is [0, n) minus the sorted ranges of a and b.
func complement(n int, a, b []Range) []Range {
	taken := mergeRanges(append(slices.Clone(a), b...))
	var out []Range
	next := 0
	for _, r := range taken {
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
