// Upsert writes rows with INSERT ... ON DUPLICATE KEY UPDATE
// (batch.OnDuplicateKeyUpdateExcept): a row whose key exists updates it, and
// when the input holds one key several times, the later row wins, also with
// several connections writing at once.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/upsert
//
// It writes into a table upsert_prices that it drops and creates.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/examples/internal/exmain"
)

func main() { exmain.Main("upsert", run) }

const table = "upsert_prices"

var columns = []string{"sku", "name", "price_cents"}

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
			sku VARCHAR(20) NOT NULL PRIMARY KEY,
			name VARCHAR(60) NOT NULL,
			price_cents INT NOT NULL
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}

	// sku is the key: every other inserted column (name, price_cents) is
	// updated from the new row when the sku exists. On MariaDB this is
	// "... ON DUPLICATE KEY UPDATE name=VALUES(name), ..."; on MySQL 8.0.20+
	// the row alias form "AS _batch_new ... name=_batch_new.name".
	upsert := batch.OnDuplicateKeyUpdateExcept("sku")

	// 1. The catalogue as it stands.
	res, err := batch.Insert(ctx, db, batch.Values(table, columns, [][]any{
		{"A-1", "anvil", 12_000},
		{"B-2", "bellows", 4_500},
		{"C-3", "chisel", 1_900},
	}), upsert, batch.DriverConfig(cfg))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "1. initial load: %d rows, RowsAffected %d\n", res.Rows, res.RowsAffected)

	// 2. A price update. B-2 appears twice: the later row (4,200) wins. C-3
	// is unchanged, D-4 is new.
	res, err = batch.Insert(ctx, db, batch.Values(table, columns, [][]any{
		{"A-1", "anvil", 11_500},
		{"B-2", "bellows", 4_900},
		{"C-3", "chisel", 1_900},
		{"D-4", "drawknife", 3_300},
		{"B-2", "bellows, leather", 4_200},
	}), upsert, batch.DriverConfig(cfg))
	if err != nil {
		return err
	}
	// MySQL counts 1 for each row inserted, 2 for each row updated and 0
	// for a row left as it was: here D-4 inserted (1), A-1 and B-2 twice
	// updated (2+2+2), C-3 unchanged (0).
	fmt.Fprintf(out, "2. update: %d rows, RowsAffected %d (1 per insert, 2 per update, 0 per unchanged row)\n\n", res.Rows, res.RowsAffected)
	if err := printTable(ctx, db, out); err != nil {
		return err
	}

	// 3. The later row wins with several connections too. 20,000 rows
	// update 1,000 skus, each sku 20 times, spread over 200 statements on
	// 4 connections. Statements that share a key are never in flight at
	// once, so each sku ends with the price of its last row, as in a
	// sequential load.
	const skus, rounds = 1000, 20
	var rows [][]any
	for r := 0; r < rounds; r++ {
		for s := 0; s < skus; s++ {
			rows = append(rows, []any{fmt.Sprintf("X-%04d", s), "bulk item", r*10_000 + s})
		}
	}
	res, err = batch.Insert(ctx, db, batch.Values(table, columns, rows), upsert,
		batch.Workers(4), batch.MaxRows(100), batch.DriverConfig(cfg))
	if err != nil {
		return err
	}
	var wrong int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE sku LIKE 'X-%' AND price_cents <> ? + CAST(SUBSTRING(sku, 3) AS SIGNED)",
		(rounds-1)*10_000).Scan(&wrong); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n3. %d rows for %d skus in %d statements on 4 connections: %d skus hold a price other than their last row's\n",
		res.Rows, skus, res.Chunks, wrong)
	if wrong != 0 {
		return fmt.Errorf("%d skus lost their last update", wrong)
	}
	return nil
}

func printTable(ctx context.Context, db *sql.DB, out io.Writer) error {
	rows, err := db.QueryContext(ctx, "SELECT sku, name, price_cents FROM "+table+" ORDER BY sku")
	if err != nil {
		return err
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "sku\tname\tprice_cents")
	for rows.Next() {
		var sku, name string
		var price int
		if err := rows.Scan(&sku, &name, &price); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\n", sku, name, price)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
