package batch_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// exampleDB opens the examples' server: BATCH_TEST_DSN, or a private
// MariaDB started once for them (stopped by TestMain's Shutdown).
var exampleDB = sync.OnceValues(func() (*sql.DB, error) {
	dsn := os.Getenv(testserver.EnvDSN)
	if dsn == "" {
		srv, err := testserver.Start(testserver.Options{})
		if err != nil {
			return nil, err
		}
		dsn = srv.DSN("")
	}
	return sql.Open("mysql", dsn)
})

func ExampleInsert() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	db.ExecContext(ctx, "DROP TABLE IF EXISTS example_fruit")
	if _, err := db.ExecContext(ctx, "CREATE TABLE example_fruit (id BIGINT PRIMARY KEY, name VARCHAR(20), price DOUBLE)"); err != nil {
		fmt.Println(err)
		return
	}
	rows := [][]any{{1, "apple", 0.5}, {2, "pear", 0.75}, {3, "plum", nil}}
	res, err := batch.Insert(ctx, db, batch.Values("example_fruit", []string{"id", "name", "price"}, rows), batch.MaxRows(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Rows, "rows in", res.Chunks, "statements; written:", res.Written)

	// The same keys again: a plain INSERT stops at the first duplicate, and
	// the Result says exactly what was not written. (One worker, so that the
	// first chunk is the one that fails.)
	res, err = batch.Insert(ctx, db, batch.Values("example_fruit", []string{"id", "name", "price"}, rows),
		batch.MaxRows(2), batch.Workers(1))
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	if errors.As(err, &ce) && errors.As(err, &me) {
		fmt.Printf("rows %d..%d refused with error %d; not sent: %v\n", ce.FirstRow, ce.FirstRow+ce.Rows-1, me.Number, res.NotSent)
	}
	db.ExecContext(ctx, "DROP TABLE example_fruit")
	// Output:
	// 3 rows in 2 statements; written: [[0, 3)]
	// rows 0..1 refused with error 1062; not sent: [[0, 3)]
}

func ExampleValueError() {
	// Bad input is refused before anything is sent; the error names the row,
	// the column and the type, never the value. (sql.Open connects lazily:
	// this example needs no server.)
	db, _ := sql.Open("mysql", "user@tcp(127.0.0.1:1)/none")
	rows := [][]any{{1, 0.5}, {2, math.NaN()}}
	res, err := batch.Insert(context.Background(), db, batch.Values("t", []string{"id", "price"}, rows))
	var ve *batch.ValueError
	if errors.As(err, &ve) {
		fmt.Println(ve.Row, ve.Column, errors.Is(err, batch.ErrNotFinite), res.NotSent)
	}
	fmt.Println(err)
	// Output:
	// 1 price true [[0, 2)]
	// batch: row 1, column "price" (float64): float is NaN or infinite; MySQL stores only finite numbers
}
