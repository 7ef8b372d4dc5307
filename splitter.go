package batch

import "math/bits"

// The splitter cuts rows into chunks: row ranges [first, end) of the input,
// each sent as one multi-row statement. It is pure: it sees sizes, never a
// connection.
//
// Two bounds apply. The ceiling is the connection's packet limit: no packet of
// a chunk (PREPARE, EXECUTE, long data) may exceed it, ever. The target is
// below it: the number of rows per statement that loads fastest, since bigger
// statements are not faster (PROTOCOL.md: 4000- and 8000-row statements were
// slower than 1000-row ones), and a byte budget for the EXECUTE payload
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

// valueRows is rows of normalized values, cols of them per row: the
// caller's own [][]any when every value in it was already of a type the
// driver sends as is (Values input, the common case: nothing is copied), or
// one slice holding the values row after row.
type valueRows struct {
	flat []any   // when rows is nil
	rows [][]any // each of len cols
	cols int
}

// flatRows views flat, row after row, as rows of cols values.
func flatRows(flat []any, cols int) valueRows { return valueRows{flat: flat, cols: cols} }

func (v valueRows) len() int {
	if v.rows != nil {
		return len(v.rows)
	}
	return len(v.flat) / v.cols
}

// row returns the values of row i.
func (v valueRows) row(i int) []any {
	if v.rows != nil {
		return v.rows[i]
	}
	return v.flat[i*v.cols : (i+1)*v.cols]
}

// slice returns rows [i, j).
func (v valueRows) slice(i, j int) valueRows {
	if v.rows != nil {
		return valueRows{rows: v.rows[i:j:j], cols: v.cols}
	}
	return valueRows{flat: v.flat[i*v.cols : j*v.cols : j*v.cols], cols: v.cols}
}

// chunk is rows [first, end) of the input, their normalized values and what
// sending them costs.
type chunk struct {
	first, end int
	vals       valueRows
	size       stmtSize
	keys       []uint64 // key hashes, when workers must keep per-key order
	// mayLand: an earlier attempt of a chunk holding these rows got no
	// reply and may still be applied (re-split chunks inherit it).
	mayLand bool
}

func (c chunk) rows() int { return c.end - c.first }

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
