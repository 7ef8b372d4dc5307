package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchsql/batch"
)

// The streaming benchmark runs the Writer in a child process (this test
// binary, running only TestStreamChild), so that its peak RSS (VmHWM) is the
// Writer's alone and not that of the datasets the other benchmarks hold.

const (
	envStreamDSN  = "BENCH_STREAM_DSN"
	envStreamRows = "BENCH_STREAM_ROWS" // overrides StreamRows, for quick tries
	streamMarker  = "BENCH-STREAM-RESULT "
)

// streamResult is what the child reports.
type streamResult struct {
	Rows       int64 `json:"rows"`
	Payload    int64 `json:"payload"`
	ElapsedNS  int64 `json:"elapsed_ns"`
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	Mallocs    int64 `json:"mallocs"`
	AllocBytes int64 `json:"alloc_bytes"`
	Chunks     int   `json:"chunks"`
}

// BenchmarkStream loads StreamRows narrow rows generated on the fly through
// batch.NewWriter (default options) and reports, besides rows/s and MB/s,
// the child process's peak RSS in MiB and its allocations per row.
func BenchmarkStream(b *testing.B) {
	n := scaled(StreamRows)
	if s := os.Getenv(envStreamRows); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("%s: %v", envStreamRows, err)
		}
	}
	b.Run(fmt.Sprintf("rows=%dk", n/1000), func(b *testing.B) {
		dsn := serverDSN(b)
		prepare(b, streamTable, fmt.Sprintf(narrowDDL, "VARCHAR(255)"), 16*mib)
		var sum streamResult
		var load float64
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			reset(b, streamTable)
			load += load1()
			b.StartTimer()
			r := runStreamChild(b, dsn, n)
			b.StopTimer()
			if stored := countRows(b, streamTable); stored != int64(n) || r.Rows != int64(n) {
				b.Fatalf("stream: Writer reported %d rows, table has %d, want %d", r.Rows, stored, n)
			}
			sum.Rows += r.Rows
			sum.Payload += r.Payload
			sum.ElapsedNS += r.ElapsedNS
			sum.Mallocs += r.Mallocs
			sum.AllocBytes += r.AllocBytes
			sum.PeakRSSKiB = max(sum.PeakRSSKiB, r.PeakRSSKiB)
			b.Logf("stream: %d rows in %v, %d chunks, peak RSS %.1f MiB", r.Rows,
				time.Duration(r.ElapsedNS).Round(time.Millisecond), r.Chunks, float64(r.PeakRSSKiB)/1024)
		}
		report(b, sum.Rows, sum.Payload, time.Duration(sum.ElapsedNS), false)
		b.ReportMetric(float64(sum.PeakRSSKiB)/1024, "peak-RSS-MiB")
		b.ReportMetric(float64(sum.Mallocs)/float64(sum.Rows), "allocs/row")
		b.ReportMetric(load/float64(b.N), "load1")
	})
}

func runStreamChild(b *testing.B, dsn string, n int) streamResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamChild$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), envStreamDSN+"="+dsn, envStreamRows+"="+strconv.Itoa(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("stream child: %v\n%s%s", err, out, stderr.Bytes())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), streamMarker); ok {
			var r streamResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				b.Fatalf("stream child result %q: %v", line, err)
			}
			return r
		}
	}
	b.Fatalf("stream child printed no result:\n%s%s", out, stderr.Bytes())
	return streamResult{}
}

// TestStreamChild is the child of BenchmarkStream; without its environment
// it skips at once.
func TestStreamChild(t *testing.T) {
	dsn := os.Getenv(envStreamDSN)
	if dsn == "" {
		t.Skip("run by BenchmarkStream in a child process")
	}
	n, err := strconv.Atoi(os.Getenv(envStreamRows))
	if err != nil {
		t.Fatalf("%s: %v", envStreamRows, err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	w, err := batch.NewWriter(db, streamTable, narrowColumns)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]any, len(narrowColumns))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var payload int64
	start := time.Now()
	for i := 0; i < n; i++ {
		narrowRow(row, i)
		for _, v := range row {
			payload += payloadSize(v)
		}
		if err := w.Write(ctx, row...); err != nil {
			t.Fatalf("write row %d: %v", i, err)
		}
	}
	res, err := w.Close(ctx)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	hwm, err := peakRSSKiB()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(streamResult{
		Rows: res.Rows, Payload: payload, ElapsedNS: elapsed.Nanoseconds(), PeakRSSKiB: hwm,
		Mallocs: int64(after.Mallocs - before.Mallocs), AllocBytes: int64(after.TotalAlloc - before.TotalAlloc),
		Chunks: res.Chunks,
	})
	fmt.Println(streamMarker + string(out))
}

// peakRSSKiB reads VmHWM, the process's peak resident set, from
// /proc/self/status (Linux).
func peakRSSKiB() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
