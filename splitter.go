package batch

import (
	"iter"
	"math/bits"
	"sync"
	"time"
)

// The splitter cuts rows into chunks: row ranges [first, end) of the input,
// each sent as one multi-row statement. It is pure: it sees sizes, never a
// connection.
//
// Two bounds apply. The ceiling is the connection's packet limit: no packet of
// a chunk (PREPARE, EXECUTE, long data) may exceed it, ever. The target is
// below it: the number of rows per statement that loads fastest, since bigger
// statements are not faster (see DefaultRows), and a byte budget for the EXECUTE payload
// (MaxBytes, else DefaultBytes). A chunk stops at whichever comes first.
//
// Each row count is a statement shape, prepared once per connection and
// reused. When bytes, not rows, end a chunk, its row count is rounded down to
// a shape of the form 2^a or 3*2^a (1, 2, 3, 4, 6, 8, 12, 16, 24, ...), so a
// load of rows of varying size reuses a few dozen prepared statements at most
// instead of one per distinct count. The rounding costs at most a third of
// the chunk.

// splitConfig is everything the splitter needs to know about a connection
// and the statement.
type splitConfig struct {
	cols      int // values per row
	packet    int // Limits.Packet(): the largest payload of any packet
	clientMax int // the driver's maxAllowedPacket, which sets the long-data threshold
	serverMax int // @@max_allowed_packet: the most long data one parameter may total
	maxRows   int // the largest shape: target rows, capped by placeholders and PREPARE size
	maxBytes  int // the budget for one COM_STMT_EXECUTE payload, <= packet
}

// chunk is rows [first, end) of the input, their normalized values and what
// sending them costs.
type chunk struct {
	first, end int
	vals       valueRows
	size       stmtSize
	// land says whether an earlier attempt of a chunk holding these rows
	// may have been applied (fate.go); re-split chunks inherit it.
	land landing
}

func (c chunk) rows() int { return c.end - c.first }

// span is the chunk's input rows.
func (c chunk) span() Range { return Range{First: c.first, End: c.end} }

// shapeFloor rounds k down to the nearest shape at most max.
func shapeFloor(k, max int) int {
	if k >= max {
		return max
	}
	if k <= 3 {
		return k
	}
	p := 1 << (bits.Len(uint(k)) - 1)
	if k >= p+p/2 {
		return p + p/2
	}
	return p
}

// next returns the chunk that starts at row first of vals (rows of sc.cols
// values; n rows in all), or a *RowTooLargeError when row first cannot be sent
// even alone. Row numbers in the result are relative to vals; rowBase (the
// position of vals in the whole input) is added in errors only.
func (sc *splitConfig) next(enc *encoding, vals valueRows, first, n, rowBase int) (chunk, error) {
	kmax := min(sc.maxRows, n-first)
	// Grow the chunk row by row at the long-data threshold of the largest
	// candidate, the lowest any candidate has: a smaller chunk has a higher
	// threshold and may carry inline what this estimate counts as long
	// data, so the exact size of the chosen count is checked below.
	ld := longDataThreshold(sc.clientMax, kmax*sc.cols)
	k, sum, long := 0, 0, false
	for k < kmax {
		row := 0
		for _, v := range vals.row(first + k) {
			in, l := enc.inlineSize(v, ld)
			row += in
			long = long || l > 0
		}
		if k > 0 && executeOverhead((k+1)*sc.cols)+sum+row > sc.maxBytes {
			break
		}
		sum += row
		k++
	}
	if k == kmax && !long {
		// The common case: the sum above is exact, since it was taken at
		// this chunk's own threshold and no value went as long data.
		return chunk{first: first, end: first + k, size: stmtSize{Execute: executeOverhead(k*sc.cols) + sum}}, nil
	}
	if k < kmax {
		k = shapeFloor(k, sc.maxRows)
	}
	for {
		size := enc.chunkSize(vals, first, first+k, sc.clientMax)
		if sc.fits(size, k) {
			return chunk{first: first, end: first + k, size: size}, nil
		}
		if k == 1 {
			return chunk{}, sc.tooLarge(size, rowBase+first)
		}
		k = shapeFloor(k-1, sc.maxRows)
	}
}

// fits reports whether a statement of k rows and this size may be sent. The
// byte budget is a target: one row alone may use the whole packet.
func (sc *splitConfig) fits(s stmtSize, k int) bool {
	budget := sc.maxBytes
	if k == 1 {
		budget = sc.packet
	}
	return s.Execute <= budget && s.LargestLong <= sc.packet && s.LongValueMax <= sc.serverMax
}

