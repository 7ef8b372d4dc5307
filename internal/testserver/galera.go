package testserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchsql/batch/internal/faultproxy"
)

// GaleraSize is the number of nodes of a Cluster.
const GaleraSize = 3

// DefaultGaleraStartTimeout bounds the start of each node of a Cluster
// (state transfer included) when GaleraOptions.StartTimeout is zero.
const DefaultGaleraStartTimeout = 2 * time.Minute

// ErrNoGalera is returned (wrapped) by StartGalera when the Galera provider
// library (libgalera_smm.so) is not installed.
var ErrNoGalera = errors.New("testserver: no Galera provider found (libgalera_smm.so; on Debian: apt-get install galera-4 rsync)")

// galeraProviders are where distributions put the Galera 4 provider.
var galeraProviders = []string{
	"/usr/lib/galera/libgalera_smm.so", // Debian, Ubuntu
	"/usr/lib/galera-4/libgalera_smm.so",
	"/usr/lib64/galera-4/libgalera_smm.so", // RHEL, Fedora
	"/usr/lib64/galera/libgalera_smm.so",
}

// proxyIP is the loopback address every group-communication proxy listens
// on and dials from; node i listens on nodeIP(i). See the Cluster
// documentation.
const proxyIP = "127.0.2.1"

func nodeIP(i int) string { return "127.0.1." + strconv.Itoa(i+1) }

// GaleraOptions configures a Cluster.
type GaleraOptions struct {
	// Args are extra mariadbd options for every node, appended after the
	// harness's own (see Options.Args; the same placement options and the
	// wsrep options the harness sets are rejected).
	Args []string

	// ProviderOptions are extra Galera provider options, "name=value"
	// pairs separated by ';', appended to the harness's
	// (gmcast.listen_addr, ist.recv_addr, gcache.size=64M), e.g.
	// "evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S" for faster
	// failure detection (defaults PT5S and PT15S).
	ProviderOptions string

	// StartTimeout bounds the start of each node, state transfer included;
	// zero means DefaultGaleraStartTimeout.
	StartTimeout time.Duration
}

// Cluster is a MariaDB Galera cluster of GaleraSize private nodes on
// loopback, numbered from 0; node 0 bootstrapped the cluster. Each node is a
// private server (see the package documentation) with its own SQL port on
// 127.0.0.1, so that DSN(i, ...) reaches node i directly. Its methods are
// safe for concurrent use.
//
// Nodes run with wsrep_sst_method=rsync and binlog_format=ROW. As root they
// run as the mysql user (the rsync state transfer fails as root): they are
// started as that user, not given --user, because switching users would
// clear their Pdeathsig; the cluster's temporary directory is made
// reachable by it.
//
// Group communication runs through one faultproxy per node, so that
// Isolate can cut a node off without touching the processes: node i listens
// on 127.0.1.(i+1):P_i, its proxy on 127.0.2.1:P_i (same port), and the
// cluster address lists only the proxies. Galera learns a peer's address as
// the connection's source IP with the port the peer announces; since the
// proxies dial from 127.0.2.1, every node only ever learns and dials proxy
// addresses, and every proxy can tell which node a connection comes from by
// its source IP. State transfers (IST, SST) go directly between nodes.
type Cluster struct {
	dir     string
	name    string
	nodes   [GaleraSize]*Server
	gcomm   [GaleraSize]string // node i's own group-communication address
	public  [GaleraSize]string // its proxy's address
	proxies [GaleraSize]*faultproxy.Proxy
	timeout time.Duration

	mu       sync.Mutex
	isolated [GaleraSize]bool
	closed   bool
}

// Galera starts a Cluster for t with opts and closes it when t and its
// subtests are done (t.Cleanup). It skips t when the Galera provider or
// MariaDB is not installed, except that it fails t instead when the
// environment variable CI is non-empty. Any other failure fails t.
func Galera(t testing.TB, opts GaleraOptions) *Cluster {
	t.Helper()
	c, err := StartGalera(opts)
	if err != nil {
		galeraSkipOrFatal(t, err)
	}
	t.Cleanup(c.Close)
	return c
}

func galeraSkipOrFatal(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoGalera) {
		skipOrFatal(t, err)
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%v\nCI is set, so this fails rather than skips: scripts/test.sh installs galera-4 and rsync", err)
	}
	t.Skipf("%v\nskipping; run scripts/test.sh (installs galera-4 and rsync)", err)
}

