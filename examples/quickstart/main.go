// Quickstart loads a generated table of orders with batch.Insert and prints
// what each load did: rows, statements (chunks), bytes, the packet limit it
// worked under, retries, time and speed.
//
//	go run ./examples/quickstart                                      # embedded engine, no server needed
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/quickstart
//
// With MYSQL_DSN (a go-sql-driver DSN) it writes to that server, into a table
// quickstart_orders that it drops and creates. Without it, it starts an
// embedded MySQL-compatible engine in this process (see embedded.go) and
// loads fewer rows, since that engine is slow.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
)

func main() {
	if err := run(context.Background(), os.Getenv("MYSQL_DSN"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

const table = "quickstart_orders"

// Rows per load. A real server takes 30,000 in a fraction of a second. The
// embedded engine is about ten times slower (on a 2-core machine, ~15,000
// rows/s against MariaDB's ~170,000, and a few thousand under -race), so it
// gets 2,000: enough to show the splitting, quick enough for the test.
const (
	serverRows   = 30_000
	embeddedRows = 2_000
)

func run(ctx context.Context, dsn string, out io.Writer) error {
	n := serverRows
	var opts []batch.Option
	if dsn == "" {
		var stop func()
		var err error
		if dsn, stop, err = startEmbedded(); err != nil {
			return err
		}
		defer stop()
		n = embeddedRows
		// The embedded engine loses rows when two connections insert into
		// one table at once: send every chunk on one connection.
		opts = append(opts, batch.Workers(1))
		fmt.Fprintln(out, "MYSQL_DSN is not set: using an embedded go-mysql-server engine in this process.")
		fmt.Fprintf(out, "It is much slower than a real server, so this loads only %d rows; set MYSQL_DSN to use a real server.\n", n)
	}

	// Parse the DSN ourselves: the same *mysql.Config opens the pool and is
	// given to batch.DriverConfig, so that the package knows the driver's own
	// packet limit and time zone and sizes every packet exactly.
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
	opts = append(opts, batch.DriverConfig(cfg))

	var version string
	var maxAllowed int
	if err := db.QueryRowContext(ctx, "SELECT @@version, @@max_allowed_packet").Scan(&version, &maxAllowed); err != nil {
		return err
	}
	fmt.Fprintf(out, "server %s, max_allowed_packet %s\n", version, size(int64(maxAllowed)))

	if err := createTable(ctx, db); err != nil {
		return err
	}
	rows, wantCents := orders(n)
	input := batch.Values(table, []string{"id", "customer", "amount_cents", "currency", "note", "created_at"}, rows)
	fmt.Fprintf(out, "loading %d generated orders into %s, three times:\n\n", n, table)

	// The same rows, loaded with the defaults and then under two caps, to
	// show how the rows are cut into statements. Each load starts from an
	// empty table.
	loads := []struct {
		name string
		opts []batch.Option
	}{
		{"defaults", nil},
		{"MaxRows(250)", []batch.Option{batch.MaxRows(250)}},
		{"MaxBytes(16 KiB)", []batch.Option{batch.MaxBytes(16 << 10)}},
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "load\trows\tchunks\trows/chunk\tbytes\tpacket limit\tretries\telapsed\trows/s\t")
	for _, l := range loads {
		if _, err := db.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			return err
		}
		res, err := batch.Insert(ctx, db, input, slices.Concat(opts, l.opts)...)
		if err != nil {
			// res is exact even with an error: res.Written, res.NotSent
			// and res.Unknown say which rows are where.
			return fmt.Errorf("%s: %w (written %v, not sent %v)", l.name, err, res.Written, res.NotSent)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%d\t%v\t%.0f\t\n",
			l.name, res.Rows, res.Chunks, float64(res.Rows)/float64(res.Chunks), size(res.Bytes),
			size(int64(res.MinPacketLimit)), res.Retries, res.Elapsed.Round(time.Millisecond), res.RowsPerSecond())
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var count, cents int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), CAST(COALESCE(SUM(amount_cents), 0) AS SIGNED) FROM "+table).Scan(&count, &cents); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ncheck: %s holds %d rows, amount_cents sums to %d (want %d rows, %d)\n", table, count, cents, n, wantCents)
	if count != int64(n) || cents != wantCents {
		return fmt.Errorf("check failed")
	}
	fmt.Fprintln(out, `
"packet limit" is the largest packet the connection accepts (Result.MinPacketLimit): the smaller of
the server's max_allowed_packet - 1 and the driver's maxAllowedPacket. A chunk never exceeds it;
below it, chunks stop at MaxRows rows (default 1000) or MaxBytes bytes (default 248 KiB),
rounded down to a few statement shapes (1, 2, 3, 4, 6, 8, 12, ... rows) so that prepared
statements are reused.`)
	return nil
}

func createTable(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + table,
		`CREATE TABLE ` + table + ` (
			id BIGINT NOT NULL PRIMARY KEY,
			customer VARCHAR(64) NOT NULL,
			amount_cents BIGINT NOT NULL,
			currency CHAR(3) NOT NULL,
			note VARCHAR(255) NULL,
			created_at DATETIME(6) NOT NULL
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// orders generates n rows (always the same ones) and the sum of their
// amounts.
func orders(n int) (rows [][]any, cents int64) {
	r := rand.New(rand.NewPCG(1, 2))
	currencies := []string{"EUR", "USD", "GBP", "JPY"}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows = make([][]any, n)
	for i := range rows {
		amount := r.Int64N(100_000) + 1
		cents += amount
		var note any // NULL for most orders
		if i%7 == 0 {
			note = fmt.Sprintf("gift wrap, deliver after %d:00", 8+r.IntN(10))
		}
		rows[i] = []any{
			i + 1,
			fmt.Sprintf("customer-%05d", r.IntN(20_000)),
			amount,
			currencies[r.IntN(len(currencies))],
			note,
			start.Add(time.Duration(i) * 1234567 * time.Microsecond),
		}
	}
	return rows, cents
}

// size formats a byte count.
func size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
