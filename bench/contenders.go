package bench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/batchsql/batch"
)

// conns is what a contender writes through: one pool, seen by each library
// the way its users open it. A fresh one is opened for every benchmark, after
// the workload's max_allowed_packet is set, since a connection keeps the
// value it had at connect time.
type conns struct {
	db   *sql.DB
	gorm *gorm.DB
	sqlx *sqlx.DB
}

func openConns(ctx context.Context, dsn string) (*conns, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	// Room for every worker of the sweeps, so that no load pays for
	// reconnecting when database/sql would otherwise close a spare
	// connection (the default keeps 2 idle).
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	g, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: db}), &gorm.Config{
		// GORM's default logger prints every statement slower than 200 ms,
		// values included; it would flood the output and time its own I/O.
		Logger: logger.Discard,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &conns{db: db, gorm: g, sqlx: sqlx.NewDb(db, "mysql")}, nil
}

func (c *conns) Close() error { return c.db.Close() }

// A contender loads the first n rows of a workload and returns how many it
// wrote.
type contender struct {
	name string
	// subset, when non-zero, is the number of rows loaded instead of the
	// whole workload (single-row INSERTs).
	subset int
	// rejectEvery, when non-zero, makes every rejectEvery-th row bad (see
	// rejecting): those rows are not stored.
	rejectEvery int
	load        func(ctx context.Context, c *conns, w *workload, n int) (int64, error)
}

// bad is how many of the first n rows c makes bad.
func (c contender) bad(n int) int {
	if c.rejectEvery == 0 || n <= c.rejectEvery/2 {
		return 0
	}
	return (n - c.rejectEvery/2 + c.rejectEvery - 1) / c.rejectEvery
}

// batchSize is the statement size of every fixed-size peer: GORM's
// CreateInBatches, sqlx's slices and the db.Exec loop.
const batchSize = 1000

// library is github.com/batchsql/batch's Insert with opts.
func library(name string, opts ...batch.Option) contender {
	return contender{name: name, load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
		res, err := batch.Insert(ctx, c.db, batch.Values(w.table, w.columns, w.rows[:n]), opts...)
		return res.Rows, err
	}}
}

// rejecting is the library with MaxRejects(-1) on a copy of the rows in
// which every k-th row (from k/2 on) has an sku longer than its
// VARCHAR(32): the server refuses it with 1406, which names the row.
func rejecting(name string, k int) contender {
	c := contender{name: name, rejectEvery: k}
	c.load = func(ctx context.Context, cs *conns, w *workload, n int) (int64, error) {
		rows := slices.Clone(w.rows[:n])
		for i := k / 2; i < n; i += k {
			r := slices.Clone(rows[i])
			r[5] = strings.Repeat("x", 40) // sku
			rows[i] = r
		}
		res, err := batch.Insert(ctx, cs.db, batch.Values(w.table, w.columns, rows), batch.MaxRejects(-1))
		if want := c.bad(n); err == nil && res.Rejects != want {
			err = fmt.Errorf("%d rows rejected, want %d", res.Rejects, want)
		}
		return res.Rows, err
	}
	return c
}

// ledgerSeq numbers the ledger loads: each iteration is a new load, not a
// resume of the last one.
var ledgerSeq atomic.Int64

// withLedger is the library with a ledger, a new load id per load.
func withLedger(name string, opts ...batch.Option) contender {
	return contender{name: name, load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
		id := fmt.Sprintf("bench-%d-%d", os.Getpid(), ledgerSeq.Add(1))
		opts := append([]batch.Option{batch.Ledger("bench_ledger", id)}, opts...)
		res, err := batch.Insert(ctx, c.db, batch.Values(w.table, w.columns, w.rows[:n]), opts...)
		return res.Rows, err
	}}
}

var readerSeq atomic.Int64

// loadData is LOAD DATA LOCAL INFILE of the rows encoded on the fly by a
// reader registered with the driver (no file touches the disk).
var loadData = contender{name: "loaddata", load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
	name := fmt.Sprintf("bench%d", readerSeq.Add(1))
	r := newTSVReader(w.rows[:n])
	mysql.RegisterReaderHandler(name, func() io.Reader { return r })
	defer mysql.DeregisterReaderHandler(name)
	res, err := c.db.ExecContext(ctx, loadDataSQL(name, w.table, w.columns))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}}

// gormBatches is GORM's CreateInBatches(rows, 1000) with GORM's defaults: the
// batches run in one transaction, each as db.Exec with arguments (PREPARE,
// EXECUTE and CLOSE: two round trips).
var gormBatches = contender{name: "gorm-batches1000", load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
	if n != len(w.rows) {
		return 0, fmt.Errorf("bench: GORM loads whole workloads only")
	}
	res := c.gorm.WithContext(ctx).Table(w.table).CreateInBatches(w.structs, batchSize)
	return res.RowsAffected, res.Error
}}

// sqlxNamed is sqlx's NamedExec on slices of 1000 structs, which sqlx expands
// into one multi-row INSERT with arguments.
var sqlxNamed = contender{name: "sqlx-named1000", load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
	names := make([]string, len(w.columns))
	for i, col := range w.columns {
		names[i] = ":" + col
	}
	q := "INSERT INTO " + quote(w.table) + " (" + quoteList(w.columns) + ") VALUES (" + strings.Join(names, ",") + ")"
	var written int64
	for i := 0; i < n; i += batchSize {
		res, err := c.sqlx.NamedExecContext(ctx, q, w.slice(i, min(i+batchSize, n)))
		if err != nil {
			return written, err
		}
		k, _ := res.RowsAffected()
		written += k
	}
	return written, nil
}}

