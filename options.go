package batch

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultRows is the number of rows per statement when [MaxRows] is not
// given, on tables of up to 8 columns; wider tables get 8,000 placeholders'
// worth (111 rows of 72 columns). It is a target below the packet ceiling,
// chosen by benchmark: larger statements were not faster, and the server's
// work per statement grows with its placeholders (bench/RESULTS.md has the
// figures).
const DefaultRows = 1000

// DefaultBytes is the budget for one COM_STMT_EXECUTE payload when
// [MaxBytes] is not given; the packet limit stays the ceiling, and a single
// row larger than the budget is still sent alone. go-sql-driver/mysql v1.10
// keeps its write buffer between packets only up to 256 KiB and builds every
// larger packet in a fresh buffer, so larger statements allocate much more
// and were slower (bench/RESULTS.md, WideMaxBytes). 248 KiB leaves room for
// the packet header and append's rounding up to whole pages.
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
	maxRejects     int             // rows the server may refuse for their values; < 0: no limit
	onReject       func(Rejection) // receives each rejection instead of Result.Rejected
	commitEvery    int             // chunks per transaction on a pool; 0: DefaultCommitEvery
	ledger         *ledgerSpec     // non-nil with Ledger
	alternates     []*sql.DB       // Failover's nodes after the first
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

// Ignore skips rows whose unique key already exists (in the table, or
// earlier in the input) and nothing else. It is not INSERT IGNORE, which
// also stores bad values coerced (a too-long string truncated, an
// out-of-range number clipped) with a warning even in strict mode: a bad
// value is refused by the server, and with [MaxRejects] rejected. The
// statement is INSERT ... ON DUPLICATE KEY UPDATE c=c on the first column, so
// a skipped row fires the table's UPDATE triggers and counts 0 rows affected
// (1 with the DSN's clientFoundRows). Not valid with [Replace] or
// [OnDuplicateKeyUpdate].
func Ignore() Option { return func(o *options) { o.ignore = true } }

// MaxRejects lets a load skip up to n rows that the server refuses for their
// own values, and report each in [Result].Rejected; the other rows are
// written. n < 0 sets no limit. The default, 0, stops the load at the first
// such row, as any other refusal does; the [*ChunkError] then names the
// input row when the server's message does ("at row N").
//
// Refusals of a row's values are: 1048 (NULL in a NOT NULL column), 1062
// (duplicate key, on a plain INSERT: the earlier row of the input is
// written, the later one rejected), 1264 (out of range), 1265 (data
// truncated: '12x' into an INT, a value not in an ENUM), 1292 and 1366
// (incorrect value), 1406 (too long), 1452 (no parent row), 3819 and 4025
// (CHECK constraint) and 1644 (a trigger's SIGNAL). Errors of the statement
// itself (no such table or column, no default value, access denied) still
// stop the load. When the server names the row, it is rejected at once and
// the rest of the chunk sent again; otherwise the chunk is cut in halves
// until the row is alone. This is exact because a refused statement writes
// nothing on a transactional engine in strict mode: the load is refused
// before anything is sent on a table whose engine does not roll a statement
// back (MyISAM), with [ErrNotTransactional]. Once more than n rows are
// refused, the load stops with an error wrapping [ErrTooManyRejects]. Not
// valid with [Atomic].
func MaxRejects(n int) Option { return func(o *options) { o.maxRejects = n } }

// OnReject gives each rejected row (see [MaxRejects]) to fn as it is found,
// instead of keeping it in [Result].Rejected, so that a [Writer] with no
// limit on rejects keeps its memory bounded: fn can write a reject file.
// [Result].Rejects still counts them. fn is never called from two goroutines
// at once; it runs on the sending path, so keep it short.
func OnReject(fn func(Rejection)) Option { return func(o *options) { o.onReject = fn } }

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

// DriverConfig gives the driver configuration the *sql.DB was opened with (from
// mysql.ParseDSN or mysql.NewConfig). Without it the package cannot see the
// driver's maxAllowedPacket, Loc, TimeTruncate or Compress: it then assumes
// the driver's defaults (64 MiB, UTC, none), asks the server whether the
// connection is compressed, sizes times conservatively, and lowers its idea
// of the client limit when the driver reports mysql.ErrPktTooLarge (which
// happens before anything is written). With it, every size is exact.
func DriverConfig(cfg *mysql.Config) Option { return func(o *options) { o.cfg = cfg } }

// AllowNonStrict lets a load proceed on a session whose sql_mode has neither
// STRICT_TRANS_TABLES nor STRICT_ALL_TABLES, where the server silently
// truncates values that do not fit; a warning is logged instead of returning
// ErrNotStrict.
func AllowNonStrict() Option { return func(o *options) { o.allowNonStrict = true } }

// Logger sends the package's events (limits read, splits, retries) to l.
// Events carry row ranges, sizes and error numbers, never row values or SQL.
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

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

// OnProgress calls fn after every chunk written (and so at least once per
// chunk), never from two goroutines at once and with counts that only grow.
// fn runs on the sending path: keep it short.
func OnProgress(fn func(Progress)) Option { return func(o *options) { o.progress = fn } }

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

// CommitEvery sets how many chunks a load through a pool writes in one
// transaction: 1 commits each chunk (statement) on its own; n > 1 sends n
// chunks between START TRANSACTION and COMMIT, so that the server flushes
// its redo log once per n chunks. The transaction, not the chunk, is then
// the unit of outcome: a deadlock, a lost connection or a server restart
// before COMMIT rolls the whole group back and it is replayed, and a
// COMMIT whose reply is lost is settled for the whole group (exactly with
// [Ledger]). Per-key order between workers holds until a group commits. A
// [Writer] keeps a group's rows until its COMMIT: about
// (2 x workers + 1) x n chunks. n < 1 is an [ErrOptions] error; the default
// is [DefaultCommitEvery]. On a caller's *sql.Tx or *sql.Conn it has no
// effect: the caller owns the transaction.
func CommitEvery(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.fail(fmt.Errorf("%w: CommitEvery(%d): want at least 1", ErrOptions, n))
		}
		o.commitEvery = n
	}
}

// Ledger makes a load exactly-once and resumable. Every transaction (see
// [CommitEvery]) also inserts, in the same transaction as its rows, one row
// into the ledger table saying "load loadID committed input rows [a, b)",
// so the ledger row commits if and only if the rows do. After a lost COMMIT
// reply one look-up of that row settles the group exactly, on any table,
// keyed or not. A later load with the same loadID skips the input ranges
// the ledger holds (a resume: they count in Result.Resumed and Written), and
// refuses, with [ErrLedgerMismatch], a ledger written for another table,
// other columns or another input size. The table is created if missing
// (docs/transactions.md has its DDL); it must be transactional (InnoDB), as
// must the target. [DeleteLedger] removes a finished load's rows. Ledger
// needs a pool, not a caller's handle, and a loadID of 1 to 191 bytes.
func Ledger(table, loadID string) Option {
	return func(o *options) {
		if err := checkTable(table); err != nil {
			o.fail(fmt.Errorf("%w (the Ledger table)", err))
		}
		if loadID == "" || len(loadID) > maxLoadID {
			o.fail(fmt.Errorf("%w: Ledger: the load id must be 1 to %d bytes", ErrOptions, maxLoadID))
		}
		o.ledger = &ledgerSpec{table: table, loadID: loadID}
	}
}

// Retry replaces the retry policy; zero fields keep their defaults.
func Retry(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

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
		return maxPlaceholders // the tuner decides below the limits
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
