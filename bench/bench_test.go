package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchsql/batch"
)

// Each iteration of every benchmark here is one full load of its workload
// into an emptied table, so run them with -benchtime 1x (each load already
// takes seconds) and repeat with -count. Besides the usual sec/op, B/op and
// allocs/op (of this whole process during the load), every benchmark reports
//
//	rows/s  rows written / seconds spent loading (0 when the load failed)
//	MB/s    payload bytes (payloadSize: 8 per number or DATETIME, the length
//	        of a string or blob) / 1e6 / seconds (0 when the load failed)
//	failed  1, only on a load that returned an error: a peer that cannot
//	        load a workload is a result, not a benchmark error
//	load1   the machine's 1-minute load average when the load started: on
//	        2 cores, anything well above 1 means another process competed
//	client-cpu-s/op, server-cpu-s/op
//	        CPU seconds this process and the private mariadbd used during
//	        the load: on 2 cores, the sum is what competes for them
//
// Workloads: narrow (500k rows x 8 columns, ~190 B), wide (5000 rows of
// ~17 KB, 16 MiB max_allowed_packet), skewed (10k narrow rows, 1% with a
// 4 MiB note, 64 MiB max_allowed_packet), manycols (100k rows x 72 columns,
// where the 65,535-placeholder cap binds).

// peers are the contenders every workload runs.
var peers = []contender{
	library("batch-default"),
	library("batch-1worker", batch.Workers(1)),
	loadData,
	gormBatches,
	sqlxNamed,
	exec1000,
}

func BenchmarkNarrow(b *testing.B) {
	runAll(b, narrowData, append(peers, handwritten("handwritten-1conn", 1), handwritten("handwritten-2conn", 2), singleRow))
}

func BenchmarkWide(b *testing.B) { runAll(b, wideData, peers) }

func BenchmarkSkewed(b *testing.B) { runAll(b, skewedData, peers) }

func BenchmarkManyCols(b *testing.B) { runAll(b, manyData, peers) }

// BenchmarkNarrowMaxRows sweeps the rows per statement (DefaultRows is
// 1000), with the default workers.
func BenchmarkNarrowMaxRows(b *testing.B) {
	var cs []contender
	for _, n := range []int{250, 500, 1000, 2000, 4000} {
		cs = append(cs, library(fmt.Sprintf("rows=%d", n), batch.MaxRows(n)))
	}
	runAll(b, narrowData, cs)
}

// BenchmarkNarrowWorkers sweeps the connections (DefaultWorkers is 2), with
// the default rows per statement, and runs LOAD DATA again as the reference
// measured under the same conditions as the sweep.
func BenchmarkNarrowWorkers(b *testing.B) {
	var cs []contender
	for _, n := range []int{1, 2, 3, 4} {
		cs = append(cs, library(fmt.Sprintf("workers=%d", n), batch.Workers(n)))
	}
	runAll(b, narrowData, append(cs, loadData))
}

// BenchmarkWideMaxBytes sweeps the EXECUTE budget on the wide workload,
// where the packet limit alone (the default before DefaultBytes) sets
// chunks of 768 rows (~13 MB): the driver keeps its write buffer for
// packets under 256 KiB only (buffer.go, maxCachedBufSize) and allocates a
// new one for every larger packet.
func BenchmarkWideMaxBytes(b *testing.B) {
	runAll(b, wideData, maxBytesSweep(128, 248, 1024, 0))
}

// BenchmarkManyColsMaxRows sweeps the rows per statement on the 72-column
// workload, where the default is 8,000 placeholders' worth (111 rows), not
// DefaultRows; 256 is what DefaultBytes alone allows, 910 the placeholder
// cap.
func BenchmarkManyColsMaxRows(b *testing.B) {
	var cs []contender
	for _, n := range []int{64, 111, 192, 256, 910} {
		cs = append(cs, library(fmt.Sprintf("rows=%d", n), batch.MaxRows(n), batch.MaxBytes(1<<30)))
	}
	runAll(b, manyData, cs)
}

// BenchmarkNarrowRejects: bad-row isolation's cost. A clean load, the same
// with MaxRejects(-1) and no bad row, and loads with 1 bad row per 10,000
// and per 1,000 (MaxRejects(-1)), in one run.
func BenchmarkNarrowRejects(b *testing.B) {
	runAll(b, narrowData, []contender{library("clean"), library("clean-maxrejects", batch.MaxRejects(-1)),
		rejecting("reject-1in10000", 10_000), rejecting("reject-1in1000", 1_000)})
}

// BenchmarkNarrowCommitEvery sweeps the chunks per transaction on the
// suite's server (innodb_flush_log_at_trx_commit=2: a COMMIT writes the
// redo log but does not flush it).
func BenchmarkNarrowCommitEvery(b *testing.B) { runAll(b, narrowData, commitSweep()) }

// BenchmarkWideCommitEvery is the sweep of BenchmarkNarrowCommitEvery on
// the wide workload (chunks of ~248 KB, 14 rows), with the default.
func BenchmarkWideCommitEvery(b *testing.B) {
	runAll(b, wideData, append(commitSweep(), library("batch-default")))
}

// BenchmarkNarrowDurable is the same sweep, the ledger and LOAD DATA on a
// durable server, innodb_flush_log_at_trx_commit=1 (the default of MySQL
// and MariaDB), where every COMMIT waits for a log flush.
func BenchmarkNarrowDurable(b *testing.B) {
	durable(b)
	runAll(b, narrowData, append(commitSweep(), loadData))
}

