package batch

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultRows is the number of rows per statement when MaxRows is not given,
// on tables of up to 8 columns; wider tables get 8,000 placeholders' worth
// (111 rows of 72 columns). It is a target below the packet ceiling, chosen
// by benchmark: on a 2-core machine against MariaDB 10.11 (500k rows of 8
// columns, ~190 B; bench/RESULTS.md, medians of 6), statements of
// 250/500/1000/2000/4000 rows loaded 427k/551k/550k/496k/444k rows/s (2000
// and 4000 are cut to 1024 rows by DefaultBytes, and were slower still
// without it); 1000 was the fastest or within 2% of it in every full run.
const DefaultRows = 1000

// DefaultBytes is the budget for one COM_STMT_EXECUTE payload when MaxBytes
// is not given; the packet limit stays the ceiling, and a single row larger
// than the budget is still sent alone. go-sql-driver/mysql v1.10 keeps its
// write buffer between packets only up to 256 KiB (buffer.go,
// maxCachedBufSize) and builds every larger EXECUTE in a fresh buffer by
// append: on 17 KB rows, statements up to the packet limit (768 rows, 13 MB)
// allocated 512 MB per 85 MB load and loaded 20.4k rows/s, 248 KiB
// statements 30.8k (bench/RESULTS.md, WideMaxBytes; 2.6x LOAD DATA).
// 248 KiB leaves room for the 4-byte packet header and append's rounding up
// to whole 8 KiB pages. 1000 narrow rows (~190 B, ~206 KB) stay below it.
const DefaultBytes = 248 << 10

// An Option changes how Insert, Replace or a Writer write rows.
type Option func(*options)

type options struct {
	ignore         bool
	upsert         *upsert
	maxRows        int
	maxBytes       int
	cfg            *mysql.Config
	allowNonStrict bool
	logger         *slog.Logger
	retry          RetryPolicy
	workers        int
	progress       func(Progress)
	atomic         bool
	chunkTime      time.Duration
	err            error
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	o.retry = o.retry.withDefaults()
	return o
}

func (o *options) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// Ignore makes the statement INSERT IGNORE: rows whose key already exists
// are skipped, and the server turns some errors into warnings. Not valid
// with Replace.
func Ignore() Option { return func(o *options) { o.ignore = true } }

// OnDuplicateKeyUpdate appends ON DUPLICATE KEY UPDATE, assigning each named
// column the value of the row being inserted. The columns must be among the
// inserted ones. Not valid with Replace or with OnDuplicateKeyUpdateExcept.
func OnDuplicateKeyUpdate(columns ...string) Option {
	return func(o *options) {
		if o.upsert != nil {
			o.fail(fmt.Errorf("%w: two ON DUPLICATE KEY UPDATE options", ErrOptions))
		}
		o.upsert = &upsert{named: append([]string{}, columns...)}
	}
}

// OnDuplicateKeyUpdateExcept appends ON DUPLICATE KEY UPDATE assigning every
// inserted column except the key columns given (the unique key that decides
// what a duplicate is) the value of the row being inserted. The syntax
// follows the server: the row alias (AS _batch_new ... = _batch_new.c) on
// MySQL 8.0.20 and later, VALUES(c) on MariaDB, TiDB, Vitess and older MySQL.
func OnDuplicateKeyUpdateExcept(key ...string) Option {
	return func(o *options) {
		if o.upsert != nil {
			o.fail(fmt.Errorf("%w: two ON DUPLICATE KEY UPDATE options", ErrOptions))
		}
		o.upsert = &upsert{except: append([]string{}, key...)}
	}
}

// MaxRows sets the number of rows per statement (default DefaultRows, fewer
// on tables of more than 8 columns). Fewer are sent when the byte budget
// (MaxBytes, default DefaultBytes) or the packet limit binds, or when the
// statement would exceed 65,535 placeholders.
func MaxRows(n int) Option {
	return func(o *options) {
		if n <= 0 {
			o.fail(fmt.Errorf("%w: MaxRows(%d) must be positive", ErrOptions, n))
		}
		o.maxRows = n
	}
}

// MaxBytes caps the payload of one COM_STMT_EXECUTE packet (the rows'
// values) at n bytes instead of DefaultBytes. The connection's packet limit
// caps it in turn: with n at or above the limit, statements fill up to the
// limit. A single row larger than n is still sent, alone, if the connection
// allows it. Values sent as long data are not counted.
func MaxBytes(n int) Option {
	return func(o *options) {
		if n <= 0 {
			o.fail(fmt.Errorf("%w: MaxBytes(%d) must be positive", ErrOptions, n))
		}
		o.maxBytes = n
	}
}

// WithConfig gives the driver configuration the *sql.DB was opened with (from
// mysql.ParseDSN or mysql.NewConfig). Without it the package cannot see the
// driver's maxAllowedPacket, Loc, TimeTruncate or Compress: it then assumes
// the driver's defaults (64 MiB, UTC, none), asks the server whether the
// connection is compressed, sizes times conservatively, and lowers its idea
// of the client limit when the driver reports mysql.ErrPktTooLarge (which
// happens before anything is written). With it, every size is exact.
func WithConfig(cfg *mysql.Config) Option { return func(o *options) { o.cfg = cfg } }

