package testserver

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// binaries are the programs a private server needs.
type binaries struct {
	server  string // mariadbd or mysqld
	install string // mariadb-install-db or mysql_install_db
}

// findBinaries looks for the server and install-db programs on PATH and in
// /usr/sbin and /usr/bin (Debian puts mariadbd in /usr/sbin, which is not on
// every user's PATH).
func findBinaries() (binaries, error) {
	var b binaries
	b.server = findProgram("mariadbd", "mysqld")
	b.install = findProgram("mariadb-install-db", "mysql_install_db")
	if b.server == "" || b.install == "" {
		return b, fmt.Errorf("%w (found server %q, install-db %q)", ErrNoServer, b.server, b.install)
	}
	return b, nil
}

func findProgram(names ...string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

// tmpl is this process's template: a data directory made once by
// mariadb-install-db, copied for every server.
var tmpl struct {
	mu    sync.Mutex
	dir   string // temp dir; the datadir is dir/data
	err   error  // a failed install-db is not retried
	swept bool
}

// installTimeout bounds mariadb-install-db.
const installTimeout = 3 * time.Minute

// template returns the template datadir, making it on first use.
func template(b binaries) (string, error) {
	tmpl.mu.Lock()
	defer tmpl.mu.Unlock()
	if !tmpl.swept {
		tmpl.swept = true
		sweepStale()
	}
	if tmpl.dir == "" && tmpl.err == nil {
		tmpl.dir, tmpl.err = installTemplate(b)
	}
	if tmpl.err != nil {
		return "", tmpl.err
	}
	return filepath.Join(tmpl.dir, "data"), nil
}

// removeTemplate deletes the template; a later Start makes a new one.
func removeTemplate() {
	tmpl.mu.Lock()
	defer tmpl.mu.Unlock()
	if tmpl.dir != "" {
		os.RemoveAll(tmpl.dir)
	}
	tmpl.dir, tmpl.err = "", nil
}

// initSQL runs after the system tables are made. Root's empty-password TCP
// login comes from --auth-root-authentication-method=normal.
const initSQL = "CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;\n"

func installTemplate(b binaries) (string, error) {
	dir, err := makeTempDir()
	if err != nil {
		return "", err
	}
	extra := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(extra, []byte(initSQL), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	// Its own tmpdir: install-db runs mariadbd --bootstrap, which removes
	// temporary files it finds there, other processes' included.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	args := []string{
		"--no-defaults", // must come first
		"--datadir=" + filepath.Join(dir, "data"),
		"--tmpdir=" + tmp,
		"--auth-root-authentication-method=normal",
		"--skip-test-db", // it would also grant anonymous access to test_%
		"--skip-name-resolve",
		"--extra-file=" + extra,
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	// Passed on to mariadbd --bootstrap: the template gets the same redo
	// log size and default character set as the servers.
	args = append(args, commonArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.install, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("testserver: %s %v: %w\n%s", b.install, args, err, outputTail(out))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "mysql")); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("testserver: %s made no system tables: %w\n%s", b.install, err, outputTail(out))
	}
	return dir, nil
}

// maxSocketPath keeps the unix socket path under the kernel's 108-byte limit
// (sun_path, NUL included) with room to spare.
const maxSocketPath = 100

// ownerFile, in every temp dir this package makes, holds "PID HOSTNAME" of
// the test process that made it, so that later processes can sweep the dirs
// of dead ones.
const ownerFile = "owner"

// makeTempDir makes a fresh "batchdb*" temp dir, short enough for a socket.
func makeTempDir() (string, error) {
	dir, err := os.MkdirTemp("", "batchdb")
	if err == nil && len(filepath.Join(dir, "mysqld.sock")) > maxSocketPath {
		os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", "batchdb")
	}
	if err != nil {
		return "", fmt.Errorf("testserver: make temp dir: %w", err)
	}
	host, _ := os.Hostname()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d %s\n", os.Getpid(), host), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepStale removes the temp dirs of test processes of this host that died
// without Shutdown or Close (their servers died with them, by Pdeathsig).
// Dirs whose owner is alive or unknown, or whose mariadbd still runs, stay.
func sweepStale() {
	host, _ := os.Hostname()
	seen := map[string]bool{}
	for _, root := range []string{os.TempDir(), "/tmp"} {
		matches, _ := filepath.Glob(filepath.Join(root, "batchdb*"))
		for _, dir := range matches {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			b, err := os.ReadFile(filepath.Join(dir, ownerFile))
			if err != nil {
				continue
			}
			var pid int
			var h string
			if n, _ := fmt.Sscanf(string(b), "%d %s", &pid, &h); n != 2 || h != host || pid == os.Getpid() || processAlive(pid) {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(dir, "mysqld.pid")); err == nil {
				var spid int
				if _, err := fmt.Sscanf(string(b), "%d", &spid); err == nil && processAlive(spid) {
					continue
				}
			}
			os.RemoveAll(dir)
		}
	}
}

// copyTree copies the directory tree src to the new directory dst (regular
// files and directories only). On Linux io.Copy between files uses
// copy_file_range, so the data does not pass through user space.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		default:
			return nil // sockets, pipes, symlinks: none in a fresh datadir
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

// registry holds the servers Start made and Close has not closed yet, so that
// Shutdown can close them all.
var registry struct {
	mu      sync.Mutex
	servers map[*Server]struct{}
}

func register(s *Server) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.servers == nil {
		registry.servers = map[*Server]struct{}{}
	}
	registry.servers[s] = struct{}{}
}

func unregister(s *Server) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	delete(registry.servers, s)
}

func registered() []*Server {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var list []*Server
	for s := range registry.servers {
		list = append(list, s)
	}
	return list
}
