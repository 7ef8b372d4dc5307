package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
)

// loader runs one load: input, table, columns, writer.
type loader struct {
	cfg    *config
	msg    *msgWriter // stderr, or the bar while it is drawn: rejects are told there
	in     *input
	rr     RecordReader
	db     *sql.DB
	table  *tableInfo
	cols   []column       // the loaded columns, in input order
	conv   []converter    // one per column
	keys   map[string]int // NDJSON: key (exact, then lower case) → column
	seen   []bool         // NDJSON: the columns a record has given
	first  *Record        // NDJSON: the first data record, read to name the columns
	header []byte         // the header record as read (with --rejects)
	t      *tracker       // the records on their way, and the rejects
	ledger *ledgerView    // --load-id: what earlier runs of the load committed; nil without

	rows    atomic.Int64 // data records read
	written atomic.Int64 // rows confirmed written (from the progress callback)
	res     batch.Result
	started bool     // the writer exists: res is the load's
	report  reporter // progress reports
}

// recordError is a malformed record at a place in the input: a reject
// once the load is under way, a failure in the header or the first NDJSON
// record, which name the columns.
type recordError struct {
	file string
	err  *RecordError
}

func (e *recordError) Error() string { return e.file + ": " + e.err.Error() }

func (e *recordError) Unwrap() error { return e.err }

// run opens everything and loads. The summary is read off l afterwards,
// whatever the error.
func (l *loader) run(ctx context.Context, stdin io.Reader) error {
	in, err := openInput(l.cfg.file, stdin)
	if err != nil {
		return err
	}
	l.in = in
	defer in.close()
	l.rr = newRecordReader(l.cfg.format, in.r, l.cfg.null, l.cfg.nullSet)
	if err := l.openDB(); err != nil {
		return err
	}
	defer l.db.Close()
	if l.table, err = readTable(ctx, l.db, l.cfg.table); err != nil {
		return err
	}
	if err := l.settleColumns(); err != nil {
		return err
	}
	var recalled []batch.Rejection
	if l.cfg.loadID != "" {
		if l.ledger, err = openLedger(ctx, l.db, l.cfg.ledger, l.cfg.loadID); err != nil {
			return err
		}
		defer l.ledger.close()
		if n := len(l.ledger.spans); n > 0 {
			fmt.Fprintf(l.msg, "batchload: --load-id %s: resuming: earlier runs committed %d rows (and rejected %d) in %d ranges up to row %d; they are passed over\n",
				l.cfg.loadID, l.ledger.resumed(l.ledger.end()), len(l.ledger.rejects), n, l.ledger.end())
		}
		recalled = l.ledger.rejects
	}
	l.t = newTracker(l.cfg, l.msg, recalled)
	if l.cfg.rejects != "" {
		// Made (or emptied) even when no record can be rejected, so that
		// no file of an earlier load is taken for this one's.
		if l.t.files, err = createRejects(l.cfg.rejects, l.cfg.file, l.header); err != nil {
			return err
		}
	}
	err = l.load(ctx)
	return errors.Join(err, l.t.finish())
}

// openDB opens a pool on the DSN (checked by parseArgs).
func (l *loader) openDB() error {
	cfg, err := mysql.ParseDSN(l.cfg.dsn)
	if err != nil {
		return err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	l.db = sql.OpenDB(conn)
	return nil
}

// settleColumns decides the loaded columns: the header, --columns, the
// first NDJSON record's keys, or else every loadable column of the table;
// then checks them against the table and picks each one's converter.
func (l *loader) settleColumns() error {
	names, what := l.cfg.columns, "--columns"
	var err error
	switch {
	case names != nil:
	case l.cfg.header:
		names, err = l.readHeader()
		what = "the header of " + l.cfg.file
	case l.cfg.format == formatNDJSON:
		names, err = l.readFirstKeys()
		what = "the first record of " + l.cfg.file
	default:
		for _, c := range l.table.loadable() {
			names = append(names, c.Name)
		}
	}
	if err != nil || names == nil {
		return err
	}
	if l.cols, err = l.table.resolve(names, what); err != nil {
		return err
	}
	for _, c := range l.cols {
		l.conv = append(l.conv, converterFor(c))
	}
	l.indexKeys(names)
	return nil
}

// nextRecord returns the next record that is not blank, or io.EOF.
func (l *loader) nextRecord() (*Record, error) {
	for {
		rec, err := l.rr.Next()
		var re *RecordError
		if errors.As(err, &re) {
			return rec, &recordError{file: l.cfg.file, err: re}
		}
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("%s: %w", l.cfg.file, err)
			}
			return nil, err
		}
		if !rec.Blank {
			return rec, nil
		}
	}
}