// AllowNonStrict lets a load proceed on a session whose sql_mode has neither
// STRICT_TRANS_TABLES nor STRICT_ALL_TABLES, where the server silently
// truncates values that do not fit; a warning is logged instead of returning
// ErrNotStrict.
func AllowNonStrict() Option { return func(o *options) { o.allowNonStrict = true } }

// WithLogger sends the package's events (limits read, splits, retries) to l.
// Events carry row ranges, sizes and error numbers, never row values or SQL.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Workers sets how many connections of a pool a load uses at once (default
// DefaultWorkers), each sending its own chunks. It is capped by the pool's
// SetMaxOpenConns, and is 1 on a caller-owned handle (*sql.Tx, *sql.Conn).
// A pool without MaxOpenConns, or with more than the workers, is faster with
// go-sql-driver/mysql: statements then skip the driver's copy of their
// arguments, because a statement still running after a cancellation can be
// stopped from the spare connection (see the README, "Cancellation").
// With REPLACE, IGNORE or ON DUPLICATE KEY UPDATE, chunks that share a
// unique key value are never in flight at once, so the later row wins as in
// a sequential load.
func Workers(n int) Option {
	return func(o *options) {
		if n <= 0 {
			o.fail(fmt.Errorf("%w: Workers(%d) must be positive", ErrOptions, n))
		}
		o.workers = n
	}
}

// ChunkTime turns on adaptive chunking: starting from the default rows, the rows
// per statement are tuned so that one statement takes about d, from the time
// the last chunks took (as pt-online-schema-change's --chunk-time does). The
// packet limit, the byte budget (MaxBytes, default DefaultBytes) and MaxRows
// (a ceiling here) still bind, and the row counts stay on the few shapes
// prepared statements are reused for.
func ChunkTime(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail(fmt.Errorf("%w: ChunkTime(%v) must be positive", ErrOptions, d))
		}
		o.chunkTime = d
	}
}

// WithProgress calls fn after every chunk written (and so at least once per
// chunk), never from two goroutines at once and with counts that only grow.
// fn runs on the sending path: keep it short.
func WithProgress(fn func(Progress)) Option { return func(o *options) { o.progress = fn } }

// Atomic writes the whole input in one transaction on one connection: all
// rows or none. A connection lost before COMMIT was sent, a deadlock or a
// lock wait timeout rolls the transaction back and replays the whole batch
// (within the retry policy); a connection lost while COMMIT was on its way
// leaves every row with an unknown outcome. It needs a pool (the package
// opens the transaction) and replayable input, so it applies to Insert and
// Replace, not to a Writer. Mind the server's limits on one transaction:
// the binary log cache (max_binlog_cache_size) and, on Galera clusters,
// wsrep_max_ws_rows and wsrep_max_ws_size.
func Atomic() Option { return func(o *options) { o.atomic = true } }

// WithRetry replaces the retry policy; zero fields keep their defaults.
func WithRetry(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

func (o *options) encoding() encoding {
	if o.cfg == nil {
		return defaultEncoding()
	}
	loc := o.cfg.Loc
	if loc == nil {
		loc = time.UTC
	}
	return encoding{loc: loc, truncate: hidden(o.cfg).timeTruncate, locKnown: true}
}

// hiddenConfig holds the *mysql.Config settings the driver keeps unexported.
type hiddenConfig struct {
	compress     bool
	timeTruncate time.Duration
}

// hidden reads compress and timeTruncate back from the DSN the config
// formats, the one public place where the driver shows them.
func hidden(cfg *mysql.Config) hiddenConfig {
	var h hiddenConfig
	// FormatDSN writes the user and password unescaped: drop them, so that
	// a '?' in a password cannot move the start of the parameters.
	c := cfg.Clone()
	c.User, c.Passwd = "", ""
	_, query, ok := strings.Cut(c.FormatDSN(), "?")
	if !ok {
		return h
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return h
	}
	h.compress = params.Get("compress") == "true"
	h.timeTruncate, _ = time.ParseDuration(params.Get("timeTruncate"))
	return h
}

// targetRows is the most rows per statement the options ask for, on a table
// of cols columns.
func (o *options) targetRows(cols int) int {
	switch {
	case o.maxRows > 0:
		return o.maxRows
	case o.chunkTime > 0:
		return MaxPlaceholders // the tuner decides below the limits
	}
	return defaultRows(cols)
}

// defaultPlaceholders bounds the default statement in placeholders too:
// DefaultRows rows up to 8 columns, proportionally fewer beyond. The server's
// work per statement grows with its placeholders, not its rows: on 100k rows
// of 72 columns (bench/RESULTS.md, ManyColsMaxRows), statements of
// 64/111/192/256/910 rows loaded 125k/140k/126k/118k/59k rows/s, and 1000
// rows of 8 columns is the fastest narrow statement.
const defaultPlaceholders = 8000

// defaultRows is the row target without MaxRows or ChunkTime.
func defaultRows(cols int) int {
	return max(1, min(DefaultRows, defaultPlaceholders/cols))
}
