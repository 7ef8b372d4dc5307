package testserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// galeraUser is the account the nodes run as when the tests run as root.
const galeraUser = "mysql"

// newClusterFlag makes node 0 bootstrap the cluster; it is given to its
// first start only.
const newClusterFlag = "--wsrep-new-cluster"

// makeNode copies the template datadir for node i and prepares its Server
// (not started). ports are its SQL, IST and SST ports.
func (c *Cluster) makeNode(i int, tmpl string, ports []int, env galeraEnv, opts GaleraOptions) error {
	dir := filepath.Join(c.dir, "n"+strconv.Itoa(i))
	s := &Server{
		dir:     dir,
		datadir: filepath.Join(dir, "data"),
		socket:  filepath.Join(dir, "mysqld.sock"),
		pidFile: filepath.Join(dir, "mysqld.pid"),
		logFile: filepath.Join(dir, "mysqld.err"),
		port:    ports[0],
		bin:     env.bins.server,
		timeout: c.timeout,
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return err
	}
	// Only node 0 needs data: the others get theirs by state transfer.
	if i > 0 {
		if err := os.Mkdir(s.datadir, 0o750); err != nil {
			return err
		}
	} else if err := copyTree(tmpl, s.datadir); err != nil {
		return fmt.Errorf("testserver: copy template datadir: %w", err)
	}
	if err := os.WriteFile(s.logFile, nil, 0o644); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		s.user = galeraUser
		if err := chownTree(dir, galeraUser); err != nil {
			return err
		}
	}
	s.extra = c.nodeArgs(i, ports, env.provider, opts)
	if i == 0 {
		s.extra = append(s.extra, newClusterFlag)
	}
	c.nodes[i] = s
	return nil
}

// nodeArgs are node i's mariadbd options beyond the private server's.
func (c *Cluster) nodeArgs(i int, ports []int, provider string, opts GaleraOptions) []string {
	popts := "gmcast.listen_addr=tcp://" + c.gcomm[i] +
		";ist.recv_addr=127.0.0.1:" + strconv.Itoa(ports[1]) +
		";gcache.size=64M"
	if extra := strings.Trim(opts.ProviderOptions, "; "); extra != "" {
		popts += ";" + extra
	}
	a := []string{
		"--innodb-buffer-pool-size=64M",
		"--wsrep-on=ON",
		"--wsrep-provider=" + provider,
		"--wsrep-cluster-name=" + c.name,
		"--wsrep-cluster-address=gcomm://" + strings.Join(c.public[:], ","),
		"--wsrep-node-name=node" + strconv.Itoa(i),
		"--wsrep-node-address=" + c.gcomm[i],
		"--wsrep-provider-options=" + popts,
		"--wsrep-sst-method=rsync",
		"--wsrep-sst-receive-address=127.0.0.1:" + strconv.Itoa(ports[2]),
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
	}
	return append(a, opts.Args...)
}

// chownTree gives the tree at dir to the named user and its group.
func chownTree(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("testserver: the Galera nodes run as user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// bootstrap starts node 0 as a new cluster, then the others one at a time.
func (c *Cluster) bootstrap() error {
	ctx := context.Background()
	for i, s := range c.nodes {
		s.mu.Lock()
		err := s.startLocked(ctx)
		if i == 0 { // later starts of node 0 rejoin
			s.extra = s.extra[:len(s.extra)-1]
		}
		s.mu.Unlock()
		if err == nil {
			err = c.WaitReady(ctx, i)
		}
		if err != nil {
			return fmt.Errorf("testserver: start Galera node %d: %w", i, err)
		}
	}
	for i := range c.nodes {
		if err := c.WaitStatus(ctx, i, "wsrep_cluster_size", strconv.Itoa(GaleraSize)); err != nil {
			return err
		}
	}
	return nil
}

// Size returns the number of nodes, GaleraSize.
func (c *Cluster) Size() int { return GaleraSize }

// Addr returns node i's SQL address, "127.0.0.1:PORT".
func (c *Cluster) Addr(i int) string { return c.nodes[i].Addr() }

// DSN returns a go-sql-driver/mysql DSN for root on database test of node
// i, with params (see Server.DSN).
func (c *Cluster) DSN(i int, params string) string { return c.nodes[i].DSN(params) }

// PID returns the process id of node i's mariadbd, or 0 if it is not
// running.
func (c *Cluster) PID(i int) int { return c.nodes[i].PID() }

// LogTail returns the end of node i's error log, for failure messages.
func (c *Cluster) LogTail(i int) string { return c.nodes[i].LogTail() }

// Kill sends SIGKILL to node i and waits until it has exited. The other
// nodes notice after evs.suspect_timeout (5 s by default) and go on as a
// cluster of the rest. Start brings it back.
func (c *Cluster) Kill(i int) error { return c.nodes[i].Kill() }

// Stop shuts node i down cleanly (it leaves the cluster at once) and waits
// until it has exited.
func (c *Cluster) Stop(i int) error { return c.nodes[i].Stop() }

// Start starts node i again (stopping it first if it runs) without
// --wsrep-new-cluster, so that it rejoins the running nodes by state
// transfer, and waits until its wsrep_ready is ON. At least one other node
// must be running in a primary component. ctx can cut the wait short.
func (c *Cluster) Start(ctx context.Context, i int) error {
	if err := c.nodes[i].Restart(ctx); err != nil {
		return err
	}
	return c.WaitReady(ctx, i)
}

// WaitReady waits until node i answers SQL and its wsrep_ready is ON (it is
// synced with a primary component), the node has exited, ctx is done, or
// the start timeout has passed.
func (c *Cluster) WaitReady(ctx context.Context, i int) error {
	return c.WaitStatus(ctx, i, "wsrep_ready", "ON")
}

// statusName is what a status variable name may look like.
var statusName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Status returns the value of node i's global status variable name (e.g.
// "wsrep_cluster_size", "wsrep_ready", "wsrep_local_state_comment").
func (c *Cluster) Status(ctx context.Context, i int, name string) (string, error) {
	if !statusName.MatchString(name) {
		return "", fmt.Errorf("testserver: bad status variable name %q", name)
	}
	db, err := sql.Open("mysql", c.DSN(i, "timeout=2s&readTimeout=10s"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	var n, v string
	err = db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&n, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("testserver: node %d has no status variable %s", i, name)
	}
	return v, err
}

// WaitStatus polls node i's status variable name until it is want. It
// gives up when the node is not running, ctx is done, or the cluster's
// start timeout has passed; the error then tells the last value seen.
func (c *Cluster) WaitStatus(ctx context.Context, i int, name, want string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var got string
	var err error
	for {
		got, err = c.Status(ctx, i, name)
		if err == nil && got == want {
			return nil
		}
		if c.PID(i) == 0 {
			return fmt.Errorf("testserver: Galera node %d is not running (waiting for %s = %s)\n%s", i, name, want, c.LogTail(i))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testserver: Galera node %d: %s = %q (error %v), want %q: %w\n%s", i, name, got, err, want, ctx.Err(), c.LogTail(i))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
