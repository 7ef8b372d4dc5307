package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batchsql/batch/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.Shutdown() // the benchmarks' server, if one was started
	os.Exit(code)
}

// serverArgs are the one server's settings, the same for every contender.
// LOAD DATA LOCAL needs local_infile; 64 MiB is the most any workload sets
// (skewed's 4 MiB long-data values); the rest is on top of the harness's
// own InnoDB defaults (flush_log_at_trx_commit=2, no doublewrite): a buffer
// pool and redo log large enough that no 100 MB load stalls on a
// checkpoint, which would measure the disk rather than the client.
var serverArgs = []string{
	"--local-infile=1",
	"--max-allowed-packet=64M",
	"--innodb-buffer-pool-size=1G",
	"--innodb-log-file-size=512M",
}

// server is the private MariaDB of this benchmark process (or
// BATCH_TEST_DSN), started by the first benchmark that needs it and stopped
// by TestMain.
var server struct {
	once  sync.Once
	dsn   string
	srv   *testserver.Server // nil with BATCH_TEST_DSN
	admin *sql.DB
	err   error
	skip  bool

	mu      sync.Mutex
	created map[string]bool // tables made by this process
	sums    map[string]sum  // CHECKSUM TABLE of each workload's first full load
}

type sum struct {
	value int64
	by    string
}

// serverDSN returns the DSN of the benchmark server, starting it on first
// use: a private one, or BATCH_TEST_DSN (whose account must be allowed to
// SET GLOBAL local_infile, max_allowed_packet and innodb_max_dirty_pages_pct).
func serverDSN(b *testing.B) string {
	b.Helper()
	server.once.Do(func() {
		server.dsn = os.Getenv(testserver.EnvDSN)
		if server.dsn == "" {
			s, err := testserver.Start(testserver.Options{Args: serverArgs})
			if err != nil {
				server.err = err
				server.skip = errors.Is(err, testserver.ErrNoServer) && os.Getenv("CI") == ""
				return
			}
			server.srv, server.dsn = s, s.DSN("")
		}
		server.admin, server.err = sql.Open("mysql", server.dsn)
		if server.err == nil {
			server.admin.SetMaxIdleConns(1)
			server.err = adminExec(context.Background(), "SET GLOBAL local_infile = 1")
		}
		if server.err == nil {
			server.err = warmUp(context.Background())
		}
	})
	if server.skip {
		b.Skipf("no MariaDB to benchmark against: %v", server.err)
	}
	if server.err != nil {
		b.Fatalf("benchmark server: %v", server.err)
	}
	return server.dsn
}

func adminExec(ctx context.Context, q string) error {
	_, err := server.admin.ExecContext(ctx, q)
	return err
}

// warmUp writes and drops about 1 GB of rows on the server side alone, so
// that every page of the new server's buffer pool has been touched once:
// otherwise the first contender of a run pays for the page faults of a
// fresh 1 GB pool and looks slower than it is.
func warmUp(ctx context.Context) error {
	for _, q := range []string{
		"DROP TABLE IF EXISTS bench_warmup",
		"CREATE TABLE bench_warmup (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR(255) NOT NULL) ENGINE=InnoDB",
		// seq_1_to_N is MariaDB's Sequence engine: no client traffic.
		"INSERT INTO bench_warmup SELECT seq, REPEAT('w', 240) FROM seq_1_to_3500000",
		"DROP TABLE bench_warmup",
	} {
		if err := adminExec(ctx, q); err != nil {
			return fmt.Errorf("warm-up: %s: %w", q, err)
		}
	}
	return settle(ctx)
}

// prepare makes the workload's table (dropped and created by the first
// benchmark of this process that uses it) and sets the server's
// max_allowed_packet for the connections opened next.
func prepare(b *testing.B, table, ddl string, packet int) {
	b.Helper()
	ctx := context.Background()
	if err := adminExec(ctx, fmt.Sprintf("SET GLOBAL max_allowed_packet = %d", packet)); err != nil {
		b.Fatalf("set max_allowed_packet: %v", err)
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.created == nil {
		server.created = map[string]bool{}
		server.sums = map[string]sum{}
	}
	if server.created[table] {
		return
	}
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + quote(table),
		"CREATE TABLE " + quote(table) + " (" + ddl + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	} {
		if err := adminExec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	server.created[table] = true
}

// reset empties table and waits until InnoDB has written back the dirty
// pages of earlier loads, so that no contender pays for the flushing of the
// one before it.
func reset(b *testing.B, table string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := adminExec(ctx, "TRUNCATE TABLE "+quote(table)); err != nil {
		b.Fatalf("truncate %s: %v", table, err)
	}
	if err := settle(ctx); err != nil {
		b.Logf("settle: %v (going on)", err)
	}
}

// settle asks the page cleaner to flush everything at once (max dirty
// pages 0%, a high I/O capacity), waits until fewer than settledPages are
// dirty or settleMax passes, and restores the defaults, which are what the
// loads run with.
func settle(ctx context.Context) error {
	const settledPages, settleMax = 64, 60 * time.Second
	for _, q := range []string{
		"SET GLOBAL innodb_io_capacity_max = 100000",
		"SET GLOBAL innodb_io_capacity = 100000",
		"SET GLOBAL innodb_max_dirty_pages_pct = 0",
	} {
		if err := adminExec(ctx, q); err != nil {
			return err
		}
	}
	defer func() {
		ctx := context.WithoutCancel(ctx)
		adminExec(ctx, "SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT")
		adminExec(ctx, "SET GLOBAL innodb_io_capacity = DEFAULT")
		adminExec(ctx, "SET GLOBAL innodb_io_capacity_max = DEFAULT")
	}()
	deadline := time.Now().Add(settleMax)
	for {
		var name string
		var dirty int
		err := server.admin.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty)
		if err != nil {
			return err
		}
		if dirty < settledPages {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d pages still dirty after %v", dirty, settleMax)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countRows is SELECT COUNT(*) of table.
func countRows(b *testing.B, table string) int64 {
	b.Helper()
	var n int64
	if err := server.admin.QueryRow("SELECT COUNT(*) FROM " + quote(table)).Scan(&n); err != nil {
		b.Fatalf("count %s: %v", table, err)
	}
	return n
}

// checkSame compares the table's CHECKSUM TABLE with the first full load of
// the workload in this process: every contender must store the same rows.
func checkSame(b *testing.B, w *workload, by string) {
	b.Helper()
	var name string
	var v int64
	if err := server.admin.QueryRow("CHECKSUM TABLE "+quote(w.table)).Scan(&name, &v); err != nil {
		b.Fatalf("checksum %s: %v", w.table, err)
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	ref, ok := server.sums[w.name]
	if !ok {
		server.sums[w.name] = sum{v, by}
		return
	}
	if ref.value != v {
		b.Errorf("%s: table checksum %d after %s, but %d after %s: the contenders stored different rows",
			w.name, v, by, ref.value, ref.by)
	}
}

// cpuTime is the CPU time (user + system) used so far by this process and
// by the private server (0 when the server is not ours). Comparing the two
// across a load shows which side a contender loads on a 2-core machine.
func cpuTime() (client, srv time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if server.srv != nil {
		srv = procCPU(server.srv.PID())
	}
	return client, srv
}

// procCPU reads utime + stime of process pid from /proc (Linux; clock ticks
// of 10 ms), or 0.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// firstLine shortens an error for a log line: no SQL, no row values.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