// BenchmarkWideDurable is BenchmarkWideCommitEvery on the durable server.
func BenchmarkWideDurable(b *testing.B) {
	durable(b)
	runAll(b, wideData, append(commitSweep(), library("batch-default"), loadData))
}

// BenchmarkNarrowDurableBound sets the library's defaults on the durable
// server beside LOAD DATA and the hand-written reference, with autocommit
// and with a COMMIT every 16 and 32 statements per connection: what group
// commit can give on this machine without a library.
func BenchmarkNarrowDurableBound(b *testing.B) {
	durable(b)
	runAll(b, narrowData, []contender{library("batch-default"), loadData,
		handwritten("handwritten-2conn", 2), handwrittenTx("handwritten-2conn-commit16", 2, 16),
		handwrittenTx("handwritten-2conn-commit32", 2, 32)})
}

// durable makes the suite's server durable (innodb_flush_log_at_trx_commit
// = 1) for the time of b.
func durable(b *testing.B) {
	serverDSN(b)
	if err := adminExec(context.Background(), "SET GLOBAL innodb_flush_log_at_trx_commit = 1"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { adminExec(context.Background(), "SET GLOBAL innodb_flush_log_at_trx_commit = 2") })
}

// commitSweep makes one library contender per CommitEvery, the default
// (DefaultCommitEvery) among them, and one with the ledger.
func commitSweep() []contender {
	var cs []contender
	for _, n := range []int{1, 4, 8, 16, 32} {
		cs = append(cs, library(fmt.Sprintf("commit=%d", n), batch.CommitEvery(n)))
	}
	return append(cs, withLedger("commit=8+ledger", batch.CommitEvery(8)))
}

// maxBytesSweep makes one library contender per budget in KiB; 0 stands for
// MaxBytes(1 GiB), i.e. the packet limit alone, the default before
// DefaultBytes (248 KiB).
func maxBytesSweep(kibs ...int) []contender {
	var cs []contender
	for _, kib := range kibs {
		if kib == 0 {
			cs = append(cs, library("bytes=packet", batch.MaxBytes(1<<30)))
			continue
		}
		cs = append(cs, library(fmt.Sprintf("bytes=%dk", kib), batch.MaxBytes(kib<<10)))
	}
	return cs
}

func runAll(b *testing.B, d *dataset, cs []contender) {
	defer d.drop()
	// bench/run.sh numbers its rounds; each starts the list one contender
	// later, so that no contender is always the first to run on a fresh
	// dataset and server.
	if r, err := strconv.Atoi(os.Getenv("BENCH_ROUND")); err == nil && r > 0 {
		k := r % len(cs)
		cs = append(cs[k:len(cs):len(cs)], cs[:k]...)
	}
	for _, c := range cs {
		b.Run(c.name, func(b *testing.B) { run(b, d, c) })
	}
}

// run times b.N full loads of the workload by c.
func run(b *testing.B, d *dataset, c contender) {
	dsn := serverDSN(b)
	w := d.get()
	n := len(w.rows)
	if c.subset > 0 {
		n = min(n, c.subset)
	}
	prepare(b, w.table, w.ddl, w.packet)
	ctx := context.Background()
	cs, err := openConns(ctx, dsn)
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	defer cs.Close()

	var (
		spent   time.Duration
		written int64
		failed  bool
		load    float64
		cliCPU  time.Duration
		srvCPU  time.Duration
		gcs     int
	)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reset(b, w.table)
		runtime.GC() // the garbage of the previous load is not this one's
		load += load1()
		lctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		c0, s0 := cpuTime()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		b.StartTimer()
		start := time.Now()
		got, err := c.load(lctx, cs, w, n)
		d := time.Since(start)
		b.StopTimer()
		c1, s1 := cpuTime()
		runtime.ReadMemStats(&ms1)
		gcs += int(ms1.NumGC - ms0.NumGC)
		cliCPU += c1 - c0
		srvCPU += s1 - s0
		cancel()
		spent += d
		stored := countRows(b, w.table)
		switch {
		case err != nil:
			failed = true
			b.Logf("%s/%s FAILED after %v: %d of %d rows stored: %s", w.name, c.name, d.Round(time.Millisecond), stored, n, firstLine(err))
		case got != int64(n-c.bad(n)) || stored != int64(n-c.bad(n)):
			b.Fatalf("%s/%s: reported %d rows, table has %d, want %d", w.name, c.name, got, stored, n-c.bad(n))
		default:
			written += stored
			if n == len(w.rows) && c.rejectEvery == 0 {
				checkSame(b, w, c.name)
			}
		}
	}
	report(b, written, w.payloadOf(n)*(written/int64(n)), spent, failed)
	b.ReportMetric(load/float64(b.N), "load1")
	b.ReportMetric(cliCPU.Seconds()/float64(b.N), "client-cpu-s/op")
	b.ReportMetric(float64(gcs)/float64(b.N), "GCs/op")
	if srvCPU > 0 {
		b.ReportMetric(srvCPU.Seconds()/float64(b.N), "server-cpu-s/op")
	}
}

// load1 is the 1-minute load average (Linux), or -1.
func load1() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	return f
}

// report sets the metrics every benchmark of this package reports. A
// failed load counts as throughput 0: it did not deliver the workload.
func report(b *testing.B, rows, payload int64, spent time.Duration, failed bool) {
	sec := spent.Seconds()
	if failed || sec <= 0 {
		b.ReportMetric(0, "rows/s")
		b.ReportMetric(0, "MB/s")
		b.ReportMetric(1, "failed")
		return
	}
	b.ReportMetric(float64(rows)/sec, "rows/s")
	b.ReportMetric(float64(payload)/1e6/sec, "MB/s")
}