// StartGalera starts a Cluster: node 0 with --wsrep-new-cluster, then the
// others one at a time, each joining by rsync state transfer, each waited
// for until wsrep_ready is ON, and returns once wsrep_cluster_size is
// GaleraSize on every node. The caller must Close it. When the provider is
// not installed the error wraps ErrNoGalera; without MariaDB, ErrNoServer.
func StartGalera(opts GaleraOptions) (*Cluster, error) {
	if err := checkGaleraArgs(opts.Args); err != nil {
		return nil, err
	}
	env, err := findGalera()
	if err != nil {
		return nil, err
	}
	c, err := newCluster(opts, env)
	if err != nil {
		return nil, err
	}
	if err := c.bootstrap(); err != nil {
		c.Close()
		return nil, err
	}
	registerCluster(c)
	return c, nil
}

// galeraEnv is what a cluster needs installed.
type galeraEnv struct {
	bins     binaries
	provider string
}

func findGalera() (galeraEnv, error) {
	var env galeraEnv
	for _, p := range galeraProviders {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			env.provider = p
			break
		}
	}
	if env.provider == "" {
		return env, fmt.Errorf("%w (looked in %s)", ErrNoGalera, strings.Join(galeraProviders, ", "))
	}
	var err error
	if env.bins, err = findBinaries(); err != nil {
		return env, err
	}
	for _, prog := range []string{"wsrep_sst_rsync", "rsync"} {
		if findProgram(prog) == "" {
			return env, fmt.Errorf("testserver: %s not found: the rsync state transfer needs it (on Debian: apt-get install rsync mariadb-server)", prog)
		}
	}
	return env, nil
}

// checkGaleraArgs rejects the options the harness sets for every node.
func checkGaleraArgs(args []string) error {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.ReplaceAll(name, "_", "-")
		switch name {
		case "no-defaults", "datadir", "port", "socket", "bind-address", "pid-file", "log-error", "tmpdir", "user",
			"wsrep-on", "wsrep-provider", "wsrep-cluster-name", "wsrep-cluster-address", "wsrep-node-address",
			"wsrep-provider-options", "wsrep-sst-method", "wsrep-sst-receive-address", "wsrep-new-cluster":
			return fmt.Errorf("testserver: GaleraOptions.Args must not set %q: the harness sets it", a)
		}
	}
	return nil
}

// newCluster lays out the nodes' directories, picks their ports and starts
// the proxies; no node runs yet.
func newCluster(opts GaleraOptions, env galeraEnv) (*Cluster, error) {
	tmpl, err := template(env.bins)
	if err != nil {
		return nil, err
	}
	dir, err := makeClusterDir()
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	c := &Cluster{dir: dir, name: "batchtest-" + hex.EncodeToString(suffix), timeout: opts.StartTimeout}
	if c.timeout <= 0 {
		c.timeout = DefaultGaleraStartTimeout
	}
	ports, err := reservePorts(3 * GaleraSize) // SQL, IST, SST per node
	if err == nil {
		err = c.startProxies()
	}
	for i := 0; err == nil && i < GaleraSize; i++ {
		err = c.makeNode(i, tmpl, ports[3*i:3*i+3], env, opts)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// makeClusterDir makes the cluster's temp dir, reachable by the mysql user
// when running as root.
func makeClusterDir() (string, error) {
	dir, err := makeTempDir()
	if err != nil {
		return "", err
	}
	if os.Geteuid() != 0 {
		return dir, nil
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.RemoveAll(dir)
			return "", fmt.Errorf("testserver: %s is not searchable by others, so the mysql user cannot reach the Galera nodes' directories in %s; set TMPDIR", d, dir)
		}
		if d == filepath.Dir(d) {
			return dir, nil
		}
	}
}

// reservePorts returns n distinct TCP ports of 127.0.0.1 that were free a
// moment ago.
func reservePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testserver: find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startProxies starts node i's proxy on 127.0.2.1:P for a port P that is
// also free on nodeIP(i), where the node will listen.
func (c *Cluster) startProxies() error {
	for i := range GaleraSize {
		var err error
		for range 10 {
			var port int
			if port, err = freePortOn(proxyIP); err != nil {
				continue
			}
			c.public[i] = net.JoinHostPort(proxyIP, strconv.Itoa(port))
			c.gcomm[i] = net.JoinHostPort(nodeIP(i), strconv.Itoa(port))
			if _, err = freePortOn(c.gcomm[i]); err != nil {
				continue
			}
			c.proxies[i], err = faultproxy.Start(faultproxy.Options{Target: c.gcomm[i], Listen: c.public[i], LocalIP: proxyIP})
			if err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("testserver: start the group-communication proxy of node %d: %w", i, err)
		}
	}
	return nil
}

// freePortOn binds addr (a host, or host:port) and returns the port bound.
func freePortOn(addr string) (int, error) {
	if !strings.Contains(addr, ":") {
		addr += ":0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
