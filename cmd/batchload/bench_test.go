package main

// BenchmarkVsLoadData: batchload against LOAD DATA LOCAL INFILE of the same
// file through the mariadb command-line client, which does no parsing of
// its own (the server parses the file). The target: batchload at
// 1.0x LOAD DATA or better on a 500k-row CSV file of the narrow table.
//
//	cd cmd/batchload && go test -run '^$' -bench BenchmarkVsLoadData -benchtime 1x -count 6 -timeout 60m
//
// One generated CSV file (BATCHLOAD_BENCH_ROWS rows, default 500000; 8
// columns, ~190 bytes a row, as bench/'s narrow workload), one private
// server (the tests' one: --local-infile=1, innodb_flush_log_at_trx_commit
// = 2) or BATCH_TEST_DSN. Each iteration runs BATCHLOAD_BENCH_ROUNDS rounds
// (default 3), each round both contenders one after the other into the
// truncated table, the first one alternating; each run is timed from the
// child's start to its exit, its CPU is the child's rusage (user + system),
// and the table is checked to hold every row. Reported: the medians of
// rows/s and client CPU seconds of each, and ratio = batchload rows/s /
// LOAD DATA rows/s. The batchload binary is built (go build, no -race)
// into a temporary directory first.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// benchDDL is the narrow table (bench/gen.go's narrowDDL).
const benchDDL = "(id BIGINT NOT NULL PRIMARY KEY, user_id BIGINT NOT NULL, amount DOUBLE NOT NULL, qty INT NOT NULL, " +
	"created DATETIME NOT NULL, sku VARCHAR(32) NOT NULL, name VARCHAR(128) NOT NULL, note VARCHAR(255) NOT NULL) ENGINE=InnoDB"

const benchColumns = "id,user_id,amount,qty,created,sku,name,note"

