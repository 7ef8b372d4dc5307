package batch

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestShapeFloor(t *testing.T) {
	tests := []struct{ k, max, want int }{
		{1, 1000, 1}, {2, 1000, 2}, {3, 1000, 3}, {4, 1000, 4}, {5, 1000, 4}, {6, 1000, 6},
		{7, 1000, 6}, {8, 1000, 8}, {11, 1000, 8}, {12, 1000, 12}, {999, 1000, 768},
		{1000, 1000, 1000}, {5000, 1000, 1000}, {700, 1000, 512},
	}
	for _, tt := range tests {
		if got := shapeFloor(tt.k, tt.max); got != tt.want {
			t.Errorf("shapeFloor(%d, %d) = %d, want %d", tt.k, tt.max, got, tt.want)
		}
	}
}

// randomRows makes n rows of cols normalized values of mixed types and
// sizes, a few of them long.
func randomRows(r *rand.Rand, n, cols, maxLen int) []any {
	vals := make([]any, n*cols)
	for i := range vals {
		switch r.IntN(8) {
		case 0:
			vals[i] = nil
		case 1:
			vals[i] = r.Int64()
		case 2:
			vals[i] = r.Float64()
		case 3:
			vals[i] = r.IntN(2) == 0
		case 4:
			vals[i] = time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).UTC()
		case 5:
			vals[i] = make([]byte, r.IntN(maxLen+1))
		default:
			vals[i] = strings.Repeat("x", r.IntN(maxLen+1))
		}
	}
	return vals
}

// TestSplitProperties checks, over random inputs and limits, that chunks
// cover the input exactly once and in order, that every chunk fits, and
// that only the documented shapes appear.
func TestSplitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	enc := defaultEncoding()
	for iter := 0; iter < 300; iter++ {
		cols := 1 + r.IntN(12)
		n := r.IntN(3000)
		maxLen := []int{10, 300, 5000, 70000}[r.IntN(4)]
		vals := randomRows(r, n, cols, maxLen)
		packet := 1024 + r.IntN(1<<21)
		clientMax := packet
		if r.IntN(2) == 0 {
			clientMax = 1024 + r.IntN(packet)
			packet = min(packet, clientMax)
		}
		sc := splitConfig{cols: cols, packet: packet, clientMax: clientMax, serverMax: packet + 1,
			maxRows: 1 + r.IntN(1500), maxBytes: packet}
		if r.IntN(3) == 0 {
			sc.maxBytes = 1 + r.IntN(packet)
		}
		chunks, err := sc.split(nil, &enc, flatRows(vals, cols), 0)
		next := 0
		for i, c := range chunks {
			if c.first != next || c.end <= c.first {
				t.Fatalf("iter %d: chunk %d is [%d,%d), want it to start at %d", iter, i, c.first, c.end, next)
			}
			next = c.end
			if got := enc.chunkSize(flatRows(vals, cols), c.first, c.end, clientMax); got != c.size {
				t.Fatalf("iter %d: chunk %d size %+v, recomputed %+v", iter, i, c.size, got)
			}
			if !sc.fits(c.size, c.rows()) {
				t.Fatalf("iter %d: chunk %d does not fit: %+v in %+v", iter, i, c.size, sc)
			}
			if c.size.Execute > packet {
				t.Fatalf("iter %d: chunk %d EXECUTE %d > packet %d", iter, i, c.size.Execute, packet)
			}
			last := c.end == n
			if k := c.rows(); !last && k != sc.maxRows && shapeFloor(k, sc.maxRows) != k {
				t.Fatalf("iter %d: chunk %d has %d rows, not a shape", iter, i, k)
			}
		}
		var tl *RowTooLargeError
		switch {
		case err == nil && next != n:
			t.Fatalf("iter %d: chunks end at %d, want %d", iter, next, n)
		case err != nil && !errors.As(err, &tl):
			t.Fatalf("iter %d: unexpected error %v", iter, err)
		case err != nil:
			if tl.Row != next {
				t.Fatalf("iter %d: RowTooLargeError.Row = %d, want %d", iter, tl.Row, next)
			}
			one := enc.chunkSize(flatRows(vals, cols), next, next+1, clientMax)
			if sc.fits(one, 1) {
				t.Fatalf("iter %d: row %d reported too large but fits alone: %+v", iter, next, one)
			}
		}
	}
}

