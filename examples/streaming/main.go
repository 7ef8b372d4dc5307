// Streaming feeds a batch.Writer from a pipeline: a producer goroutine sends
// readings on a channel, and the Writer takes them as they come, first in a
// Write loop with a Flush as a checkpoint, then from an iter.Seq with
// WriteAll, and Close says what was written.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/streaming
//
// It writes into a table streaming_readings that it drops and creates. The
// Writer's memory stays at about two chunks per worker whatever the number
// of rows, so the same code loads a stream that never fits in memory.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"iter"
	"math"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/examples/internal/exmain"
)

func main() { exmain.Main("streaming", run) }

const (
	table      = "streaming_readings"
	total      = 50_000 // readings the producer sends
	checkpoint = 10_000 // readings written before the Flush
)

// reading is one message of the stream.
type reading struct {
	Sensor string
	At     time.Time
	Value  float64
}

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
			id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
			sensor VARCHAR(16) NOT NULL,
			at DATETIME(3) NOT NULL,
			value DOUBLE NOT NULL
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}

	// Stop the producer when run returns, whatever happened.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readings := produce(ctx, total)

	w, err := batch.NewWriter(db, table, []string{"sensor", "at", "value"}, batch.DriverConfig(cfg))
	if err != nil {
		return err
	}
	// Close releases the Writer's connections even on an early return;
	// the Close below, on the normal path, is the one whose result counts
	// (a second Close returns ErrClosed).
	defer w.Close(ctx)

	// 1. A Write loop. Each Write buffers a row; each full chunk (1000 rows
	// by default) goes to the workers while the loop goes on.
	for i := 0; i < checkpoint; i++ {
		r, ok := <-readings
		if !ok {
			break
		}
		if err := w.Write(ctx, r.Sensor, r.At, r.Value); err != nil {
			return err
		}
	}
	// Flush sends what is buffered and waits until every row written so far
	// is in the table: a checkpoint, e.g. before acknowledging the
	// messages to the queue they came from.
	if err := w.Flush(ctx); err != nil {
		return err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		return err
	}
	fmt.Fprintf(out, "after Flush: the table holds %d rows\n", n)

	// 2. The rest of the stream as an iter.Seq: WriteAll writes every row
	// and flushes.
	if err := w.WriteAll(ctx, rowsOf(readings)); err != nil {
		return err
	}

	// 3. Close says what the Writer did over its whole life.
	res, err := w.Close(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "after Close: %d rows written in %d statements, %.1f MiB, %d retries, in %v (%.0f rows/s)\n",
		res.Rows, res.Chunks, float64(res.Bytes)/(1<<20), res.Retries, res.Elapsed.Round(time.Millisecond), res.RowsPerSecond())
	return nil
}

// produce sends n readings on the channel it returns, then closes it. It
// stops early when ctx is done, so that it never blocks forever on a
// consumer that gave up.
func produce(ctx context.Context, n int) <-chan reading {
	ch := make(chan reading, 256)
	go func() {
		defer close(ch)
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < n; i++ {
			r := reading{
				Sensor: fmt.Sprintf("sensor-%02d", i%16),
				At:     start.Add(time.Duration(i) * 250 * time.Millisecond),
				Value:  20 + 5*math.Sin(float64(i)/100),
			}
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// rowsOf adapts a channel of readings to the iter.Seq of rows that
// Writer.WriteAll takes. It reuses one []any for every row: Write copies
// what it keeps, so the slice may be overwritten as soon as it returns.
func rowsOf(ch <-chan reading) iter.Seq[[]any] {
	return func(yield func([]any) bool) {
		row := make([]any, 3)
		for r := range ch {
			row[0], row[1], row[2] = r.Sensor, r.At, r.Value
			if !yield(row) {
				return // WriteAll stopped at an error; run's cancel stops the producer
			}
		}
	}
}
