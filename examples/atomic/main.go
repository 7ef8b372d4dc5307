// Atomic shows batch.Atomic: the whole input in one transaction, so that a
// bad row leaves the table as it was instead of half loaded.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/atomic
//
// It writes into a table atomic_accounts (InnoDB, which has transactions)
// that it drops and creates.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/examples/internal/exmain"
)

func main() { exmain.Main("atomic", run) }

const (
	table = "atomic_accounts"
	n     = 5000
	dup   = 3500 // this row repeats the id of row 3010
)

func run(ctx context.Context, dsn string, out io.Writer) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("MYSQL_DSN: %w", err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + table,
		`CREATE TABLE ` + table + ` (
			id BIGINT NOT NULL PRIMARY KEY,
			owner VARCHAR(40) NOT NULL,
			balance_cents BIGINT NOT NULL
		) ENGINE=InnoDB`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}

	// 5,000 accounts, one of which (row 3500) repeats the id of row 3010: a
	// plain INSERT refuses the statement that carries both (error 1062),
	// whichever statements the two workers send first.
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i + 1, fmt.Sprintf("owner %d", i+1), 100_00}
	}
	rows[dup][0] = 3011
	input := batch.Values(table, []string{"id", "owner", "balance_cents"}, rows)

	// 1. Without Atomic, and with CommitEvery(1), every statement commits
	// on its own: the 1000-row statements written before the bad one stay
	// written. (By default statements commit in groups, a transaction each,
	// but the load is no more all or nothing than here.)
	res, err := batch.Insert(ctx, db, input, batch.DriverConfig(cfg), batch.CommitEvery(1))
	fmt.Fprintf(out, "without Atomic: %d of %d rows written (rows %s), not sent: rows %s\n",
		res.Rows, n, ranges(res.Written), ranges(res.NotSent))
	fmt.Fprintf(out, "  error: %s\n", describe(err))
	fmt.Fprintf(out, "  the table holds %d rows: a partial load\n\n", count(ctx, db))
	if _, err := db.ExecContext(ctx, "DELETE FROM "+table); err != nil {
		return err
	}

	// 2. With Atomic the same input goes in one transaction on one
	// connection, committed after the last statement: the refused
	// statement rolls everything back.
	res, err = batch.Insert(ctx, db, input, batch.Atomic(), batch.DriverConfig(cfg))
	fmt.Fprintf(out, "with Atomic: %d of %d rows written, not sent: rows %s\n", res.Rows, n, ranges(res.NotSent))
	fmt.Fprintf(out, "  error: %s\n", describe(err))
	fmt.Fprintf(out, "  the table holds %d rows: all or nothing\n\n", count(ctx, db))

	// 3. Fixed input, Atomic again: every row, in one commit.
	rows[dup][0] = dup + 1
	res, err = batch.Insert(ctx, db, input, batch.Atomic(), batch.DriverConfig(cfg))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fixed, with Atomic: %d rows written in %d statements and one transaction; the table holds %d rows\n",
		res.Rows, res.Chunks, count(ctx, db))

	// One transaction is bounded by the server: its binary log cache
	// (max_binlog_cache_size) and, on Galera clusters, wsrep_max_ws_rows
	// and wsrep_max_ws_size. Loads too large for that need the resumable
	// non-atomic mode (see examples/resume).
	return nil
}

// describe says what kind of error err is.
func describe(err error) string {
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &ce) && errors.As(err, &me):
		return fmt.Sprintf("the server refused the statement of rows %d..%d: error %d (%s)",
			ce.Range.First, ce.Range.End-1, me.Number, me.Message)
	}
	return err.Error()
}

// ranges formats row ranges as "0..2999, 4000..4999".
func ranges(rs []batch.Range) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d..%d", r.First, r.End-1))
	}
	if parts == nil {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func count(ctx context.Context, db *sql.DB) int {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		return -1
	}
	return n
}
