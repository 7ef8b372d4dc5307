// Resume shows how to finish a load that failed part way, from the exact
// row ranges in batch.Result, without writing any row twice.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/resume
//
// It writes into a table resume_shipments that it drops and creates. The
// load is interrupted twice: first by a cancelled context (as on Ctrl-C or a
// deploy), then by a row the server refuses. Each time it goes on with
// Result.NotSent, the rows that are not in the table.
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

func main() { exmain.Main("resume", run) }

const (
	table = "resume_shipments"
	n     = 20_000
	bad   = 14_321 // this row's tracking code is too long for its column
)

var columns = []string{"id", "tracking", "weight_g"}

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
			tracking VARCHAR(12) NOT NULL,
			weight_g INT NOT NULL
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}

	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i + 1, fmt.Sprintf("TRK%09d", i), 100 + i%5000}
	}
	// VARCHAR(12) cannot hold this one: in strict mode the server refuses
	// the statement that carries it (error 1406, data too long).
	rows[bad][1] = "TRK-EXPRESS-000014321"

	// 1. The first attempt is cancelled once 5,000 rows are written, as
	// Ctrl-C or a shutdown would. Statements already sent get a short grace
	// to answer, so the Result stays exact. Progress counts committed rows:
	// CommitEvery(1) commits each chunk on its own, so that the count moves
	// chunk by chunk and the cancel comes well before the bad row (with the
	// default groups of chunks, the second worker's transaction would reach
	// it first).
	ctx1, cancel := context.WithCancel(ctx)
	res, err := batch.Insert(ctx1, db, batch.Values(table, columns, rows), batch.DriverConfig(cfg),
		batch.CommitEvery(1),
		batch.OnProgress(func(p batch.Progress) {
			if p.Rows >= 5000 {
				cancel()
			}
		}))
	cancel()
	fmt.Fprintf(out, "attempt 1: %v\n", err)
	report(out, res)
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("attempt 1: want a cancellation, got %v", err)
	}
	todo := res.NotSent

	// 2. Resume: send the NotSent ranges again. This one stops at the bad
	// row.
	todo, err = resume(ctx, db, cfg, rows, todo)
	fmt.Fprintf(out, "attempt 2: %v\n", err)
	fmt.Fprintf(out, "  still not sent: rows %s\n", ranges(todo))
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	if !errors.As(err, &ce) || !errors.As(err, &me) || me.Number != 1406 {
		return fmt.Errorf("attempt 2: want a ChunkError for error 1406, got %v", err)
	}
	// The ChunkError names the refused statement's rows; the server's
	// message names the column. Fix the data and go on.
	fmt.Fprintf(out, "  the server refused rows %d..%d (error %d); fixing row %d\n",
		ce.Range.First, ce.Range.End-1, me.Number, bad)
	rows[bad][1] = "TRK-X-14321"

	// 3. Resume again: done.
	todo, err = resume(ctx, db, cfg, rows, todo)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "attempt 3: done, still not sent: %s\n", ranges(todo))

	var count, sum int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), CAST(SUM(weight_g) AS SIGNED) FROM "+table).Scan(&count, &sum); err != nil {
		return err
	}
	var want int64
	for _, r := range rows {
		want += int64(r[2].(int))
	}
	fmt.Fprintf(out, "the table holds %d rows (want %d), weights sum to %d (want %d): each row written once\n", count, n, sum, want)
	return nil
}

// resume sends rows[r.First:r.End] for each range r of todo and returns the
// ranges still not sent, as indexes into rows. A Result's ranges are
// indexes into the input of its own call, so each is shifted by r.First.
func resume(ctx context.Context, db *sql.DB, cfg *mysql.Config, rows [][]any, todo []batch.Range) ([]batch.Range, error) {
	for i, r := range todo {
		res, err := batch.Insert(ctx, db, batch.Values(table, columns, rows[r.First:r.End]), batch.DriverConfig(cfg))
		if err == nil {
			continue
		}
		// Unknown rows (a statement sent whose reply was lost) are not in
		// NotSent: check them by key before sending them again (see
		// examples/errors). This example has none.
		if len(res.Unknown) > 0 {
			return nil, fmt.Errorf("rows with an unknown outcome: %v: %w", res.Unknown, err)
		}
		var left []batch.Range
		for _, ns := range res.NotSent {
			left = append(left, batch.Range{First: r.First + ns.First, End: r.First + ns.End})
		}
		return append(left, todo[i+1:]...), shift(err, r.First)
	}
	return nil, nil
}

// shift makes the row numbers of a ChunkError indexes into the whole input.
func shift(err error, by int) error {
	var ce *batch.ChunkError
	if errors.As(err, &ce) {
		ce.Range.First += by
		ce.Range.End += by
		if ce.Row >= 0 {
			ce.Row += by
		}
	}
	return err
}

func report(out io.Writer, res batch.Result) {
	fmt.Fprintf(out, "  written:  %d rows: %s\n", res.Rows, ranges(res.Written))
	fmt.Fprintf(out, "  not sent: rows %s\n", ranges(res.NotSent))
	fmt.Fprintf(out, "  unknown:  rows %s\n", ranges(res.Unknown))
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