// readHeader reads the CSV or TSV header record: its fields name columns.
func (l *loader) readHeader() ([]string, error) {
	rec, err := l.nextRecord()
	if err == io.EOF {
		return nil, fmt.Errorf("%s is empty: no header record (give --header=false for an input without one)", l.cfg.file)
	}
	if err != nil {
		return nil, err
	}
	if l.cfg.rejects != "" {
		l.header = append([]byte(nil), rec.Raw...)
	}
	var names []string
	for i, f := range rec.Fields {
		if f.Kind == Null || f.Text == "" {
			return nil, fmt.Errorf("%s: line %d: header field %d is empty or NULL", l.cfg.file, rec.Line, i+1)
		}
		names = append(names, f.Text)
	}
	return names, nil
}

// readFirstKeys reads the first NDJSON record, kept for the load, and
// returns its keys (nil for an empty input).
func (l *loader) readFirstKeys() ([]string, error) {
	rec, err := l.nextRecord()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(rec.Names) == 0 {
		return nil, fmt.Errorf("%s: line %d: the first object has no keys to name the columns (give --columns)", l.cfg.file, rec.Line)
	}
	l.first = rec
	return append([]string(nil), rec.Names...), nil
}

// indexKeys maps NDJSON keys to column positions, by the names given and
// by the lower-cased names, as column names are case-insensitive.
func (l *loader) indexKeys(names []string) {
	if l.cfg.format != formatNDJSON {
		return
	}
	l.keys = make(map[string]int, 2*len(names))
	for i, n := range names {
		l.keys[strings.ToLower(n)] = i
	}
	for i, n := range names {
		l.keys[n] = i
	}
}

// load writes every record through a batch.Writer, inside a transaction
// rolled back at the end for --dry-run.
func (l *loader) load(ctx context.Context) error {
	if len(l.cols) == 0 {
		return nil // an empty NDJSON input: nothing to load
	}
	var h batch.DB = l.db
	var tx *sql.Tx
	if l.cfg.dryRun {
		var err error
		if tx, err = l.db.BeginTx(ctx, nil); err != nil {
			return err
		}
		defer tx.Rollback()
		h = tx
	}
	// The writer's context is cancelled, too, when the input turns out
	// not to be the one the ledger's earlier runs read: the rows not sent
	// yet are then not sent.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, err := l.newWriter(h)
	if err != nil {
		return err
	}
	l.started = true
	stop := l.report.start(l)
	err = l.copyRows(wctx, w)
	if errors.Is(err, batch.ErrLedgerMismatch) {
		cancel(err)
	}
	res, cerr := w.Close(wctx)
	l.res = res
	stop()
	if err != nil && (errors.Is(cerr, err) || errors.Is(err, cerr)) {
		cerr = nil // the writer's sticky error, returned twice
	}
	if err == nil && cerr == nil && l.ledger != nil {
		if want := l.ledger.resumed(l.ledger.end()); res.Resumed != want {
			err = fmt.Errorf("--load-id %s: the library passed over %d rows, the ledger %s held %d when the load started: it changed meanwhile (another program writing it?)",
				l.cfg.loadID, res.Resumed, l.cfg.ledger, want)
		}
	}
	return errors.Join(l.explain(err), l.explain(cerr))
}

