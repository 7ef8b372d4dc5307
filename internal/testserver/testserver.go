// Package testserver starts private MariaDB servers for tests.
//
// A private server is a mariadbd process of its own, listening on a free TCP
// port of 127.0.0.1, with its own data directory, unix socket, pid file and
// error log in a fresh temporary directory (os.MkdirTemp("", "batchdb...")).
// User root logs in over TCP with an empty password and a database named
// "test" exists (character set utf8mb4, collation utf8mb4_general_ci), so
// Server.DSN gives a go-sql-driver DSN like
//
//	root@tcp(127.0.0.1:PORT)/test?parseTime=true
//
// # Speed: one template per process
//
// mariadb-install-db takes seconds, so it runs ONCE per test process into a
// template directory; every server, the first one included, gets a plain file
// copy of the template's data directory (about 80 MB; well under a second)
// and then only pays for mariadbd's own start. The template is removed by
// Shutdown.
//
// # Use from tests
//
// For most tests a single server per test process is enough: Shared returns
// its DSN (or BATCH_TEST_DSN when that is set). Tests that kill, restart or
// reconfigure a server take one of their own with Private. A package that
// uses either should stop what was started in its TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testserver.Shutdown()
//		os.Exit(code)
//	}
//
// Without that, the processes still die with the test binary (see below), but
// the temporary directories stay behind until a later test process sweeps
// them.
//
// When no MariaDB server is installed, Private and Shared skip the test, or
// fail it when the environment variable CI is non-empty: CI must never pass by
// skipping. scripts/test.sh installs mariadb-server when it is missing.
//
// # No leaked processes
//
// Close kills the server. In case the test binary dies without reaching
// Close (a panic, a -timeout, a signal), every mariadbd is started with
// Pdeathsig=SIGKILL on Linux, so the kernel kills it when its parent goes.
// Pdeathsig is tied to the OS thread that forked the child, not to the
// process, and the Go runtime may retire threads; so each server's mariadbd
// is started and waited for by a goroutine that holds runtime.LockOSThread
// for the whole life of that mariadbd process and only then returns, which
// guarantees that the forking thread outlives the child. The child also gets
// its own process group so that a terminal's Ctrl-C reaches only the test
// binary (and, through Pdeathsig, the server).
//
// Only MariaDB (tested with 10.11) is supported: MySQL's mysqld has no
// mariadb-install-db.
package testserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // the "mysql" database/sql driver
)

// DefaultStartTimeout is how long Start and Restart wait for a server to
// accept connections when Options.StartTimeout is zero.
const DefaultStartTimeout = 60 * time.Second

// stopTimeout bounds a clean shutdown (Stop) before the server is killed.
const stopTimeout = 60 * time.Second

// ErrNoServer is returned (wrapped) by Start when no MariaDB server binary
// (mariadbd or mysqld) or no mariadb-install-db (or mysql_install_db) can be
// found on PATH, in /usr/sbin or in /usr/bin.
var ErrNoServer = errors.New("testserver: no MariaDB server found (need mariadbd or mysqld, and mariadb-install-db or mysql_install_db; on Debian: apt-get install mariadb-server)")

