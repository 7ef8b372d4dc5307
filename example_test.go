package batch_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
		fmt.Printf("rows %v refused with error %d; not sent: %v\n", ce.Range, me.Number, res.NotSent)
	}
	db.ExecContext(ctx, "DROP TABLE example_fruit")
	// Output:
	// 3 rows in 2 statements; written: [[0, 3)]
	// rows [0, 2) refused with error 1062; not sent: [[0, 3)]
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

// exampleTable drops the table name and creates it with the column
// definitions def.
func exampleTable(ctx context.Context, db *sql.DB, name, def string) error {
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, "CREATE TABLE "+name+" ("+def+") ENGINE=InnoDB")
	return err
}

// exampleRows prints every row of query, one line per row, NULL as "NULL".
func exampleRows(ctx context.Context, db *sql.DB, query string) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			fmt.Println(err)
			return
		}
		var line []string
		for _, v := range vals {
			if !v.Valid {
				line = append(line, "NULL")
				continue
			}
			line = append(line, strconv.Quote(v.String))
		}
		fmt.Println(strings.Join(line, " "))
	}
}

func ExampleStructs() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := exampleTable(ctx, db, "example_staff",
		"id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, email VARCHAR(80) NULL, badge VARBINARY(16) NULL, hired DATE NULL"); err != nil {
		fmt.Println(err)
		return
	}

	// Columns follow sqlx: the db tag, else the field name in lower case;
	// db:"-" skips a field; an embedded struct's fields are columns too.
	type Audit struct {
		Hired *time.Time `db:"hired"` // nil is NULL
	}
	type Person struct {
		ID    int64 `db:"id"`
		Name  string
		Email sql.NullString `db:"email"` // not Valid is NULL
		Badge []byte         `db:"badge"` // nil is NULL, []byte{} is empty
		Audit
		Draft bool `db:"-"`
	}
	hired := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	people := []Person{
		{ID: 1, Name: "Ada", Email: sql.NullString{String: "ada@example.com", Valid: true}, Badge: []byte("A-1"), Audit: Audit{Hired: &hired}},
		{ID: 2, Name: "Bob", Badge: []byte{}},
		{ID: 3, Name: "Cyd"},
	}
	rows := batch.Structs("example_staff", people)
	fmt.Println(rows.Columns())
	res, err := batch.Insert(ctx, db, rows)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Rows, "rows written")
	exampleRows(ctx, db, "SELECT id, name, email, badge, CAST(hired AS CHAR) FROM example_staff ORDER BY id")
	db.ExecContext(ctx, "DROP TABLE example_staff")
	// Output:
	// [id name email badge hired]
	// 3 rows written
	// "1" "Ada" "ada@example.com" "A-1" "2024-03-01"
	// "2" "Bob" NULL "" NULL
	// "3" "Cyd" NULL NULL NULL
}

