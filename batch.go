package batch

import (
	"context"
	"database/sql"
	"errors"
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
	o := buildOptions(opts)
	t := newTally(&o, rows.n)
	e, err := newEngine(db, v, rows.table, rows.columns, &o, t)
	if rows.err != nil {
		err = rows.err // the input's own error says more than its missing columns
	}
	if err != nil {
		return t.result(rows.n), err
	}
	vals, err := rows.normalized(&e.enc)
	if err != nil || rows.n == 0 {
		return t.result(rows.n), err
	}
	if o.atomic {
		err = e.runAtomic(ctx, vals)
		return t.result(rows.n), err
	}
	p, err := e.start(ctx)
	if err != nil {
		return t.result(rows.n), err
	}
	_, err = p.submit(ctx, vals, 0, false)
	if cerr := p.close(ctx); cerr != nil {
		err = cerr // every error of the pipeline, the one submit saw included
	}
	return t.result(rows.n), err
}

// engine is one load: the statement, the options, the sessions' shared
// environment, what is known of the table, and the tally of outcomes.
type engine struct {
	db    DB
	pool  pool // nil when db is caller-owned
	st    *statement
	o     *options
	enc   encoding
	log   *slog.Logger
	tally *tally
	cols  int
	env   *sessionEnv

	// Read once per load on a pool, before the workers start (readInfo).
	info      tableInfo     // the target table's engine and keys
	infoKnown bool          // info was read
	policy    unknownPolicy // what may be done after a lost reply
	txn       bool          // groups of chunks are transactions (group.go)
	ledger    *ledger       // non-nil with Ledger

	mu         sync.Mutex
	lastPacket int // packet limit of the newest connection
}

// newEngine checks the options and names and returns the load's engine, or
// the error that stops it before anything is sent.
func newEngine(db DB, v verb, table string, cols []string, o *options, t *tally) (*engine, error) {
	if o.err != nil {
		return nil, o.err
	}
	if rv := reflect.ValueOf(db); db == nil || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, ErrNilDB
	}
	p, _ := db.(pool)
	if o.atomic && o.maxRejects != 0 {
		return nil, fmt.Errorf("%w: Atomic writes all rows or none; MaxRejects skips some", ErrOptions)
	}
	if o.atomic && p == nil {
		return nil, fmt.Errorf("%w: Atomic needs a pool (*sql.DB); in a caller's transaction, the caller decides", ErrOptions)
	}
	if o.ledger != nil && (p == nil || o.atomic) {
		return nil, fmt.Errorf("%w: Ledger needs a pool (*sql.DB), and is not for Atomic (one transaction already settles everything)", ErrOptions)
	}
	st, err := newStatement(v, table, cols, o)
	if err != nil {
		return nil, err
	}
	e := &engine{db: db, pool: p, st: st, o: o, enc: o.encoding(), log: o.logger, tally: t, cols: len(cols)}
	if o.ledger != nil {
		e.ledger = newLedger(*o.ledger, st, t.total)
	}
	e.env = &sessionEnv{db: db, pool: p, cfg: o.cfg, texts: newTextCache(st), grace: time.Second, log: o.logger,
		allowNonStrict: o.allowNonStrict, client: &clientCap{},
		plan: splitPlan{cols: len(cols), targetRows: o.targetRows(len(cols)), maxBytes: o.maxBytes, prepareRows: st.maxRowsForPrepare}}
	if p != nil {
		e.env.nodes = &nodes{pools: []pool{p}, tally: t}
		for _, db := range o.alternates {
			e.env.nodes.pools = append(e.env.nodes.pools, db)
		}
		t.nodes(len(e.env.nodes.pools))
	}
	return e, nil
}

// open opens a session and records its packet limit.
func (e *engine) open(ctx context.Context) (*session, error) {
	s, err := openSession(ctx, e.env)
	if err != nil {
		return nil, err
	}
	p := s.lim.Packet()
	e.tally.packet(p)
	e.mu.Lock()
	prev := e.lastPacket
	e.lastPacket = p
	e.mu.Unlock()
	if prev != 0 && prev != p {
		e.log.Info("batch: packet limit changed on a new connection", "from", prev, "to", p,
			"max_allowed_packet", s.lim.MaxAllowedPacket, "compressed", s.lim.Compressed)
	}
	return s, nil
}

// openRetrying opens a session, waiting out failures that are safe to retry
// (the server restarting, the pool's connections dying).
func (e *engine) openRetrying(ctx context.Context, a *attempts) (*session, error) {
	for {
		s, err := e.open(ctx)
		if err == nil {
			return s, nil
		}
		if e.pool == nil || errors.Is(err, ErrNotStrict) || refusedSetup(err) || ctx.Err() != nil || a.exhausted() {
			return nil, err
		}
		e.tally.retried()
		if moved, round := e.moveAway(err); moved && !round {
			continue // the next node, at once
		}
		e.log.Warn("batch: cannot open a connection; retrying", "errno", errNumber(err), "attempt", a.n+1)
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
	}
}
