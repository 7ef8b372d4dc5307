package main

// The end-to-end tests need a MariaDB server. BATCH_TEST_DSN points them at
// one; otherwise they start a private mariadbd of their own, the way the
// library's internal/testserver does (that package is internal to the
// library's module and cannot be imported from this one): mariadb-install-db
// into a fresh temporary directory, then mariadbd on a free port of
// 127.0.0.1, killed when the test process ends (Pdeathsig on Linux, from a
// goroutine that holds its OS thread for the server's whole life).
// Without MariaDB installed the tests skip, or fail when CI is set.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// errNoServer: MariaDB is not installed.
var errNoServer = errors.New("no MariaDB server found (need mariadbd and mariadb-install-db; on Debian: apt-get install mariadb-server)")

// server is this test process's private server.
var server struct {
	once sync.Once
	dsn  string
	err  error
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) == "1" {
		main() // the test binary run as the command itself (process_test.go)
		return
	}
	code := m.Run()
	stopServer()
	os.Exit(code)
}

// serverDSN returns BATCH_TEST_DSN, or the DSN of the private server,
// started on first use.
func serverDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("BATCH_TEST_DSN"); dsn != "" {
		return dsn
	}
	server.once.Do(func() { server.err = startServer() })
	switch {
	case errors.Is(server.err, errNoServer) && os.Getenv("CI") == "":
		t.Skipf("%v; set BATCH_TEST_DSN or install MariaDB", server.err)
	case server.err != nil:
		t.Fatalf("private MariaDB: %v", server.err)
	}
	return server.dsn
}

// findProgram looks for the first of names on PATH and in the sbin dirs.
func findProgram(names ...string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p
			}
		}
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// serverArgs are given to mariadb-install-db and to mariadbd.
var serverArgs = []string{
	"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
	"--innodb-buffer-pool-size=256M", "--innodb-log-file-size=64M",
	"--innodb-flush-log-at-trx-commit=2", "--loose-skip-innodb-doublewrite",
}

// startServer installs a data directory and starts mariadbd on it.
func startServer() error {
	bin, install := findProgram("mariadbd", "mysqld"), findProgram("mariadb-install-db", "mysql_install_db")
	if bin == "" || install == "" {
		return errNoServer
	}
	dir, err := os.MkdirTemp("", "batchload")
	if err != nil {
		return err
	}
	server.dir = dir
	if err := installDB(install, dir); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--tmpdir=" + filepath.Join(dir, "tmp"),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "s.sock"),
		"--pid-file=" + filepath.Join(dir, "s.pid"), "--log-error=" + filepath.Join(dir, "s.err"),
		"--skip-name-resolve", "--skip-log-bin", "--local-infile=1"}, serverArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if err := startProcess(exec.Command(bin, args...)); err != nil {
		return err
	}
	server.dsn = fmt.Sprintf("root@tcp(127.0.0.1:%d)/test", port)
	return waitReady(server.dsn)
}

// installDB runs mariadb-install-db into dir/data, with a database test.
func installDB(install, dir string) error {
	initSQL := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initSQL, []byte("CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4;\n"), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return err
	}
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--tmpdir=" + filepath.Join(dir, "tmp"),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", "--extra-file=" + initSQL}, serverArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, install, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", install, err, out)
	}
	return nil
}

// startProcess starts cmd from a goroutine locked to its OS thread, which
// lives until the process ends, so that Pdeathsig fires only when the test
// process dies.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = sysProcAttr()
	started := make(chan error, 1)
	server.done = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(server.done)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	server.cmd = cmd
	return <-started
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady pings dsn until the server answers, for at most a minute.
func waitReady(dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		err := db.Ping()
		select {
		case <-server.done:
			log, _ := os.ReadFile(filepath.Join(server.dir, "s.err"))
			return fmt.Errorf("mariadbd exited before accepting connections:\n%s", log)
		default:
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopServer kills the private server, if any, and removes its files.
func stopServer() {
	if server.cmd != nil && server.cmd.Process != nil {
		_ = server.cmd.Process.Kill()
		<-server.done
	}
	if server.dir != "" {
		os.RemoveAll(server.dir)
	}
}