func ExampleWriter() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := exampleTable(ctx, db, "example_events", "id BIGINT PRIMARY KEY, kind VARCHAR(20) NOT NULL, payload BLOB NULL"); err != nil {
		fmt.Println(err)
		return
	}
	w, err := batch.NewWriter(db, "example_events", []string{"id", "kind", "payload"}, batch.MaxRows(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Write copies what it keeps, so one buffer serves every row.
	var buf []byte
	for i := range 6 {
		buf = strconv.AppendInt(append(buf[:0], "event "...), int64(i), 10)
		if err := w.Write(ctx, i, "click", buf); err != nil {
			break // the error is sticky: Close returns it too
		}
	}
	// Flush returns once every row written so far is in the table.
	if err := w.Flush(ctx); err == nil {
		var n int
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM example_events").Scan(&n)
		fmt.Println("after Flush:", n, "rows")
	}
	// WriteAll takes an iter.Seq[[]any] and flushes at the end.
	more := func(yield func([]any) bool) {
		_ = yield([]any{6, "empty", []byte{}}) && yield([]any{7, "none", []byte(nil)})
	}
	if err := w.WriteAll(ctx, more); err != nil {
		fmt.Println(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Rows, "rows in", res.Chunks, "statements; written:", res.Written)
	exampleRows(ctx, db, "SELECT id, kind, payload FROM example_events WHERE id >= 5 ORDER BY id")
	db.ExecContext(ctx, "DROP TABLE example_events")
	// Output:
	// after Flush: 6 rows
	// 8 rows in 3 statements; written: [[0, 8)]
	// "5" "click" "event 5"
	// "6" "empty" ""
	// "7" "none" NULL
}

func ExampleOption() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := exampleTable(ctx, db, "example_tasks", "id BIGINT PRIMARY KEY, title VARCHAR(40) NOT NULL"); err != nil {
		fmt.Println(err)
		return
	}
	var rows [][]any
	for i := range 5 {
		rows = append(rows, []any{i, "task " + strconv.Itoa(i)})
	}
	res, err := batch.Insert(ctx, db, batch.Values("example_tasks", []string{"id", "title"}, rows),
		batch.MaxRows(2), // at most 2 rows per statement
		batch.Workers(1), // one connection: chunks are written in order
		batch.Retry(batch.RetryPolicy{MaxElapsed: 10 * time.Second}),
		batch.OnProgress(func(p batch.Progress) {
			fmt.Printf("progress: %d of %d rows, %d statements\n", p.Rows, p.Total, p.Chunks)
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Rows, "rows written; retries:", res.Retries)
	db.ExecContext(ctx, "DROP TABLE example_tasks")
	// Output:
	// progress: 2 of 5 rows, 1 statements
	// progress: 4 of 5 rows, 2 statements
	// progress: 5 of 5 rows, 3 statements
	// 5 rows written; retries: 0
}

func ExampleOnDuplicateKeyUpdateExcept() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := exampleTable(ctx, db, "example_prices", "sku VARCHAR(10) PRIMARY KEY, price DOUBLE NOT NULL, stock INT NOT NULL"); err != nil {
		fmt.Println(err)
		return
	}
	cols := []string{"sku", "price", "stock"}
	_, err = batch.Insert(ctx, db, batch.Values("example_prices", cols, [][]any{
		{"A", 1.0, 10},
		{"B", 2.0, 20},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Every column but the key takes the new row's value: A changes, B is
	// the same, C is new.
	res, err := batch.Insert(ctx, db, batch.Values("example_prices", cols, [][]any{
		{"A", 1.5, 10},
		{"B", 2.0, 20},
		{"C", 3.0, 30},
	}), batch.OnDuplicateKeyUpdateExcept("sku"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The server counts 2 per updated row, 0 per unchanged row, 1 per insert.
	fmt.Println(res.Rows, "rows written; rows affected:", res.RowsAffected)
	exampleRows(ctx, db, "SELECT sku, price, stock FROM example_prices ORDER BY sku")
	db.ExecContext(ctx, "DROP TABLE example_prices")
	// Output:
	// 3 rows written; rows affected: 3
	// "A" "1.5" "10"
	// "B" "2" "20"
	// "C" "3" "30"
}

// A load the server refuses part of, finished from Result.NotSent.
func ExampleChunkError() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := exampleTable(ctx, db, "example_orders", "id BIGINT PRIMARY KEY, qty INT UNSIGNED NOT NULL"); err != nil {
		fmt.Println(err)
		return
	}
	cols := []string{"id", "qty"}
	rows := [][]any{{0, 5}, {1, 2}, {2, 7}, {3, -1}, {4, 1}, {5, 3}} // row 3 is out of range
	opts := []batch.Option{batch.MaxRows(2), batch.Workers(1)}

	res, err := batch.Insert(ctx, db, batch.Values("example_orders", cols, rows), opts...)
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	if errors.As(err, &ce) && errors.As(err, &me) {
		fmt.Printf("rows %v refused with error %d; written %v, not sent %v\n", ce.Range, me.Number, res.Written, res.NotSent)
	}

	// Fix the row, then send what was not written. The ranges of a Result
	// index the input of its own call: add r.First.
	rows[3][1] = 0
	for _, r := range res.NotSent {
		again, err := batch.Insert(ctx, db, batch.Values("example_orders", cols, rows[r.First:r.End]), opts...)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, w := range again.Written {
			fmt.Println("now written:", batch.Range{First: r.First + w.First, End: r.First + w.End})
		}
	}
	var n int
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM example_orders").Scan(&n)
	fmt.Println(n, "rows in the table")
	db.ExecContext(ctx, "DROP TABLE example_orders")
	// Output:
	// rows [2, 4) refused with error 1264; written [[0, 2)], not sent [[2, 6)]
	// now written: [2, 6)
	// 6 rows in the table
}

// A statement whose reply never comes: it waits for a lock held by another
// transaction, and the caller gives up. The table has no NOT NULL unique key
// among the inserted columns (ref may be NULL), so the package can neither
// look the rows up nor resend them safely: it names them as Unknown.
func ExampleUnknownOutcomeError() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := exampleTable(ctx, db, "example_payments",
		"id BIGINT AUTO_INCREMENT PRIMARY KEY, ref VARCHAR(20) NULL UNIQUE, amount DOUBLE NOT NULL"); err != nil {
		fmt.Println(err)
		return
	}
	// Another transaction inserts ref R-3 and does not commit yet.
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, "INSERT INTO example_payments (ref, amount) VALUES ('R-3', 0)"); err != nil {
		fmt.Println(err)
		return
	}
	var rows [][]any
	for i := range 5 {
		rows = append(rows, []any{"R-" + strconv.Itoa(i), float64(i)})
	}
	// Give up once our statement waits for the lock.
	loadCtx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		for loadCtx.Err() == nil {
			var waiting int
			db.QueryRowContext(loadCtx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO `example_payments`%'").Scan(&waiting)
			if waiting > 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// Each statement commits on its own (CommitEvery(1)): one given up on
	// may still commit. In a transaction of several chunks it could not,
	// and the rows would be "not sent".
	res, err := batch.Insert(loadCtx, db, batch.Values("example_payments", []string{"ref", "amount"}, rows), batch.CommitEvery(1))

	var uo *batch.UnknownOutcomeError // check it before RetryError, which may wrap it
	if errors.As(err, &uo) {
		fmt.Printf("rows %v: sent, no reply; canceled: %v\n", uo.Range, errors.Is(err, context.Canceled))
	}
	fmt.Printf("written %v, unknown %v, not sent %v\n", res.Written, res.Unknown, res.NotSent)

	// The other transaction rolls back, and the statement nobody waits for
	// any more runs: "unknown" was the only true answer.
	other.Rollback()
	var n int
	for deadline := time.Now().Add(10 * time.Second); n < len(rows) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM example_payments").Scan(&n)
	}
	fmt.Println(n, "of the unknown rows are in the table")
	db.ExecContext(ctx, "DROP TABLE example_payments")
	// Output:
	// rows [0, 5): sent, no reply; canceled: true
	// written [], unknown [[0, 5)], not sent []
	// 5 of the unknown rows are in the table
}

func ExampleMaxRejects() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	db.ExecContext(ctx, "DROP TABLE IF EXISTS example_codes")
	if _, err := db.ExecContext(ctx, "CREATE TABLE example_codes (id BIGINT PRIMARY KEY, code VARCHAR(4) NOT NULL)"); err != nil {
		fmt.Println(err)
		return
	}
	rows := [][]any{{1, "AB"}, {2, "TOO-LONG"}, {3, "CD"}, {4, nil}, {5, "EF"}}
	res, err := batch.Insert(ctx, db, batch.Values("example_codes", []string{"id", "code"}, rows), batch.MaxRejects(10))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("written:", res.Written)
	for _, r := range res.Rejected {
		var me *mysql.MySQLError
		errors.As(r.Err, &me)
		fmt.Printf("row %d rejected: error %d\n", r.Row, me.Number)
	}
	db.ExecContext(ctx, "DROP TABLE example_codes")
	// Output:
	// written: [[0, 1) [2, 3) [4, 5)]
	// row 1 rejected: error 1406
	// row 3 rejected: error 1048
}

func ExampleLedger() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	db.ExecContext(ctx, "DROP TABLE IF EXISTS example_events")
	// No unique key: without a ledger, a lost reply could not be settled.
	if _, err := db.ExecContext(ctx, "CREATE TABLE example_events (at BIGINT NOT NULL, kind VARCHAR(10) NOT NULL)"); err != nil {
		fmt.Println(err)
		return
	}
	batch.DeleteLedger(ctx, db, "example_ledger", "events-2026-12-07")
	var rows [][]any
	for i := range 5000 {
		rows = append(rows, []any{i, "click"})
	}
	load := func() batch.Result {
		res, err := batch.Insert(ctx, db, batch.Values("example_events", []string{"at", "kind"}, rows),
			batch.Ledger("example_ledger", "events-2026-12-07"))
		if err != nil {
			fmt.Println(err)
		}
		return res
	}
	first := load()
	fmt.Println("first run: written", first.Rows, "resumed", first.Resumed)
	// The same load again (after a crash, say): what the ledger says
	// committed is not sent again.
	again := load()
	fmt.Println("second run: written", again.Rows, "resumed", again.Resumed)
	var n int
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM example_events").Scan(&n)
	fmt.Println(n, "rows in the table")
	batch.DeleteLedger(ctx, db, "example_ledger", "events-2026-12-07")
	db.ExecContext(ctx, "DROP TABLE example_events")
	// Output:
	// first run: written 5000 resumed 0
	// second run: written 5000 resumed 5000
	// 5000 rows in the table
}

func ExampleCommitEvery() {
	ctx := context.Background()
	db, err := exampleDB()
	if err != nil {
		fmt.Println(err)
		return
	}
	db.ExecContext(ctx, "DROP TABLE IF EXISTS example_log")
	if _, err := db.ExecContext(ctx, "CREATE TABLE example_log (id BIGINT PRIMARY KEY, msg VARCHAR(20))"); err != nil {
		fmt.Println(err)
		return
	}
	var rows [][]any
	for i := range 10_000 {
		rows = append(rows, []any{i, "ok"})
	}
	// 100 rows per statement, 20 statements per transaction: 5 COMMITs.
	res, err := batch.Insert(ctx, db, batch.Values("example_log", []string{"id", "msg"}, rows),
		batch.MaxRows(100), batch.CommitEvery(20), batch.Workers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Rows, "rows in", res.Chunks, "statements")
	db.ExecContext(ctx, "DROP TABLE example_log")
	// Output:
	// 10000 rows in 100 statements
}
