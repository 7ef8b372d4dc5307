package batch

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// This file is failover (the Failover option): the nodes of a cluster a
// load may write through, the one in use, and when to move to the next.
// Every worker writes through the node in use (Galera's single-writer
// practice: the load's own workers never conflict in certification); a
// node that cannot serve sends the connections opened after it to the next
// node. A read that settles a lost reply on a Galera node waits for the
// node to have applied every write the cluster committed before it
// (wsrep_sync_wait), so that it sees what another node committed.

// Failover gives the load other nodes of the same cluster to write
// through (MariaDB Galera, Percona XtraDB Cluster, Group Replication, a
// TiDB or Vitess gateway). The DB given to [Insert], [Replace] or
// [NewWriter] is the first node; when the node in use cannot serve —
// connection refused, 1047 "WSREP has not yet prepared node" (a Galera
// node outside the primary component), a Galera node not Synced, 1290
// read-only, a "not serving" TiDB or Vitess — the connections opened next
// go to the next node, in order, round and round. All workers write
// through one node at a time. [Result].Moves and NodeRows say when the load
// moved and which node wrote what; each move is logged at Warn. A node is
// not written to again once left, unless the others fail too.
func Failover(alternates ...*sql.DB) Option {
	return func(o *options) {
		for _, db := range alternates {
			if db == nil {
				o.fail(ErrNilDB)
				return
			}
			o.alternates = append(o.alternates, db)
		}
	}
}

// Move is one move of a load to another node (Failover).
type Move struct {
	At       time.Duration // since the load started
	From, To int           // 0: the DB given to the load, then the alternates in order
	Err      error         // why: the error the node answered, or could not be reached with
}

// nodes are the pools a load may write through, and the one in use. Safe
// for concurrent use.
type nodes struct {
	mu    sync.Mutex
	pools []pool
	cur   int
	tally *tally
}

// current is the node in use.
func (n *nodes) current() (int, pool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur, n.pools[n.cur]
}

// move leaves node from for the next one, after err, unless another worker
// moved already (moved is then false). round reports whether the move
// completed a round of the nodes, back to the first.
func (n *nodes) move(from int, err error) (to int, moved, round bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur != from {
		return n.cur, false, false
	}
	n.cur = (from + 1) % len(n.pools)
	n.tally.moved(from, n.cur, err)
	return n.cur, true, n.cur == 0
}

// errNodeNotReady: a Galera node that is not ready for application use
// (wsrep_ready OFF, or not Synced: joining, donor, desynced).
var errNodeNotReady = errors.New("batch: the Galera node is not ready (wsrep_ready or wsrep_local_state_comment)")

// errNodeReadOnly: a node whose read_only is set.
var errNodeReadOnly = errors.New("batch: the node is read-only (read_only)")

// checkNode refuses a node that cannot take writes now: read-only (a
// secondary, a demoted primary) or a Galera node that is not ready. Servers
// without read_only or wsrep pass those checks.
func checkNode(ctx context.Context, q queryRower, lim *Limits) error {
	var ro int
	switch err := q.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); {
	case err != nil && errNumber(err) != erUnknownSystemVariable:
		return err
	case ro != 0:
		return errNodeReadOnly
	}
	var name, on string
	switch err := q.QueryRowContext(ctx, "SHOW VARIABLES LIKE 'wsrep_on'").Scan(&name, &on); {
	case errors.Is(err, sql.ErrNoRows):
		return nil // not a Galera server
	case err != nil:
		return err
	case !strings.EqualFold(on, "ON"):
		return nil
	}
	lim.galera = true
	var ready, state string
	if err := q.QueryRowContext(ctx, "SHOW STATUS LIKE 'wsrep_ready'").Scan(&name, &ready); err != nil {
		return err
	}
	if err := q.QueryRowContext(ctx, "SHOW STATUS LIKE 'wsrep_local_state_comment'").Scan(&name, &state); err != nil {
		return err
	}
	if !strings.EqualFold(ready, "ON") || !strings.EqualFold(state, "Synced") {
		return errNodeNotReady
	}
	return nil
}

// nodeDown reports whether err says the node cannot serve now: no
// connection to it, or a node that refuses writes.
func nodeDown(err error) bool {
	var op *net.OpError
	switch {
	case errors.Is(err, errNodeNotReady), errors.Is(err, errNodeReadOnly):
		return true
	case errors.As(err, &op) && op.Op == "dial":
		return true
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case erUnknownComError: // Galera "WSREP has not yet prepared node for application use"
		return true
	case erOptionPreventsStatement: // --read-only, super_read_only
		return strings.Contains(strings.ToLower(me.Message), "read")
	case erUnknownError: // TiDB's and Vitess's "... not serving ..."
		return strings.Contains(strings.ToLower(me.Message), "not serving") || strings.Contains(me.Message, "NOT_SERVING")
	case erDuringCommit: // Galera "Not connected to Primary Component"
		return strings.Contains(me.Message, "Primary Component")
	}
	return false
}

// withSyncWait runs look-up f on s so that it sees every write the cluster
// committed before it: on a Galera node, with wsrep_sync_wait=1 for the
// time of f (reset after; the connection is dropped if the reset fails).
// Elsewhere f runs as it is.
func withSyncWait(ctx context.Context, s *session, f func() error) error {
	if !s.lim.galera {
		return f()
	}
	if _, err := s.h.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1"); err != nil {
		return err
	}
	err := f()
	if _, rerr := s.h.ExecContext(context.WithoutCancel(ctx), "SET SESSION wsrep_sync_wait = 0"); rerr != nil && err == nil {
		err = rerr // the caller drops the session
	}
	return err
}

// sameServer reports whether two connections' limits come from the same
// node: a connection id means something only there.
func (l Limits) sameServer(old Limits) bool { return l.node == old.node }

// nodeError is an error opening a session on a node: which node, for
// Failover to know which one to leave. It unwraps to the error itself.
type nodeError struct {
	node int
	err  error
}

func (e *nodeError) Error() string { return e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// moveAway moves the load off the node err came from, when err says that
// node cannot serve and there is another. It reports whether it moved, and
// whether that move completed a round of the nodes (then wait before the
// next attempt).
func (e *engine) moveAway(err error) (moved, round bool) {
	var ne *nodeError
	if e.env.nodes == nil || len(e.env.nodes.pools) < 2 || !errors.As(err, &ne) || !nodeDown(err) {
		return false, false
	}
	to, moved, round := e.env.nodes.move(ne.node, err)
	if moved {
		e.log.Warn("batch: node cannot serve; moving to another node", "from", ne.node, "to", to, "errno", errNumber(err))
	}
	return true, round
}

// over reports whether whatever the connection of limits old ran is over
// for good, as seen from session s: the server restarted since, or stop (a
// kill and a wait, gone or ended) says so. A connection to another node is
// taken as over: the load left that node because it could not serve, and
// a Galera node outside the primary component cannot commit.
func over(ctx context.Context, s *session, old Limits, stop func(context.Context, *session, uint64) bool) bool {
	if !s.lim.sameServer(old) || s.lim.restartedSince(old) {
		return true
	}
	return stop(ctx, s, old.connID)
}