// explain adds to an error of the load what the user needs to read it:
// where the record is in the input, the budget, the load id.
func (l *loader) explain(err error) error {
	if err == nil {
		return nil
	}
	var re *rejectError
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(err, batch.ErrTooManyRejects) {
		if e := l.t.overBudget(err, nil, l.cfg.maxRejects); e != err {
			return e
		}
	}
	if errors.Is(err, batch.ErrNotTransactional) {
		what := "--max-rejects needs a table that rolls a refused statement back; without it, the first refused record stops the load"
		if l.cfg.loadID != "" {
			what = "--load-id needs a target table and a ledger table that roll a transaction back (InnoDB)"
		}
		return fmt.Errorf("%w: %s", err, what)
	}
	return l.ledger.explain(l.locate(err))
}

// locate prefixes a server's refusal of a chunk with where the row it
// names, or else the chunk's rows, are in the input, when that is still
// known; and says how to skip such a row when the budget is 0.
func (l *loader) locate(err error) error {
	var ce *batch.ChunkError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	hint := ""
	if l.cfg.maxRejects == 0 && refusesRow(err, l.cfg.mode == modeInsert) {
		hint = " (--max-rejects N lets a load skip N such records)"
	}
	if ce.Row >= 0 {
		if e, ok := l.t.locate(ce.Row); ok {
			return fmt.Errorf("%s: line %d (byte %d): %w%s", l.cfg.file, e.line, e.offset, err, hint)
		}
	} else if first, ok := l.t.locate(ce.Range.First); ok {
		if last, ok := l.t.locate(ce.Range.End - 1); ok {
			return fmt.Errorf("%s: one of the records on lines %d to %d: %w%s", l.cfg.file, first.line, last.line, err, hint)
		}
	}
	if hint != "" {
		return fmt.Errorf("%w%s", err, hint)
	}
	return err
}

// newWriter returns the Writer for the mode.
func (l *loader) newWriter(h batch.DB) (*batch.Writer, error) {
	names := make([]string, len(l.cols))
	for i, c := range l.cols {
		names[i] = c.Name
	}
	opts, err := l.options()
	if err != nil {
		return nil, err
	}
	if l.cfg.mode == modeReplace {
		return batch.NewReplaceWriter(h, l.cfg.table, names, opts...)
	}
	return batch.NewWriter(h, l.cfg.table, names, opts...)
}

// options are the library options of the load.
func (l *loader) options() ([]batch.Option, error) {
	var opts []batch.Option
	if l.cfg.workers > 0 {
		opts = append(opts, batch.Workers(l.cfg.workers))
	}
	if l.cfg.progress != "none" {
		opts = append(opts, batch.OnProgress(func(p batch.Progress) { l.written.Store(p.Rows) }))
	}
	if l.cfg.maxRejects != 0 {
		opts = append(opts, batch.MaxRejects(l.cfg.maxRejects), batch.OnReject(l.t.onReject))
	}
	if l.cfg.loadID != "" {
		opts = append(opts, batch.Ledger(l.cfg.ledger, l.cfg.loadID))
	}
	switch l.cfg.mode {
	case modeIgnore:
		opts = append(opts, batch.Ignore())
	case modeUpsert:
		key, missing := l.table.primaryKey(l.cols)
		switch {
		case len(key) == 0 && len(missing) == 0:
			return nil, fmt.Errorf("--mode upsert: table %s has no primary key to tell a duplicate by", l.cfg.table)
		case len(missing) > 0:
			return nil, fmt.Errorf("--mode upsert: the input lacks primary key column(s) %s of %s", strings.Join(missing, ", "), l.cfg.table)
		}
		opts = append(opts, batch.OnDuplicateKeyUpdateExcept(key...))
	}
	return opts, nil
}

// ctxCheckEvery is how many records go by between two looks at the context
// (Write itself looks only when it sends).
const ctxCheckEvery = 256

