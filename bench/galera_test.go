package bench

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// BenchmarkGalera loads the narrow workload through one node of a 3-node
// MariaDB Galera cluster on loopback (the other two as Failover
// alternates) and, in the same run, into the suite's single server. On
// this 2-core machine the three nodes, the single server and the client
// share the cores, so the ratio says what replication costs here, not on
// real hardware (docs/engines.md has the note on paper). Skipped where
// galera-4 is not installed, unless CI is set.
func BenchmarkGalera(b *testing.B) {
	c, err := testserver.StartGalera(testserver.GaleraOptions{Args: []string{"--innodb-buffer-pool-size=512M"}})
	if err != nil {
		if (errors.Is(err, testserver.ErrNoGalera) || errors.Is(err, testserver.ErrNoServer)) && os.Getenv("CI") == "" {
			b.Skipf("no Galera cluster: %v", err)
		}
		b.Fatal(err)
	}
	defer c.Close()
	var dbs []*sql.DB
	for i := range c.Size() {
		db, err := sql.Open("mysql", c.DSN(i, ""))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	b.Run("single-server", func(b *testing.B) { run(b, narrowData, library("single-server")) })
	b.Run("galera-node0", func(b *testing.B) { runGalera(b, dbs) })
	narrowData.drop()
}

// runGalera times b.N loads of the narrow workload through dbs[0].
func runGalera(b *testing.B, dbs []*sql.DB) {
	w := narrowData.get()
	ctx := context.Background()
	ddl := "CREATE TABLE IF NOT EXISTS " + quote(w.table) + " (" + w.ddl + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
	if _, err := dbs[0].ExecContext(ctx, ddl); err != nil {
		b.Fatal(err)
	}
	var spent time.Duration
	var written int64
	failed := false
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := dbs[0].ExecContext(ctx, "TRUNCATE TABLE "+quote(w.table)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := batch.Insert(ctx, dbs[0], batch.Values(w.table, w.columns, w.rows), batch.Failover(dbs[1], dbs[2]))
		spent += time.Since(start)
		b.StopTimer()
		if err != nil {
			failed = true
			b.Logf("galera load failed: %v", err)
		}
		written += res.Rows
	}
	report(b, written, w.payloadOf(len(w.rows))*(written/int64(len(w.rows))), spent, failed)
}
