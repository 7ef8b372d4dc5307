package testserver

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// galeraCluster starts a cluster for t and logs how long that took.
func galeraCluster(t *testing.T, opts GaleraOptions) *Cluster {
	t.Helper()
	start := time.Now()
	c := Galera(t, opts)
	t.Logf("Galera cluster of %d nodes up in %v", c.Size(), time.Since(start).Round(time.Millisecond))
	return c
}

// syncConn returns a connection to node i with wsrep_sync_wait=1, so that
// its reads see every write the cluster committed before them.
func syncConn(t *testing.T, c *Cluster, i int) *sql.Conn {
	t.Helper()
	db := open(t, c.DSN(i, "timeout=5s"))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), "SET SESSION wsrep_sync_wait=1"); err != nil {
		t.Fatal(err)
	}
	return conn
}

func connInt(t *testing.T, conn *sql.Conn, q string) int64 {
	t.Helper()
	var v int64
	if err := conn.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func waitStatus(t *testing.T, c *Cluster, i int, name, want string) {
	t.Helper()
	start := time.Now()
	if err := c.WaitStatus(context.Background(), i, name, want); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d: %s = %s after %v", i, name, want, time.Since(start).Round(time.Millisecond))
}

// TestGalera: a row written on node 0 is read on node 2; a SIGKILLed node 1
// leaves the cluster and rejoins when started again, with what was written
// meanwhile.
func TestGalera(t *testing.T) {
	c := galeraCluster(t, GaleraOptions{})
	galeraCheckUser(t, c)
	for i := range c.Size() {
		db := open(t, c.DSN(i, ""))
		if got := queryString(t, db, "SELECT @@wsrep_on"); got != "1" {
			t.Fatalf("node %d: @@wsrep_on = %q", i, got)
		}
	}
	Exec(t, c.DSN(0, ""),
		"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
		"INSERT INTO t VALUES (1, 'a')")
	n2 := syncConn(t, c, 2)
	if got := connInt(t, n2, "SELECT COUNT(*) FROM t WHERE id = 1 AND v = 'a'"); got != 1 {
		t.Fatalf("node 2 sees %d rows written on node 0, want 1", got)
	}

	pid := c.PID(1)
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) || c.PID(1) != 0 {
		t.Fatalf("node 1 (pid %d) still alive after Kill", pid)
	}
	for _, i := range []int{0, 2} {
		waitStatus(t, c, i, "wsrep_cluster_size", "2")
	}
	Exec(t, c.DSN(2, ""), "INSERT INTO t VALUES (2, 'b')")

	start := time.Now()
	if err := c.Start(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 1 rejoined in %v", time.Since(start).Round(time.Millisecond))
	for i := range c.Size() {
		waitStatus(t, c, i, "wsrep_cluster_size", strconv.Itoa(c.Size()))
	}
	n1 := syncConn(t, c, 1)
	if got := connInt(t, n1, "SELECT COUNT(*) FROM t"); got != 2 {
		t.Fatalf("rejoined node 1 sees %d rows, want 2", got)
	}
}

// TestGaleraIsolate: an isolated node answers 1047 while the other two go
// on; after Heal it rejoins and sees what was written meanwhile.
func TestGaleraIsolate(t *testing.T) {
	c := galeraCluster(t, GaleraOptions{})
	Exec(t, c.DSN(0, ""), "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO t VALUES (1)")
	db2 := open(t, c.DSN(2, "timeout=5s"))

	start := time.Now()
	c.Isolate(2)
	waitErr1047(t, db2)
	t.Logf("isolated node 2 answers 1047 after %v", time.Since(start).Round(time.Millisecond))
	for _, i := range []int{0, 1} {
		waitStatus(t, c, i, "wsrep_cluster_size", "2")
	}
	if got, err := c.Status(context.Background(), 2, "wsrep_cluster_status"); err != nil || got != "non-Primary" {
		t.Errorf("node 2: wsrep_cluster_status = %q, %v; want non-Primary", got, err)
	}
	Exec(t, c.DSN(1, ""), "INSERT INTO t VALUES (2)")

	start = time.Now()
	c.Heal()
	if err := c.WaitReady(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 2 rejoined %v after Heal", time.Since(start).Round(time.Millisecond))
	waitStatus(t, c, 2, "wsrep_cluster_size", "3")
	n2 := syncConn(t, c, 2)
	if got := connInt(t, n2, "SELECT COUNT(*) FROM t"); got != 2 {
		t.Fatalf("healed node 2 sees %d rows, want 2", got)
	}
}

// waitErr1047 polls db until a read fails with error 1047.
func waitErr1047(t *testing.T, db *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		var n int
		err = db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n)
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1047 {
			t.Logf("isolated node: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no error 1047 within a minute; last result: %v", err)
}

func TestGaleraSkipOrFatal(t *testing.T) {
	checkSkipOrFatal(t, galeraSkipOrFatal, ErrNoGalera, "no Galera")
}

func TestGaleraRejectsArgs(t *testing.T) {
	for _, a := range []string{"--wsrep-cluster-address=gcomm://", "--wsrep_provider=none", "--user=root", "--port=1"} {
		if c, err := StartGalera(GaleraOptions{Args: []string{a}}); err == nil {
			c.Close()
			t.Errorf("StartGalera with %s: no error", a)
		}
	}
}

// galeraCheckUser: as root, the nodes run as the mysql user (see runAs).
func galeraCheckUser(t *testing.T, c *Cluster) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup(galeraUser)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Size() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(c.PID(i)) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] != u.Uid {
				t.Errorf("node %d runs as uid %s, want %s (%s)", i, f[1], u.Uid, galeraUser)
			}
		}
	}
}