// Options configures a private server.
type Options struct {
	// Args are extra mariadbd command-line options, appended after the
	// harness's own defaults so that they override them, e.g.
	// "--max-allowed-packet=8192", "--wait-timeout=2",
	// "--net-buffer-length=4096" or "--sql-mode=STRICT_ALL_TABLES".
	// They apply to every start of the server, Restart included.
	//
	// The options that place the server (--no-defaults, --datadir, --port,
	// --socket, --bind-address, --pid-file, --log-error, --tmpdir) are the
	// harness's own: Start rejects them. Options that must match how a data
	// directory was created (innodb-page-size, lower-case-table-names)
	// cannot be used either, since data directories are copied from a
	// shared template.
	Args []string

	// StartTimeout bounds how long Start and Restart wait until the server
	// accepts connections; zero means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Server is a private mariadbd process. Its methods are safe for concurrent
// use.
type Server struct {
	dir     string // temp dir holding everything below
	datadir string
	socket  string
	pidFile string
	logFile string
	port    int
	bin     string
	extra   []string
	timeout time.Duration
	user    string // as root: the user to run mariadbd as; "" means root

	mu     sync.Mutex
	proc   *process // the current (or last) mariadbd; nil before the first start
	closed bool
}

// process is one run of mariadbd.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed once cmd.Wait has returned
	waitErr error         // cmd.Wait's result; read only after done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start starts a private server (see the package documentation) and returns
// once it accepts connections as root over TCP. The caller must Close it.
// When no server binary is installed the error wraps ErrNoServer.
func Start(opts Options) (*Server, error) {
	if err := checkArgs(opts.Args); err != nil {
		return nil, err
	}
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	tmpl, err := template(bins)
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir()
	if err != nil {
		return nil, err
	}
	s := &Server{
		dir:     dir,
		datadir: filepath.Join(dir, "data"),
		socket:  filepath.Join(dir, "mysqld.sock"),
		pidFile: filepath.Join(dir, "mysqld.pid"),
		logFile: filepath.Join(dir, "mysqld.err"),
		bin:     bins.server,
		extra:   append([]string(nil), opts.Args...),
		timeout: opts.StartTimeout,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultStartTimeout
	}
	fail := func(err error) (*Server, error) {
		s.mu.Lock()
		s.killLocked()
		s.mu.Unlock()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return fail(err)
	}
	if err := copyTree(tmpl, s.datadir); err != nil {
		return fail(fmt.Errorf("testserver: copy template datadir: %w", err))
	}

	if err := s.startOnFreePort(); err != nil {
		return fail(err)
	}
	register(s)
	return s, nil
}

// startOnFreePort starts the server on a free port. The port is picked by
// binding port 0 and closing the listener, so another process may grab it
// before mariadbd binds it: it tries again then.
func (s *Server) startOnFreePort() error {
	const attempts = 5
	for i := 1; ; i++ {
		var err error
		if s.port, err = freePort(); err != nil {
			return err
		}
		s.mu.Lock()
		err = s.startLocked(context.Background())
		s.mu.Unlock()
		if err == nil || i == attempts || !errors.Is(err, errPortInUse) {
			return err
		}
	}
}

// checkArgs refuses Options.Args that set what the harness places.
func checkArgs(args []string) error {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.ReplaceAll(name, "_", "-")
		switch name {
		case "no-defaults", "datadir", "port", "socket", "bind-address", "pid-file", "log-error", "tmpdir":
			return fmt.Errorf("testserver: Options.Args must not set %q: the harness sets it", a)
		}
	}
	return nil
}

var errPortInUse = errors.New("port already in use")

// args returns mariadbd's full argument list (without the program name).
func (s *Server) args() []string {
	a := []string{
		"--no-defaults", // must come first
		"--datadir=" + s.datadir,
		"--tmpdir=" + filepath.Join(s.dir, "tmp"),
		"--port=" + strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--socket=" + s.socket,
		"--pid-file=" + s.pidFile,
		"--log-error=" + s.logFile,
		"--skip-name-resolve",
		"--skip-log-bin",
	}
	if os.Geteuid() == 0 && s.user == "" {
		// mariadbd refuses to run as root unless told to.
		a = append(a, "--user=root")
	}
	a = append(a, commonArgs...)
	return append(a, s.extra...)
}

// commonArgs are given both to mariadb-install-db (which passes them on to
// mariadbd --bootstrap) and to every server start.
var commonArgs = []string{
	// --no-defaults would leave latin1; use what Debian's config file sets.
	"--character-set-server=utf8mb4",
	"--collation-server=utf8mb4_general_ci",
	// Small and fast InnoDB: nothing here must survive a machine crash.
	"--innodb-buffer-pool-size=256M",
	"--innodb-log-file-size=64M",
	"--innodb-flush-log-at-trx-commit=2",
	"--loose-skip-innodb-doublewrite", // loose-: only a warning where unknown
}

// startLocked starts mariadbd on s's datadir and port and waits until it
// accepts connections. s.mu must be held.
func (s *Server) startLocked(ctx context.Context) error {
	logStart := fileSize(s.logFile)
	// mariadbd writes to stderr until it has opened --log-error (e.g. the
	// "how to run mariadbd as root" refusal), so send stdout and stderr to
	// the same file.
	out, err := os.OpenFile(s.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Stdin = nil
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if s.user != "" && os.Geteuid() == 0 {
		// Started as that user rather than switching with --user, which
		// would clear Pdeathsig.
		if err := runAs(cmd.SysProcAttr, s.user); err != nil {
			return err
		}
	}
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("testserver: start %s: %w", s.bin, err)
	}
	s.proc = p
	if err := s.waitReady(ctx, p); err != nil {
		s.killLocked()
		log := s.logSince(logStart)
		if strings.Contains(log, "Address already in use") || strings.Contains(log, "Bind on TCP/IP port") {
			err = fmt.Errorf("%w: %w", err, errPortInUse)
		}
		return fmt.Errorf("%w\n--- mariadbd log (%s) ---\n%s", err, s.logFile, tail(log, 4096))
	}
	return nil
}