func (sc *splitConfig) tooLarge(s stmtSize, row int) *RowTooLargeError {
	switch {
	case s.Execute > sc.packet:
		return &RowTooLargeError{Row: row, Size: s.Execute, Limit: sc.packet}
	case s.LargestLong > sc.packet:
		return &RowTooLargeError{Row: row, Size: s.LargestLong, Limit: sc.packet}
	}
	// A value sent as long data may total at most max_allowed_packet bytes.
	return &RowTooLargeError{Row: row, Size: s.LongValueMax, Limit: sc.serverMax}
}

// split cuts the rows of vals, which are input rows base, base+1, ..., into
// chunks, appending them to dst. It stops at the first row that cannot be
// sent.
func (sc *splitConfig) split(dst []chunk, enc *encoding, vals valueRows, base int) ([]chunk, error) {
	n := vals.len()
	for first := 0; first < n; {
		c, err := sc.nextAt(enc, vals, first, base)
		if err != nil {
			return dst, err
		}
		first = c.end - base
		dst = append(dst, c)
	}
	return dst, nil
}

// nextAt is next for the rows of vals, which are input rows base, base+1,
// ...: the chunk starting at row first of vals, with input positions and its
// own values.
func (sc *splitConfig) nextAt(enc *encoding, vals valueRows, first, base int) (chunk, error) {
	c, err := sc.next(enc, vals, first, vals.len(), base)
	if err != nil {
		return c, err
	}
	c.vals = vals.slice(c.first, c.end)
	c.first += base
	c.end += base
	return c, nil
}

// checkRows returns a *RowTooLargeError for the first row of vals (input
// rows base, base+1, ...) that cannot be sent even alone.
func (sc *splitConfig) checkRows(enc *encoding, vals valueRows, base int) error {
	for i := 0; i < vals.len(); i++ {
		if size := enc.chunkSize(vals, i, i+1, sc.clientMax); !sc.fits(size, 1) {
			return sc.tooLarge(size, base+i)
		}
	}
	return nil
}

// splitPlan is what, besides a connection's limits, decides how chunks are
// cut on it: the options and the statement.
type splitPlan struct {
	cols       int
	targetRows int // rows per statement the options ask for (options.targetRows)
	maxBytes   int // MaxBytes, or 0 for DefaultBytes
	// prepareRows is the most rows whose PREPARE fits in a packet
	// (statement.maxRowsForPrepare).
	prepareRows func(packet int, alias bool) int
}

// config is the split configuration of a connection with limits lim.
func (p splitPlan) config(lim Limits) splitConfig {
	packet := lim.Packet()
	maxBytes := min(packet, DefaultBytes)
	if p.maxBytes > 0 {
		maxBytes = min(packet, p.maxBytes)
	}
	return splitConfig{
		cols:      p.cols,
		packet:    packet,
		clientMax: lim.ClientMaxPacket,
		serverMax: lim.MaxAllowedPacket,
		maxRows:   max(1, min(p.targetRows, maxPlaceholders/p.cols, p.prepareRows(packet, lim.rowAlias()))),
		maxBytes:  maxBytes,
	}
}

// plan yields the chunks of vals (input rows base, base+1, ...) in order.
// Every row is checked against the limits before the first chunk is
// yielded; a row that cannot be sent even alone is yielded as the error,
// with no chunk before it. With a tuner, each chunk is cut at the row count
// the tuner asks for when the consumer asks for the chunk.
func (sc splitConfig) plan(enc *encoding, vals valueRows, base int, t *tuner) iter.Seq2[chunk, error] {
	return func(yield func(chunk, error) bool) {
		if t == nil {
			chunks, err := sc.split(nil, enc, vals, base)
			if err != nil {
				yield(chunk{}, err)
				return
			}
			for _, c := range chunks {
				if !yield(c, nil) {
					return
				}
			}
			return
		}
		if err := sc.checkRows(enc, vals, base); err != nil {
			yield(chunk{}, err)
			return
		}
		for first, n := 0, vals.len(); first < n; {
			tsc := sc
			tsc.maxRows = t.rows()
			c, err := tsc.nextAt(enc, vals, first, base)
			if !yield(c, err) || err != nil {
				return
			}
			first = c.end - base
		}
	}
}

// target is the rows per statement in force now: the tuner's choice, or
// the configuration's largest shape.
func (sc splitConfig) target(t *tuner) int {
	if t != nil {
		return t.rows()
	}
	return sc.maxRows
}