// TestSplitPrefersTarget checks that small rows are cut at the row target,
// not at the packet limit.
func TestSplitPrefersTarget(t *testing.T) {
	enc := defaultEncoding()
	vals := make([]any, 2500*2)
	for i := range vals {
		vals[i] = int64(i)
	}
	sc := splitConfig{cols: 2, packet: 1 << 24, clientMax: 64 << 20, serverMax: 1 << 24, maxRows: 1000, maxBytes: 1 << 24}
	chunks, err := sc.split(nil, &enc, flatRows(vals, 2), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, c := range chunks {
		got = append(got, c.rows())
	}
	if want := []int{1000, 1000, 500}; !equalInts(got, want) {
		t.Errorf("chunk rows = %v, want %v", got, want)
	}
}

// TestSplitExactLimit checks that a chunk whose EXECUTE payload is exactly
// the budget is accepted, and one byte more is not.
func TestSplitExactLimit(t *testing.T) {
	enc := defaultEncoding()
	// One column of strings of 100 bytes: each value costs 101 bytes.
	vals := make([]any, 10)
	for i := range vals {
		vals[i] = strings.Repeat("a", 100)
	}
	exact := enc.chunkSize(flatRows(vals, 1), 0, 4, 64<<20).Execute
	for _, tt := range []struct {
		budget, rows int
	}{{exact, 4}, {exact - 1, 3}, {exact + 100, 4}} {
		sc := splitConfig{cols: 1, packet: tt.budget, clientMax: 64 << 20, serverMax: 1 << 24, maxRows: 1000, maxBytes: tt.budget}
		c, err := sc.next(&enc, flatRows(vals, 1), 0, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c.rows() != tt.rows {
			t.Errorf("budget %d: first chunk has %d rows, want %d", tt.budget, c.rows(), tt.rows)
		}
	}
}

func TestSplitRowTooLarge(t *testing.T) {
	enc := defaultEncoding()
	vals := []any{"small", strings.Repeat("b", 2000), "small"}
	size := enc.chunkSize(flatRows(vals, 1), 1, 2, 1<<20).Execute
	sc := splitConfig{cols: 1, packet: size - 1, clientMax: 1 << 20, serverMax: 1 << 20, maxRows: 100, maxBytes: size - 1}
	_, err := sc.split(nil, &enc, flatRows(vals, 1), 40)
	var tl *RowTooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v, want *RowTooLargeError", err)
	}
	if want := (RowTooLargeError{Row: 41, Size: size, Limit: size - 1}); *tl != want {
		t.Errorf("got %+v, want %+v", *tl, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// narrowRows makes n rows like the benchmark suite's narrow workload: 8
// columns of fixed types, about 190 bytes a row.
func narrowRows(n int) []any {
	vals := make([]any, 0, n*8)
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC)
	for i := 0; i < n; i++ {
		vals = append(vals, int64(i), "customer-name-"+strings.Repeat("x", 20), "someone@example.com",
			float64(i)*1.5, at, "a description of about a hundred bytes, give or take; enough to be a realistic text column.", int64(i%7), true)
	}
	return vals
}

// BenchmarkSplit sizes and splits 100k narrow rows, held as Insert holds the
// rows of Values (the caller's [][]any) and as the Writer holds them (one
// flat slice).
func BenchmarkSplit(b *testing.B) {
	enc := defaultEncoding()
	const n, cols = 100000, 8
	flat := narrowRows(n)
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = flat[i*cols : (i+1)*cols]
	}
	for _, bc := range []struct {
		name string
		vals valueRows
	}{{"rows", valueRows{rows: rows, cols: cols}}, {"flat", flatRows(flat, cols)}} {
		b.Run(bc.name, func(b *testing.B) {
			sc := splitConfig{cols: cols, packet: 16 << 20, clientMax: 64 << 20, serverMax: 16 << 20, maxRows: 1000, maxBytes: 16 << 20}
			chunks := make([]chunk, 0, 200)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				chunks, err = sc.split(chunks[:0], &enc, bc.vals, 0)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

func TestDefaultRows(t *testing.T) {
	for _, tc := range []struct{ cols, want int }{
		{1, 1000}, {8, 1000}, {9, 888}, {35, 228}, {72, 111}, {8000, 1}, {9000, 1},
	} {
		if got := defaultRows(tc.cols); got != tc.want {
			t.Errorf("defaultRows(%d) = %d, want %d", tc.cols, got, tc.want)
		}
	}
}
