// CSV streams a CSV file into a table through a batch.Writer, with a live
// progress bar driven by batch.OnProgress, and prints a summary.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/csv
//
// It generates products.csv in a temporary directory (so the example needs
// no data of its own), then loads it into a table csv_products that it drops
// and creates. The file is read one record at a time: memory stays flat
// whatever the file's size.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/cwriter"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/examples/internal/exmain"
)

func main() { exmain.Main("csv", run) }

const table = "csv_products"

// fileRows is the number of records in the generated file: enough for the
// bar to be seen moving for a moment on a fast server.
var fileRows = 300_000

func run(ctx context.Context, dsn string, out io.Writer) error {
	dir, err := os.MkdirTemp("", "batch-csv-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "products.csv")
	if err := generate(path, fileRows); err != nil {
		return err
	}

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
	if err := createTable(ctx, db); err != nil {
		return err
	}
	return load(ctx, db, cfg, path, out)
}

// load streams the CSV file at path into the table.
func load(ctx context.Context, db *sql.DB, cfg *mysql.Config, path string, out io.Writer) error {
	// The bar needs a total. A Writer does not know how many rows will come
	// (Progress.Total is -1), so count the records first: one fast pass
	// over the file. (This count assumes no newline inside a quoted field,
	// true of the generated file.)
	total, err := countLines(path)
	if err != nil {
		return err
	}
	total-- // the header

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true // the strings are new each time; only the slice is reused
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s: reading the header: %w", path, err)
	}
	// The header names the columns. Keep a copy: the reader reuses the
	// slice for the next record.
	columns := slices.Clone(header)

	// The bar is drawn on out, several times a second on a terminal. On
	// anything else (a pipe, a file, a test) mpb would not draw it at all:
	// there, refresh it by hand, once, at the end.
	opts := []mpb.ContainerOption{mpb.WithOutput(out), mpb.WithWidth(100)}
	var refresh chan any
	if !cwriter.New(out).IsTerminal() {
		refresh = make(chan any)
		opts = append(opts, mpb.WithManualRefresh(refresh))
	}
	progress := mpb.New(opts...)
	bar := progress.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("loading "), decor.CountersNoUnit("%d / %d rows", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Percentage(decor.WC{W: 5}), decor.Name("  "),
			decor.AverageSpeed(0, "%.0f rows/s")),
	)

	// batch.OnProgress calls its function after each statement, one call
	// at a time, on the sending path: keep it short. mpb's SetCurrent is.
	w, err := batch.NewWriter(db, table, columns,
		batch.DriverConfig(cfg),
		batch.OnProgress(func(p batch.Progress) { bar.SetCurrent(p.Rows) }),
	)
	if err != nil {
		bar.Abort(true)
		progress.Wait()
		return err
	}
	loadErr := func() error {
		line := 1
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			line++
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			values, err := convert(rec)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", path, line, err)
			}
			// Write buffers the row; a full chunk is sent by the workers
			// while reading goes on.
			if err := w.Write(ctx, values...); err != nil {
				return err
			}
		}
	}()
	// Close sends what is left and says what was written, error or not.
	res, closeErr := w.Close(ctx)
	if loadErr == nil {
		loadErr = closeErr
	}
	if loadErr != nil {
		bar.Abort(false)
	}
	if refresh != nil {
		refresh <- time.Now()
	}
	progress.Wait()

	fmt.Fprintf(out, "\n%s: %d of %d rows written in %d statements, %.1f MiB sent, %d retries, packet limit %d bytes\n",
		table, res.Rows, total, res.Chunks, float64(res.Bytes)/(1<<20), res.Retries, res.MinPacketLimit)
	fmt.Fprintf(out, "took %v: %.0f rows/s\n", res.Elapsed.Round(time.Millisecond), res.RowsPerSecond())
	if loadErr != nil {
		// The ranges are record numbers (0 = the first record after the
		// header): what to load again.
		fmt.Fprintf(out, "failed: written %v, not sent %v, unknown %v\n", res.Written, res.NotSent, res.Unknown)
		return loadErr
	}
	return nil
}

// convert turns a CSV record into the row's values. Numbers and times are
// parsed here, so that a bad record is reported with its line; price stays a
// string, which the server converts to DECIMAL exactly.
func convert(rec []string) ([]any, error) {
	stock, err := strconv.Atoi(rec[4])
	if err != nil {
		return nil, fmt.Errorf("stock: %w", err)
	}
	updated, err := time.Parse(time.RFC3339, rec[5])
	if err != nil {
		return nil, fmt.Errorf("updated_at: %w", err)
	}
	var category any = rec[2]
	if rec[2] == "" {
		category = nil // an empty field is NULL
	}
	return []any{rec[0], rec[1], category, rec[3], stock, updated}, nil
}

func createTable(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + table,
		`CREATE TABLE ` + table + ` (
			sku VARCHAR(16) NOT NULL PRIMARY KEY,
			name VARCHAR(100) NOT NULL,
			category VARCHAR(32) NULL,
			price DECIMAL(10,2) NOT NULL,
			stock INT NOT NULL,
			updated_at DATETIME NOT NULL
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// generate writes a CSV file of n products, always the same ones.
func generate(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	r := rand.New(rand.NewPCG(3, 4))
	categories := []string{"tools", "garden", "kitchen", "toys", "books", ""}
	adjectives := []string{"Red", "Small", "Sturdy", "Quiet", "Folding", `"Classic"`}
	nouns := []string{"hammer", "kettle, steel", "lamp", "chair", "puzzle", "notebook"}
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	w.Write([]string{"sku", "name", "category", "price", "stock", "updated_at"})
	for i := 0; i < n; i++ {
		w.Write([]string{
			fmt.Sprintf("SKU-%07d", i),
			adjectives[r.IntN(len(adjectives))] + " " + nouns[r.IntN(len(nouns))],
			categories[r.IntN(len(categories))],
			fmt.Sprintf("%d.%02d", r.IntN(500), r.IntN(100)),
			strconv.Itoa(r.IntN(1000)),
			start.Add(time.Duration(r.IntN(90*24*3600)) * time.Second).Format(time.RFC3339),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