// startProcess starts cmd from a goroutine locked to its OS thread and keeps
// that goroutine (and so the thread) alive until the process has exited, so
// that Pdeathsig fires only when the test process itself dies.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread, which is harmless because the child has been reaped.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			p.waitErr = err
			close(p.done)
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// waitReady polls with db.PingContext over TCP until the server accepts a
// login of root to database test, the process exits, or the deadline passes.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	db, err := sql.Open("mysql", s.DSN("timeout=5s"))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxIdleConns(0)
	// A refused local connect costs microseconds: poll often.
	const delay = 25 * time.Millisecond
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		last = db.PingContext(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("testserver: mariadbd exited before accepting connections (%v)", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("testserver: mariadbd not ready after %v: %w (last ping error: %v)", s.timeout, ctx.Err(), last)
		case <-time.After(delay):
		}
	}
}

// Addr returns the server's TCP address, "127.0.0.1:PORT".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// DSN returns a go-sql-driver/mysql DSN for root on database test over TCP,
// with params (e.g. "parseTime=true&loc=UTC") as its query string, if any:
// "root@tcp(127.0.0.1:PORT)/test?" + params.
func (s *Server) DSN(params string) string {
	return AddParams("root@tcp("+s.Addr()+")/test", params)
}

// AddParams appends URL-style params ("a=1&b=2") to the go-sql-driver DSN
// dsn, with "?" or "&" as needed. It returns dsn unchanged if params is
// empty. Use it on what Shared returns, which may already hold parameters.
func AddParams(dsn, params string) string {
	params = strings.TrimLeft(params, "?&")
	if params == "" {
		return dsn
	}
	// The parameters start at the first '?' after the last '/' (a password
	// may hold a '?'; the database name cannot).
	tail := dsn[strings.LastIndex(dsn, "/")+1:]
	switch {
	case !strings.Contains(tail, "?"):
		return dsn + "?" + params
	case strings.HasSuffix(dsn, "?") || strings.HasSuffix(dsn, "&"):
		return dsn + params
	}
	return dsn + "&" + params
}

// PID returns the process id of the running mariadbd, or 0 if it is not
// running (killed, stopped, crashed or closed).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Kill sends SIGKILL to mariadbd and waits until it has exited, like a crash:
// open connections break and nothing is flushed. The datadir stays, so
// Restart can bring the server back (with crash recovery). It returns an error
// if the server is not running.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.runningLocked(); err != nil {
		return err
	}
	s.killLocked()
	return nil
}

// killLocked kills the current process, if any, and waits for it.
func (s *Server) killLocked() {
	p := s.proc
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (s *Server) runningLocked() error {
	if s.closed {
		return errors.New("testserver: server is closed")
	}
	if s.proc == nil || s.proc.exited() {
		return errors.New("testserver: server is not running")
	}
	return nil
}

// Stop shuts the server down cleanly (SIGTERM) and waits until it has exited;
// if that takes over a minute it kills it and returns an error. The datadir
// stays, so Restart can start it again. It returns an error if the server is
// not running or did not exit cleanly.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if err := s.runningLocked(); err != nil {
		return err
	}
	p := s.proc
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("testserver: stop: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		s.killLocked()
		return fmt.Errorf("testserver: mariadbd did not shut down within %v; killed it\n%s", stopTimeout, s.LogTail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("testserver: mariadbd shutdown: %w\n%s", p.waitErr, s.LogTail())
	}
	return nil
}

// Restart starts mariadbd again on the same datadir, port and socket, with the
// same options, and waits until it accepts connections (crash recovery after
// Kill may take seconds). If the server is still running it is first stopped
// with Stop. ctx can cut the wait short; Options.StartTimeout bounds it too.
// On failure the server is left down and the error carries the log tail.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("testserver: server is closed")
	}
	if s.proc != nil && !s.proc.exited() {
		if err := s.stopLocked(); err != nil {
			return err
		}
	}
	return s.startLocked(ctx)
}

// Close kills the server (its data is thrown away, so a clean shutdown would
// only cost time) and removes its temporary directory. It is safe to call more
// than once and after Kill or Stop.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.killLocked()
	os.RemoveAll(s.dir)
	unregister(s)
}

// LogTail returns the last few kilobytes of the server's error log (which
// also receives mariadbd's stdout and stderr), for failure messages.
func (s *Server) LogTail() string {
	return tail(s.logSince(0), 4096)
}

// logSince returns the error log from byte offset off on ("" if unreadable).
func (s *Server) logSince(off int64) string {
	f, err := os.Open(s.logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	if size := fileSize(s.logFile); size-off > 1<<20 {
		off = size - 1<<20
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// tail returns about the last n bytes of s, starting at a line boundary.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}

func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testserver: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// outputTail is tail for a command's combined output.
func outputTail(b []byte) string {
	return tail(string(bytes.TrimSpace(b)), 4096)
}