// benchAlphabet is bench/gen.go's without the comma: no field needs quotes,
// so LOAD DATA reads the file with FIELDS TERMINATED BY ',' alone.
const benchAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_"

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// writeBenchCSV writes n rows of the narrow table, with a header, to path
// and returns the file's size.
func writeBenchCSV(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	text := make([]byte, 1<<20)
	for i := range text {
		text[i] = benchAlphabet[splitmix(uint64(i))%uint64(len(benchAlphabet))]
	}
	str := func(h uint64, lo, hi int) []byte {
		l := lo + int(h%uint64(hi-lo+1))
		off := int((h >> 20) % uint64(len(text)-l))
		return text[off : off+l]
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b := make([]byte, 0, n*200+64)
	b = append(b, benchColumns+"\n"...)
	for i := range n {
		h := splitmix(uint64(i) ^ 0x6e6172726f77)
		h2, h3 := splitmix(h), splitmix(splitmix(h))
		b = strconv.AppendInt(b, int64(i)+1, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(h%1_000_000), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(h2%100_000_000)/100, 'f', -1, 64)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(h3%1000), 10)
		b = append(b, ',')
		b = base.Add(time.Duration(i)*time.Second).AppendFormat(b, time.DateTime)
		b = append(b, ',')
		b = append(b, str(h, 16, 24)...)
		b = append(b, ',')
		b = append(b, str(h2, 40, 80)...)
		b = append(b, ',')
		b = append(b, str(h3, 50, 90)...)
		b = append(b, '\n')
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return int64(len(b))
}

// benchRun is one timed run of a contender.
type benchRun struct {
	wall, cpu time.Duration
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkVsLoadData(b *testing.B) {
	client := findProgram("mariadb", "mysql")
	goTool, err := exec.LookPath("go")
	if client == "" || err != nil {
		b.Skip("needs the mariadb client (Debian: mariadb-client) and the go command")
	}
	dsn := serverDSN(b)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	host, port, ok := strings.Cut(cfg.Addr, ":")
	if cfg.Net != "tcp" || !ok {
		b.Fatalf("want a tcp DSN, got %q", dsn)
	}
	rows, rounds := envInt("BATCHLOAD_BENCH_ROWS", 500_000), envInt("BATCHLOAD_BENCH_ROUNDS", 3)
	dir := b.TempDir()
	bin := filepath.Join(dir, "batchload")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "narrow.csv")
	size := writeBenchCSV(b, file, rows)
	b.Logf("%d rows, %d bytes (%.0f B/row); client %s; server %s", rows, size, float64(size)/float64(rows), client, cfg.Addr)

	db := openDB(b, dsn)
	const table = "bench_narrow"
	if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE " + table + " " + benchDDL); err != nil {
		b.Fatal(err)
	}
	loadData := func() benchRun {
		args := []string{"--no-defaults", "--local-infile=1", "--protocol=tcp", "-h", host, "-P", port, "-u", cfg.User}
		if cfg.Passwd != "" {
			args = append(args, "-p"+cfg.Passwd)
		}
		q := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' IGNORE 1 LINES (%s)",
			file, table, benchColumns)
		return timeChild(b, exec.Command(client, append(args, "-e", q, cfg.DBName)...), &strings.Builder{})
	}
	batchload := func() benchRun {
		cmd := exec.Command(bin, "--progress", "none", "--summary", "json", file, table)
		cmd.Env = append(os.Environ(), "MYSQL_DSN="+dsn)
		var out strings.Builder
		r := timeChild(b, cmd, &out)
		var s summary
		if err := json.Unmarshal([]byte(out.String()), &s); err != nil || s.Written != int64(rows) {
			b.Fatalf("batchload summary %q (%v)", out.String(), err)
		}
		return r
	}
	contenders := []struct {
		name string
		run  func() benchRun
	}{{"loaddata", loadData}, {"batchload", batchload}}
	b.ResetTimer()
	for range b.N {
		runs := make([][]benchRun, len(contenders))
		for round := range rounds {
			for k := range contenders {
				i := (k + round) % len(contenders) // the first one alternates
				b.StopTimer()
				if _, err := db.Exec("TRUNCATE " + table); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				r := contenders[i].run()
				b.StopTimer()
				var n int
				if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != rows {
					b.Fatalf("%s: the table holds %d rows (%v), want %d", contenders[i].name, n, err, rows)
				}
				b.StartTimer()
				runs[i] = append(runs[i], r)
				b.Logf("round %d %-9s %6.2fs wall %7.0f rows/s, client CPU %5.2fs", round, contenders[i].name, r.wall.Seconds(),
					float64(rows)/r.wall.Seconds(), r.cpu.Seconds())
			}
		}
		rates := make([]float64, len(contenders))
		for i, c := range contenders {
			wall, cpu := medianRun(runs[i])
			rates[i] = float64(rows) / wall.Seconds()
			b.ReportMetric(rates[i], c.name+"-rows/s")
			b.ReportMetric(cpu.Seconds(), c.name+"-cpu-s")
		}
		b.ReportMetric(rates[1]/rates[0], "ratio")
	}
}

// timeChild runs cmd, its stdout into out, and returns its wall time and
// CPU (user + system, from its rusage).
func timeChild(tb testing.TB, cmd *exec.Cmd, out *strings.Builder) benchRun {
	tb.Helper()
	var errOut strings.Builder
	cmd.Stdout, cmd.Stderr = out, &errOut
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		tb.Fatalf("%s: %v\nstdout %s\nstderr %s", cmd.Args[0], err, out.String(), errOut.String())
	}
	return benchRun{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

// medianRun returns the median wall time and the median CPU of runs.
func medianRun(runs []benchRun) (time.Duration, time.Duration) {
	walls, cpus := make([]time.Duration, len(runs)), make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i], cpus[i] = r.wall, r.cpu
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return walls[len(walls)/2], cpus[len(cpus)/2]
}
