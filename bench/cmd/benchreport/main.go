// Command benchreport reads the output of the bench suite (and of the root
// package's BenchmarkSplit) and prints, as Markdown, each workload's
// contenders with their ratio to LOAD DATA, the sweeps' fastest settings, and
// every target of the benchmark issue as met or missed. It complements
// benchstat, which gives the spread; this gives the verdicts, from medians.
//
//	go run ./bench/cmd/benchreport bench/out/latest.txt
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// samples holds every value of every unit of one benchmark, by unit as
// printed (rows/s, MB/s, ns/op, ...).
type samples map[string][]float64

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport FILE...")
		os.Exit(2)
	}
	all := map[string]samples{}
	var order []string
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := read(f, name, all, &order); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f.Close()
	}
	r := report{all: all, order: order}
	r.print(os.Stdout)
}

func read(in io.Reader, name string, all map[string]samples, order *[]string) error {
	rd := benchfmt.NewReader(in, name)
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		base, _ := bytes.CutSuffix(res.Name.Full(), gomaxprocs(res.Name.Full()))
		key := string(base)
		if all[key] == nil {
			all[key] = samples{}
			*order = append(*order, key)
		}
		for _, v := range res.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, val = v.OrigUnit, v.OrigValue
			}
			all[key][unit] = append(all[key][unit], val)
		}
	}
	return rd.Err()
}

// gomaxprocs is the "-N" suffix the testing package adds to a name.
func gomaxprocs(name []byte) []byte {
	i := bytes.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return nil
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return nil
		}
	}
	return name[i:]
}

