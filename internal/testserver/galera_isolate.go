package testserver

import (
	"net"
	"os"
	"sync"
)

// Isolate cuts node i's group communication off from the other nodes, like
// a silent network partition: its proxy and the connections from node i
// through the other nodes' proxies stop forwarding (nothing is closed). The
// SQL port is not affected. After evs.suspect_timeout (5 s by default) the
// others go on as a primary component without node i, and node i, alone in
// a non-primary component, answers SQL that touches data with error 1047
// (ER_UNKNOWN_COM_ERROR, "WSREP has not yet prepared node for application
// use"). More than one node may be isolated; each is cut off from all
// others. Heal ends it.
func (c *Cluster) Isolate(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.isolated[i] = true
	c.applyIsolationLocked()
}

// Heal ends every Isolate: the proxies forward again and isolated nodes
// rejoin (by incremental state transfer); use WaitReady to wait for it.
func (c *Cluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.isolated = [GaleraSize]bool{}
	c.applyIsolationLocked()
}

// applyIsolationLocked freezes, in each proxy, the connections an isolated
// node takes part in: all of an isolated node's proxy, and those coming from
// an isolated node's address in the others.
func (c *Cluster) applyIsolationLocked() {
	from := map[string]bool{}
	for i, iso := range c.isolated {
		if iso {
			from[nodeIP(i)] = true
		}
	}
	for i, p := range c.proxies {
		switch {
		case c.isolated[i]:
			p.Freeze()
		case len(from) > 0:
			p.FreezeClients(func(a net.Addr) bool {
				ta, ok := a.(*net.TCPAddr)
				return ok && from[ta.IP.String()]
			})
		default:
			p.Thaw()
		}
	}
}

// Close kills every node, stops the proxies and removes the cluster's
// temporary directory. It is safe to call more than once.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	for _, s := range c.nodes {
		if s != nil {
			s.Close()
		}
	}
	for _, p := range c.proxies {
		if p != nil {
			p.Close()
		}
	}
	os.RemoveAll(c.dir)
	unregisterCluster(c)
}

// clusters holds the clusters StartGalera made and Close has not closed,
// for Shutdown.
var clusters struct {
	mu  sync.Mutex
	set map[*Cluster]struct{}
}

func registerCluster(c *Cluster) {
	clusters.mu.Lock()
	defer clusters.mu.Unlock()
	if clusters.set == nil {
		clusters.set = map[*Cluster]struct{}{}
	}
	clusters.set[c] = struct{}{}
}

func unregisterCluster(c *Cluster) {
	clusters.mu.Lock()
	defer clusters.mu.Unlock()
	delete(clusters.set, c)
}

// closeClusters closes every registered cluster (see Shutdown).
func closeClusters() {
	clusters.mu.Lock()
	var list []*Cluster
	for c := range clusters.set {
		list = append(list, c)
	}
	clusters.mu.Unlock()
	for _, c := range list {
		c.Close()
	}
}