// resplit cuts chunk c again for a connection whose configuration sc
// differs from the one it was planned with. The chunks inherit land.
func (sc splitConfig) resplit(enc *encoding, c chunk, land landing) ([]chunk, error) {
	sub, err := sc.split(nil, enc, c.vals, c.first)
	if err != nil {
		return nil, err
	}
	for i := range sub {
		sub[i].land = land
	}
	return sub, nil
}

// halve cuts chunk c (of two rows or more) into two halves sized for sc: the
// server refused its size although the limits read say it fits, so the load
// makes progress by sending less.
func (sc splitConfig) halve(enc *encoding, c chunk, land landing) []chunk {
	half := c.rows() / 2
	part := func(from, to int) chunk {
		return chunk{first: c.first + from, end: c.first + to, vals: c.vals.slice(from, to),
			size: enc.chunkSize(c.vals, from, to, sc.clientMax), land: land}
	}
	return []chunk{part(0, half), part(half, c.rows())}
}

// around returns the rows of chunk c but row at (counted within c): the
// rows before it, then those after, each cut into shapes (see shapes).
func (sc splitConfig) around(enc *encoding, c chunk, at int, land landing) ([]chunk, error) {
	out, err := sc.shapes(enc, c, 0, at, land, nil)
	if err != nil {
		return nil, err
	}
	return sc.shapes(enc, c, at+1, c.rows(), land, out)
}

// bisect cuts chunk c (of two rows or more) in two near its middle, each
// half cut into shapes, so that a refused row the server did not name ends
// up alone after log2(rows) rounds.
func (sc splitConfig) bisect(enc *encoding, c chunk, land landing) ([]chunk, error) {
	m := shapeFloor(c.rows()/2, sc.maxRows)
	out, err := sc.shapes(enc, c, 0, m, land, nil)
	if err != nil {
		return nil, err
	}
	return sc.shapes(enc, c, m, c.rows(), land, out)
}

// shapes appends rows [from, to) of chunk c to dst as chunks whose row
// counts are shapes of the ladder, largest first, so that the statements
// prepared on the connection are reused; each is sized anew, as a smaller
// statement may carry inline what a larger one sent as long data.
func (sc splitConfig) shapes(enc *encoding, c chunk, from, to int, land landing, dst []chunk) ([]chunk, error) {
	vals := c.vals.slice(0, to)
	for from < to {
		psc := sc
		psc.maxRows = shapeFloor(to-from, sc.maxRows)
		p, err := psc.nextAt(enc, vals, from, c.first)
		if err != nil {
			return dst, err
		}
		p.land = land
		dst = append(dst, p)
		from = p.end - c.first
	}
	return dst, nil
}

// tuner adapts the rows per statement as a load goes. With ChunkTime
// (target > 0) a chunk should take about target, from the time chunks took
// so far. With MaxRejects, chunks shrink as rows get rejected: a bad row
// costs a refused statement and a resend of the rows before it, so with one
// bad row in every 1,000 a 1,000-row chunk is refused about once per chunk
// and 250 rows only every fourth time (bench/RESULTS.md, "Rejects"). It only
// picks shapes of the ladder (shapeFloor), so prepared statements keep
// being reused. Safe for concurrent use.
type tuner struct {
	mu      sync.Mutex
	target  time.Duration // ChunkTime; 0: none
	max     int           // the ceiling from the limits and MaxRows
	start   int           // rows until the first observation, with ChunkTime
	perRow  float64       // moving average of seconds per row; 0 before any chunk
	density float64       // moving average of rejected rows per row (MaxRejects)
}

// rejectsPerChunk is how many rejected rows a chunk should hold on
// average when rows get rejected.
const rejectsPerChunk = 0.25

func (t *tuner) rows() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.max
	switch {
	case t.target > 0 && t.perRow == 0 && t.density == 0:
		return t.start
	case t.target > 0 && t.perRow == 0:
		k = t.start
	case t.target > 0:
		k = int(t.target.Seconds() / t.perRow)
	}
	if t.density > 0 {
		k = min(k, int(rejectsPerChunk/t.density))
	}
	return shapeFloor(max(1, min(k, t.max)), t.max)
}

// observe records that a chunk of rows took d (ChunkTime).
func (t *tuner) observe(rows int, d time.Duration) {
	if t.target <= 0 {
		return
	}
	x := d.Seconds() / float64(rows)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perRow == 0 {
		t.perRow = x
		return
	}
	t.perRow = 0.7*t.perRow + 0.3*x
}

// observeRejects records that rejected of rows were rejected (MaxRejects).
func (t *tuner) observeRejects(rows, rejected int) {
	if rows <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.density = 0.7*t.density + 0.3*float64(rejected)/float64(rows)
}