// exec1000 is db.Exec of a fixed 1000-row INSERT with its 1000 x columns
// arguments: what one writes by hand without a library. Each call prepares,
// executes and closes the statement.
var exec1000 = contender{name: "exec1000", load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
	full := insertSQL(w.table, w.columns, batchSize)
	args := make([]any, 0, batchSize*len(w.columns))
	var written int64
	for i := 0; i < n; i += batchSize {
		j := min(i+batchSize, n)
		q := full
		if j-i != batchSize {
			q = insertSQL(w.table, w.columns, j-i)
		}
		args = args[:0]
		for _, row := range w.rows[i:j] {
			args = append(args, row...)
		}
		res, err := c.db.ExecContext(ctx, q, args...)
		if err != nil {
			return written, err
		}
		k, _ := res.RowsAffected()
		written += k
	}
	return written, nil
}}

// singleRow is one db.Exec per row, in autocommit, on SingleRowSubset rows.
var singleRow = contender{name: "singlerow-20k", subset: SingleRowSubset, load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
	q := insertSQL(w.table, w.columns, 1)
	var written int64
	for _, row := range w.rows[:n] {
		if _, err := c.db.ExecContext(ctx, q, row...); err != nil {
			return written, err
		}
		written++
	}
	return written, nil
}}

// insertSQL is INSERT INTO table (columns) VALUES (?,...),... for k rows.
func insertSQL(table string, columns []string, k int) string {
	tuple := "(" + strings.Repeat("?,", len(columns)-1) + "?)"
	var b strings.Builder
	b.WriteString("INSERT INTO " + quote(table) + " (" + quoteList(columns) + ") VALUES ")
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// handwritten is the fastest load one can write by hand without the
// library, the reference it is measured against: k connections, each with
// one 1000-row INSERT prepared once on the driver connection and executed
// with the driver statement's Exec and one reused []driver.Value per chunk
// (chunk c on connection c % k), the tail through db.Exec. Exec is
// ExecContext without its copy of the arguments and without watching ctx:
// a cancelled ctx does not stop a statement here. It knows nothing of packet
// limits: like the other fixed-size peers it fails where 1000 rows do not fit.
func handwritten(name string, k int) contender { return handwrittenTx(name, k, 0) }

// handwrittenTx is handwritten with a transaction of every statements per
// connection (BEGIN, every chunks, COMMIT; 0: autocommit, each statement
// commits): the hand-written reference of group commit.
func handwrittenTx(name string, k, every int) contender {
	return contender{name: name, load: func(ctx context.Context, c *conns, w *workload, n int) (int64, error) {
		g, ctx := errgroup.WithContext(ctx)
		full := n / batchSize
		var written atomic.Int64
		for wk := range k {
			g.Go(func() error {
				conn, err := c.db.Conn(ctx)
				if err != nil {
					return err
				}
				defer conn.Close()
				return conn.Raw(func(dc any) error {
					m, err := handwrittenConn(ctx, dc, w, every, wk, k, full)
					written.Add(m)
					return err
				})
			})
		}
		if err := g.Wait(); err != nil || full*batchSize == n {
			return written.Load(), err
		}
		var args []any
		for _, row := range w.rows[full*batchSize : n] {
			args = append(args, row...)
		}
		res, err := c.db.ExecContext(ctx, insertSQL(w.table, w.columns, n-full*batchSize), args...)
		if err != nil {
			return written.Load(), err
		}
		m, _ := res.RowsAffected()
		return written.Load() + m, nil
	}}
}

// handwrittenConn is one connection's share of handwrittenTx on driver
// connection dc: the full chunks wk, wk+k, ... below full. It returns the
// rows committed, also when it fails.
func handwrittenConn(ctx context.Context, dc any, w *workload, every, wk, k, full int) (int64, error) {
	st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, insertSQL(w.table, w.columns, batchSize))
	if err != nil {
		return 0, err
	}
	defer st.Close()
	args := make([]driver.Value, batchSize*len(w.columns))
	tx := txEvery{conn: dc.(driver.ExecerContext), every: every}
	for ci := wk; ci < full; ci += k {
		if err := tx.next(ctx); err != nil {
			return tx.committed, err
		}
		x := 0
		for _, row := range w.rows[ci*batchSize : (ci+1)*batchSize] {
			for _, v := range row {
				args[x] = v
				x++
			}
		}
		res, err := st.Exec(args)
		if err != nil {
			return tx.committed, err
		}
		m, _ := res.RowsAffected()
		tx.wrote(m)
	}
	err = tx.commit(ctx)
	return tx.committed, err
}

// txEvery opens a transaction on conn before every every-th statement and
// commits the one before. every 0: autocommit.
type txEvery struct {
	conn      driver.ExecerContext
	every     int
	n         int   // statements so far
	rows      int64 // rows affected by them
	committed int64 // of those, the rows committed
}

// wrote counts the m rows a statement affected.
func (t *txEvery) wrote(m int64) {
	t.rows += m
	if t.every == 0 {
		t.committed = t.rows
	}
}

// next is called before each statement.
func (t *txEvery) next(ctx context.Context) error {
	if t.every == 0 || t.n%t.every != 0 {
		t.n++
		return nil
	}
	if t.n > 0 {
		if err := t.commit(ctx); err != nil {
			return err
		}
	}
	t.n++
	_, err := t.conn.ExecContext(ctx, "BEGIN", nil)
	return err
}

// commit commits the open transaction, if any.
func (t *txEvery) commit(ctx context.Context) error {
	if t.every == 0 || t.n == 0 {
		return nil
	}
	if _, err := t.conn.ExecContext(ctx, "COMMIT", nil); err != nil {
		return err
	}
	t.committed = t.rows
	return nil
}