type report struct {
	all   map[string]samples
	order []string
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// get is the median of unit for benchmark name, and whether it was run.
func (r report) get(name, unit string) (float64, bool) {
	s, ok := r.all[name]
	if !ok || len(s[unit]) == 0 {
		return 0, false
	}
	return median(s[unit]), true
}

// failures is how many runs of name failed, and how many ran.
func (r report) failures(name string) (failed, runs int) {
	s := r.all[name]
	runs = len(s["rows/s"])
	for _, v := range s["failed"] {
		if v > 0 {
			failed++
		}
	}
	return failed, runs
}

var workloads = []struct{ bench, title string }{
	{"Narrow", "narrow: 500k rows x 8 columns, ~190 B"},
	{"Wide", "wide: 5000 rows of ~17 KB, max_allowed_packet 16 MiB"},
	{"Skewed", "skewed: 10k rows, 1% with a 4 MiB value, max_allowed_packet 64 MiB"},
	{"ManyCols", "manycols: 100k rows x 72 columns"},
}

func (r report) print(w io.Writer) {
	fmt.Fprintln(w, "## Ratios to LOAD DATA (medians)")
	for _, wl := range workloads {
		ref, ok := r.get(wl.bench+"/loaddata", "MB/s")
		if !ok {
			continue
		}
		fmt.Fprintf(w, "\n%s\n\n", wl.title)
		fmt.Fprintln(w, "| contender | rows/s | MB/s | x LOAD DATA | failed runs |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
		for _, name := range r.order {
			c, ok := strings.CutPrefix(name, wl.bench+"/")
			if !ok {
				continue
			}
			rows, _ := r.get(name, "rows/s")
			mbs, _ := r.get(name, "MB/s")
			failed, runs := r.failures(name)
			fmt.Fprintf(w, "| %s | %.0f | %.1f | %s | %d/%d |\n", c, rows, mbs, ratio(mbs, ref), failed, runs)
		}
	}
	r.sweep(w, "NarrowMaxRows", "MaxRows sweep (narrow, default workers)", "rows=1000")
	r.sweep(w, "NarrowWorkers", "Workers sweep (narrow, default MaxRows)", "workers=2")
	r.sweep(w, "WideMaxBytes", "MaxBytes on the wide workload (default: DefaultBytes, 248k)", "bytes=248k")
	r.sweep(w, "ManyColsMaxRows", "MaxRows on the manycols workload (MaxBytes above the packet limit; default: 8,000 placeholders, 111 rows)", "rows=111")
	r.targets(w)
}

func ratio(x, ref float64) string {
	if ref <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x/ref)
}

func (r report) sweep(w io.Writer, bench, title, def string) {
	best, bestV, defV := "", 0.0, 0.0
	ref, hasRef := r.get(bench+"/loaddata", "rows/s")
	var lines []string
	for _, name := range r.order {
		c, ok := strings.CutPrefix(name, bench+"/")
		if !ok {
			continue
		}
		v, _ := r.get(name, "rows/s")
		line := fmt.Sprintf("| %s | %.0f |", c, v)
		if hasRef {
			line += " " + ratio(v, ref) + " |"
		}
		lines = append(lines, line)
		if c == "loaddata" {
			continue // the reference, not a setting
		}
		if v > bestV {
			best, bestV = c, v
		}
		if c == def {
			defV = v
		}
	}
	if len(lines) == 0 {
		return
	}
	head := "| setting | rows/s |\n|---|---:|"
	if hasRef {
		head = "| setting | rows/s | x LOAD DATA |\n|---|---:|---:|"
	}
	fmt.Fprintf(w, "\n## %s\n\n%s\n%s\n\nfastest: %s (%.0f rows/s)", title, head, strings.Join(lines, "\n"), best, bestV)
	if def != "" {
		fmt.Fprintf(w, "; default %s: %.0f rows/s (%s of the fastest)", def, defV, ratio(defV, bestV))
	}
	fmt.Fprintln(w)
}

// target is one line of the acceptance list.
type target struct {
	what   string
	got    string
	met    bool
	absent bool
}

func (r report) ratioTarget(what, a, b, unit string, min float64) target {
	x, okA := r.get(a, unit)
	y, okB := r.get(b, unit)
	fa, _ := r.failures(a)
	if !okA || !okB || y <= 0 {
		return target{what: what, absent: true}
	}
	got := fmt.Sprintf("%.2fx (%.4g vs %.4g %s)", x/y, x, y, unit)
	return target{what: what, got: got, met: fa == 0 && x/y >= min}
}

func (r report) targets(w io.Writer) {
	ts := []target{
		r.ratioTarget("narrow, default workers >= 2.0x LOAD DATA", "Narrow/batch-default", "Narrow/loaddata", "rows/s", 2.0),
		r.ratioTarget("narrow, default workers >= 2.8x GORM CreateInBatches(1000)", "Narrow/batch-default", "Narrow/gorm-batches1000", "rows/s", 2.8),
		r.ratioTarget("narrow, 1 worker >= 1.4x LOAD DATA", "Narrow/batch-1worker", "Narrow/loaddata", "rows/s", 1.4),
		r.ratioTarget("wide >= 1.0x LOAD DATA in MB/s", "Wide/batch-default", "Wide/loaddata", "MB/s", 1.0),
		r.ratioTarget("skewed completes at >= 0.8x LOAD DATA MB/s", "Skewed/batch-default", "Skewed/loaddata", "MB/s", 0.8),
	}
	// BenchmarkSplit holds the rows as Insert does (Split/rows: the caller's
	// [][]any) and as the Writer does (Split/flat); both must meet it.
	nsRows, okRows := r.get("Split/rows", "ns/row")
	nsFlat, okFlat := r.get("Split/flat", "ns/row")
	if okRows && okFlat {
		aRows, _ := r.get("Split/rows", "allocs/op")
		aFlat, _ := r.get("Split/flat", "allocs/op")
		ts = append(ts, target{what: "sizer+splitter <= 40 ns/row, 0 allocs/row",
			got: fmt.Sprintf("%.1f ns/row on [][]any rows, %.1f on a flat slice; %.0f and %.0f allocs per 100k-row split", nsRows, nsFlat, aRows, aFlat),
			met: max(nsRows, nsFlat) <= 40 && aRows == 0 && aFlat == 0})
	} else {
		ts = append(ts, target{what: "sizer+splitter <= 40 ns/row, 0 allocs/row", absent: true})
	}
	stream := ""
	for _, name := range r.order {
		if strings.HasPrefix(name, "Stream/") {
			stream = name
		}
	}
	if rss, ok := r.get(stream, "peak-RSS-MiB"); ok {
		rows, _ := r.get(stream, "rows/s")
		ts = append(ts, target{what: "streaming (" + strings.TrimPrefix(stream, "Stream/") + "), peak RSS < 256 MiB",
			got: fmt.Sprintf("%.1f MiB peak RSS, %.0f rows/s", rss, rows), met: rss < 256})
	} else {
		ts = append(ts, target{what: "streaming 5M rows, peak RSS < 256 MiB", absent: true})
	}
	fmt.Fprintln(w, "\n## Targets\n\n| target | measured (medians) | verdict |\n|---|---|---|")
	for _, t := range ts {
		verdict := "missed"
		switch {
		case t.absent:
			t.got, verdict = "not run", "-"
		case t.met:
			verdict = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.what, t.got, verdict)
	}
}
