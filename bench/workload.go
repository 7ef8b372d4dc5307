package bench

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
)

// A workload is a table and the rows every contender loads into it.
type workload struct {
	name    string
	table   string
	ddl     string // column definitions of CREATE TABLE
	columns []string
	// packet is the server's max_allowed_packet while the workload runs:
	// 16 MiB (MariaDB's default) except where the workload needs more.
	packet int

	rows    [][]any // row i, one value per column: the library, Exec, LOAD DATA
	structs any     // pointer to a slice of the model type: GORM, sqlx
	payload int64   // payloadSize summed over every value
}

// slice returns rows [i, j) of the model slice, for sqlx's NamedExec.
func (w *workload) slice(i, j int) any {
	return reflect.ValueOf(w.structs).Elem().Slice(i, j).Interface()
}

// payloadOf is the payload of the first n rows.
func (w *workload) payloadOf(n int) int64 {
	if n == len(w.rows) {
		return w.payload
	}
	var p int64
	for _, row := range w.rows[:n] {
		for _, v := range row {
			p += payloadSize(v)
		}
	}
	return p
}

// build makes a workload of n rows with gen, which fills a row's values and
// returns its model struct.
func build[T any](name, table, ddl string, columns []string, packet, n int, gen func(dst []any, i int) T) *workload {
	w := &workload{name: name, table: table, ddl: ddl, columns: columns, packet: packet}
	w.rows = make([][]any, n)
	structs := make([]T, n)
	// One backing array for all rows: fewer allocations, less GC work.
	vals := make([]any, n*len(columns))
	for i := range w.rows {
		row := vals[i*len(columns) : (i+1)*len(columns) : (i+1)*len(columns)]
		structs[i] = gen(row, i)
		for _, v := range row {
			w.payload += payloadSize(v)
		}
		w.rows[i] = row
	}
	w.structs = &structs
	return w
}

const (
	mib = 1 << 20

	// NarrowRows is the size of the narrow load (~95 MB of payload).
	NarrowRows = 500_000
	// SingleRowSubset is how many narrow rows the single-row INSERT
	// contender loads: at a few thousand rows a second the whole set would
	// take minutes. Its rows/s is comparable, its time is not.
	SingleRowSubset = 20_000
	// WideRows of ~17 KB: 1000 of them exceed a 16 MiB packet.
	WideRows = 5_000
	// SkewedRows, 1% of them with a 4 MiB note (~400 MiB of payload).
	SkewedRows = 10_000
	// ManyRows of 72 columns.
	ManyRows = 100_000
	// StreamRows is what the streaming Writer loads, generated on the fly.
	StreamRows = 5_000_000
)

// scaled is n times BENCH_SCALE (default 1), for quick tries of the suite
// at a fraction of its size; figures from a scaled run are not comparable.
func scaled(n int) int {
	f, err := strconv.ParseFloat(os.Getenv("BENCH_SCALE"), 64)
	if err != nil || f <= 0 {
		return n
	}
	return max(1, int(float64(n)*f))
}

// A dataset builds its workload on first use and drops it when a top-level
// benchmark is done with it, so that no benchmark runs with another
// workload's rows in the heap, where every GC would scan them.
type dataset struct {
	build func() *workload
	mu    sync.Mutex
	w     *workload
}

func (d *dataset) get() *workload {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		d.w = d.build()
	}
	return d.w
}

func (d *dataset) drop() {
	d.mu.Lock()
	d.w = nil
	d.mu.Unlock()
}

var (
	narrowData = &dataset{build: func() *workload {
		return build("narrow", "bench_narrow", fmt.Sprintf(narrowDDL, "VARCHAR(255)"), narrowColumns, 16*mib, scaled(NarrowRows), narrowRow)
	}}
	wideData = &dataset{build: func() *workload {
		return build("wide", "bench_wide", wideDDL, wideColumns, 16*mib, WideRows, wideRow)
	}}
	// The skewed table is the narrow one with a note that can hold 4 MiB;
	// the server must allow a 4 MiB long-data parameter, so 64 MiB.
	skewedData = &dataset{build: func() *workload {
		return build("skewed", "bench_skewed", fmt.Sprintf(narrowDDL, "MEDIUMTEXT"), narrowColumns, 64*mib, scaled(SkewedRows), skewedRow)
	}}
	manyData = &dataset{build: func() *workload {
		return build("manycols", "bench_manycols", manyDDL, manyColumns, 16*mib, scaled(ManyRows), manyRow)
	}}
)

// streamTable is where the streaming benchmark writes narrow rows.
const streamTable = "bench_stream"

func skewedRow(dst []any, i int) NarrowRow {
	r := narrowRow(dst, i)
	if isSkewedBig(i) {
		r.Note = text(splitmix64(uint64(i)), skewedBig)
		dst[7] = r.Note
	}
	return r
}
