package batch

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// DB is what Insert and Replace write through. A pool (*sql.DB, *sqlx.DB,
// anything with a Conn method) lets the package take connections of its own,
// read each one's limits, and resend chunks on a fresh connection after a
// failure that is safe to resend. A caller-owned handle (*sql.Tx, *sqlx.Tx,
// *sql.Conn) gets the statements in input order and nothing is ever resent
// on it: the caller owns its transaction.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// pool is a DB that hands out connections.
type pool interface {
	Conn(ctx context.Context) (*sql.Conn, error)
}

// Insert writes rows with multi-row INSERT statements (INSERT IGNORE or
// INSERT ... ON DUPLICATE KEY UPDATE with the options of those names).
//
// Every value is checked before anything is sent: bad input returns a
// *ValueError, *ArityError or *RowTooLargeError and writes nothing. The rows
// are then cut into chunks that fit the limits read on the connection
// (see Limits) and sent as reused prepared statements. The Result is exact
// even when an error is returned: it says which rows are written, which were
// not sent, and which have an unknown outcome.
func Insert(ctx context.Context, db DB, rows Rows, opts ...Option) (Result, error) {
	return write(ctx, db, verbInsert, rows, opts)
}

// Replace writes rows with multi-row REPLACE statements. REPLACE deletes a
// row whose key exists and inserts the new one: delete triggers fire, foreign
// keys with ON DELETE CASCADE delete children, and AUTO_INCREMENT ids not in
// the input change. Replace cannot be combined with Ignore or
// OnDuplicateKeyUpdate.
func Replace(ctx context.Context, db DB, rows Rows, opts ...Option) (Result, error) {
	return write(ctx, db, verbReplace, rows, opts)
}

func write(ctx context.Context, db DB, v verb, rows Rows, opts []Option) (Result, error) {
	start := time.Now()
	o := buildOptions(opts)
	e, err := newEngine(db, v, rows.table, rows.columns, &o)
	e.led.total = rows.n
	if rows.err != nil {
		err = rows.err // the input's own error says more than its missing columns
	}
	if err != nil {
		return e.led.result(rows.n, start), err
	}
	vals, err := rows.normalized(&e.enc)
	if err != nil || rows.n == 0 {
		return e.led.result(rows.n, start), err
	}
	if o.atomic {
		err = e.runAtomic(ctx, vals)
		return e.led.result(rows.n, start), err
	}
	p, err := e.start(ctx)
	if err != nil {
		return e.led.result(rows.n, start), err
	}
	_, err = p.submit(ctx, vals, 0, false)
	if cerr := p.close(ctx); cerr != nil {
		err = cerr // every error of the pipeline, the one submit saw included
	}
	return e.led.result(rows.n, start), err
}

// engine sends the chunks of one batch.
type engine struct {
	db    DB
	pool  pool // nil when db is caller-owned
	st    *statement
	o     *options
	enc   encoding
	log   *slog.Logger
	led   *ledger
	cols  int
	grace time.Duration

	mu         sync.Mutex
	texts      map[int]string // SQL by shape (rows*2 + alias)
	clientCap  int            // lowered idea of the driver's limit after ErrPktTooLarge; 0 = none
	lastPacket int            // packet limit of the newest connection

	info      tableInfo // the target table's keys, read once per batch on a pool
	infoKnown bool
	// direct lets sessions run go-sql-driver's statements with runDirect:
	// set by start when the pool has a connection to spare beyond the workers.
	direct bool
}

func newEngine(db DB, v verb, table string, cols []string, o *options) (*engine, error) {
	led := &ledger{progress: o.progress, total: -1, start: time.Now()}
	e := &engine{db: db, o: o, log: o.logger, led: led, cols: len(cols), texts: map[int]string{}, grace: time.Second}
	if o.err != nil {
		return e, o.err
	}
	if rv := reflect.ValueOf(db); db == nil || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return e, fmt.Errorf("%w: nil DB", ErrOptions)
	}
	if p, ok := db.(pool); ok {
		e.pool = p
	}
	if o.atomic && e.pool == nil {
		return e, fmt.Errorf("%w: Atomic needs a pool (*sql.DB); in a caller's transaction, the caller decides", ErrOptions)
	}
	e.enc = o.encoding()
	st, err := newStatement(v, table, cols, o)
	e.st = st
	return e, err
}

// resize returns rows [from, to) of c (relative to c) as a chunk sized for s.
func (e *engine) resize(s *session, c chunk, from, to int) chunk {
	return chunk{first: c.first + from, end: c.first + to, vals: c.vals.slice(from, to),
		size: e.enc.chunkSize(c.vals, from, to, s.sc.clientMax)}
}

// lowerClientCap lowers the assumed driver limit below the largest packet of
// a statement the driver refused, and records the lowered packet limit.
func (e *engine) lowerClientCap(sz stmtSize, lim Limits) {
	largest := max(sz.Execute, sz.LargestLong)
	e.mu.Lock()
	if e.clientCap == 0 || largest-1 < e.clientCap {
		e.clientCap = largest - 1
	}
	limit := min(lim.Packet(), e.clientCap)
	e.mu.Unlock()
	e.led.packet(limit)
}

// text returns the SQL for a statement of k rows, built once per batch.
func (e *engine) text(k int, alias bool) string {
	key := k * 2
	if alias {
		key++
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.texts[key]
	if !ok {
		t = e.st.text(k, alias)
		e.texts[key] = t
	}
	return t
}