// copyRows reads every record and writes it. A record that is malformed,
// does not fit the columns or holds a value refused here is a reject
// (see rejects.go). It stops at the first reject beyond the budget, at the
// first error of the writer, or when ctx is done.
func (l *loader) copyRows(ctx context.Context, w *batch.Writer) error {
	vals := make([]any, len(l.cols))
	rec := l.first
	for n := 0; ; n++ {
		if n%ctxCheckEvery == 0 && ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var err error
		if rec == nil {
			if rec, err = l.nextRecord(); err == io.EOF {
				if end := l.ledger.end(); end > l.t.rows {
					return l.ledger.mismatch("%s has %d records, but earlier runs committed rows up to %d: not the input they read", l.cfg.file, l.t.rows, end)
				}
				return nil
			}
			var re *recordError
			switch {
			case errors.As(err, &re):
				err = re.err.Err // where it is goes with the reject
			case err != nil:
				return err
			}
		}
		l.rows.Add(1)
		row := l.t.read(rec)
		if err == nil {
			err = l.fill(vals, rec)
		}
		if err != nil {
			if err := l.refuse(ctx, w, rec, row, err); err != nil {
				return err
			}
		} else if err := w.Write(ctx, vals...); err != nil {
			var ve *batch.ValueError
			var ae *batch.ArityError
			if errors.As(err, &ve) || errors.As(err, &ae) {
				l.t.notCounted() // refused before the writer counted it
			}
			return err
		}
		if l.t.due() {
			// Every row given so far is settled after a Flush: the
			// window's rejects can be written out.
			if err := w.Flush(ctx); err != nil {
				return err
			}
			if err := l.t.settle(); err != nil {
				return err
			}
		}
		rec = nil
	}
}

// refuse rejects the record of row, refused here for cause: the writer
// counts it (Writer.Reject) against the budget.
func (l *loader) refuse(ctx context.Context, w *batch.Writer, rec *Record, row int, cause error) error {
	if l.ledger.committed(row) {
		l.t.notCounted() // not given to the writer
		return l.ledger.mismatch("%s: line %d (byte %d): %v; but an earlier run committed row %d: not the input it read", l.cfg.file, rec.Line, rec.Offset, cause, row)
	}
	err := w.Reject(ctx, cause)
	if err == nil {
		return nil
	}
	var ce *batch.ChunkError
	if errors.Is(err, batch.ErrTooManyRejects) && errors.As(err, &ce) && ce.Row == row {
		return &rejectError{file: l.cfg.file, line: rec.Line, offset: rec.Offset, cause: cause, budget: l.cfg.maxRejects, err: err}
	}
	l.t.notCounted() // the writer failed before counting it
	return err
}

// fill converts a record into vals, one value per loaded column.
func (l *loader) fill(vals []any, rec *Record) error {
	if l.keys != nil {
		return l.fillKeys(vals, rec)
	}
	if len(rec.Fields) != len(vals) {
		return fmt.Errorf("%d fields, want %d (one per column)", len(rec.Fields), len(vals))
	}
	for i, f := range rec.Fields {
		v, err := l.conv[i](f)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	return nil
}

// fillKeys converts an NDJSON record: each key names its column, and a
// column whose key is absent gets NULL.
func (l *loader) fillKeys(vals []any, rec *Record) error {
	clear(vals)
	if l.seen == nil {
		l.seen = make([]bool, len(vals))
	}
	clear(l.seen)
	for i, f := range rec.Fields {
		name := rec.Names[i]
		j, ok := l.keys[name]
		if !ok {
			j, ok = l.keys[strings.ToLower(name)]
		}
		switch {
		case !ok:
			return fmt.Errorf("key %q is not one of the loaded columns", name)
		case l.seen[j]:
			return fmt.Errorf("key %q names column %s a second time", name, l.cols[j].Name)
		}
		l.seen[j] = true
		v, err := l.conv[j](f)
		if err != nil {
			return err
		}
		vals[j] = v
	}
	return nil
}
