package batch

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinel errors. Each is returned wrapped, with the row, column or option it
// concerns; test for them with errors.Is.
var (
	// ErrUnsupportedType: a value has a Go type the driver cannot send (for
	// example a struct without driver.Valuer, a map, a complex number, or a
	// driver.Valuer that returned such a type).
	ErrUnsupportedType = errors.New("batch: unsupported value type; convert it, or implement driver.Valuer")

	// ErrNotFinite: a float is NaN or ±Inf, which MySQL cannot store.
	ErrNotFinite = errors.New("batch: float is NaN or infinite; MySQL stores only finite numbers")

	// ErrTimeRange: a time.Time whose year, in the driver's location, is outside
	// 1..9999; the driver refuses to encode it.
	ErrTimeRange = errors.New("batch: time.Time year outside 1..9999 in the driver's location")

	// ErrEmptyName: the table, schema or a column name is empty.
	ErrEmptyName = errors.New("batch: empty table or column name")

	// ErrDuplicateColumn: the same column is named twice.
	ErrDuplicateColumn = errors.New("batch: duplicate column name")

	// ErrNoColumns: the input names no column (an empty column list, or a
	// struct with no mapped field).
	ErrNoColumns = errors.New("batch: no columns to insert")

	// ErrOptions: options that together do not make valid SQL (REPLACE with
	// IGNORE or ON DUPLICATE KEY UPDATE, two ON DUPLICATE KEY UPDATE clauses, an
	// update of a column that is not inserted, a negative cap).
	ErrOptions = errors.New("batch: invalid combination of options")

	// ErrNotStrict: the session's sql_mode has neither STRICT_TRANS_TABLES nor
	// STRICT_ALL_TABLES, so the server would silently truncate or coerce bad
	// values. Use AllowNonStrict to load anyway (a warning is logged instead).
	ErrNotStrict = errors.New("batch: session sql_mode is not strict (no STRICT_TRANS_TABLES or STRICT_ALL_TABLES); values could be silently truncated; set a strict sql_mode or use AllowNonStrict")

	// ErrNilDB: Insert, Replace or NewWriter was given a nil DB.
	ErrNilDB = errors.New("batch: nil DB")

	// ErrTooManyRejects: more rows were refused for their values than
	// MaxRejects allows; the load stopped.
	ErrTooManyRejects = errors.New("batch: too many rows rejected (see MaxRejects)")

	// ErrNotTransactional: MaxRejects and Ledger need tables whose engine
	// rolls a refused statement and a transaction back (InnoDB); on MyISAM a
	// refused multi-row statement may have written the rows before the bad
	// one, and a ledger row could commit without its rows.
	ErrNotTransactional = errors.New("batch: the table's engine does not roll back a refused statement (use InnoDB for MaxRejects and Ledger)")

	// ErrLedgerMismatch: the ledger holds rows of the same load id for
	// another table, other columns or another input size: the input of this
	// load is not the one that load started with.
	ErrLedgerMismatch = errors.New("batch: the ledger's load id was used for a different input")

	// ErrClosed: the Writer was already closed.
	ErrClosed = errors.New("batch: writer is closed")
)

// ValueError reports a value that cannot be sent. Row is the value's index in
// the input and Column its column name. The error text names the Go type but
// never the value itself, so it is safe to log.
type ValueError struct {
	Row    int
	Column string
	Type   string // the Go type of the offending value, e.g. "complex128"
	Err    error  // ErrUnsupportedType, ErrNotFinite, ErrTimeRange, or a driver.Valuer's error
}

// Error describes the error without any row value.
func (e *ValueError) Error() string {
	return "batch: row " + strconv.Itoa(e.Row) + ", column " + strconv.Quote(e.Column) +
		" (" + e.Type + "): " + trimPrefix(e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *ValueError) Unwrap() error { return e.Err }

// ArityError reports a row with a different number of values than there are
// columns.
type ArityError struct {
	Row       int
	Got, Want int
}

// Error describes the error without any row value.
func (e *ArityError) Error() string {
	return fmt.Sprintf("batch: row %d has %d values, want %d (one per column)", e.Row, e.Got, e.Want)
}

// RowTooLargeError reports a row that cannot be sent at all, even alone in a
// statement of its own, on the connection at hand.
//
// Size is the payload, in bytes, of the smallest packet that would have to
// carry the row: the COM_STMT_EXECUTE packet of a one-row statement (command
// byte included, 4-byte packet headers excluded) or, if larger, the
// COM_STMT_SEND_LONG_DATA packet of one of its values. Limit is the largest
// payload that both the driver (its maxAllowedPacket) and the server
// (max_allowed_packet, net_buffer_length, compression) accept on that
// connection. Size > Limit. One case differs: a value sent as long data may
// total at most max_allowed_packet bytes (MariaDB refuses more with error
// 1105, however it is cut into packets); for such a value Size is its length
// and Limit is max_allowed_packet.
type RowTooLargeError struct {
	Row   int
	Size  int
	Limit int
}

// Error describes the error without any row value.
func (e *RowTooLargeError) Error() string {
	return fmt.Sprintf("batch: row %d needs a %d-byte packet, over the connection's %d-byte limit; raise max_allowed_packet (server) and maxAllowedPacket (driver)",
		e.Row, e.Size, e.Limit)
}

// UnknownOutcomeError describes one chunk whose statement reached the server
// but whose reply never came back, and which could not be proven written or
// safely resent. The rows of Range may or may not be in the table. When
// several chunks are uncertain, they are returned joined with errors.Join, so
// errors.As finds each.
type UnknownOutcomeError struct {
	Range Range
	Err   error
}

// Error describes the error without any row value.
func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("batch: outcome unknown for rows %v (the statement was sent, no reply came): %v", e.Range, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// ChunkError reports a statement the server refused for a reason that
// resending cannot fix (a duplicate key on a plain INSERT, a bad value, a
// missing table, access denied). Nothing of the rows of Range was written.
// Err is the server's error as the driver returned it (usually a
// *mysql.MySQLError).
type ChunkError struct {
	Range Range
	// Row is the input row the server named as the cause ("at row N" in
	// its message), or -1 when it named none.
	Row int
	Err error
}

// Error describes the error without any row value.
func (e *ChunkError) Error() string {
	if e.Row >= 0 {
		return fmt.Sprintf("batch: rows %v: row %d: %v", e.Range, e.Row, e.Err)
	}
	return fmt.Sprintf("batch: rows %v: %v", e.Range, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *ChunkError) Unwrap() error { return e.Err }

// detailed is a sentinel error with the context it occurred in, printed as
// "batch: <context>: <sentinel>" without a second "batch: ".
type detailed struct {
	msg string
	err error
}

func (e *detailed) Error() string { return e.msg }
func (e *detailed) Unwrap() error { return e.err }

// detail wraps sentinel with a context built from format and args.
func detail(sentinel error, format string, args ...any) error {
	return &detailed{msg: "batch: " + fmt.Sprintf(format, args...) + ": " + trimPrefix(sentinel), err: sentinel}
}

// tooManyRejects is the server's refusal of the row that went over the
// MaxRejects budget: errors.Is finds ErrTooManyRejects, errors.As the
// server's error.
type tooManyRejects struct{ cause error }

func (e *tooManyRejects) Error() string {
	return trimPrefix(ErrTooManyRejects) + ": " + e.cause.Error()
}
func (e *tooManyRejects) Unwrap() []error { return []error{ErrTooManyRejects, e.cause} }

// trimPrefix drops the "batch: " of a wrapped sentinel so messages do not
// stutter.
func trimPrefix(err error) string {
	s := err.Error()
	if len(s) > 7 && s[:7] == "batch: " {
		return s[7:]
	}
	return s
}

// RetryError reports a chunk the package gave up on after resending it: its
// retry budget ran out, or it was in flight across two consecutive server
// restarts (a suspected query of death, which is not sent again). It carries
// the facts a "MySQL server has gone away" report needs. Err is the last
// error; when the chunk's outcome is unknown, Err is an *UnknownOutcomeError,
// so errors.As finds it. Otherwise none of the chunk's rows were written.
type RetryError struct {
	Range            Range
	Bytes            int // payload of the chunk's EXECUTE and long-data packets
	Attempts         int
	Elapsed          time.Duration
	ServerRestarted  bool // the server restarted while the chunk was being sent
	QueryOfDeath     bool // in flight across two consecutive restarts
	WaitTimeout      int  // @@wait_timeout of the last connection, seconds
	MaxAllowedPacket int  // @@max_allowed_packet of the last connection
	Err              error
}

// Error describes the error without any row value.
func (e *RetryError) Error() string {
	what := "gave up on"
	if e.QueryOfDeath {
		what = "suspected query of death (the server restarted twice while it ran); stopped resending"
	}
	return fmt.Sprintf("batch: %s rows %v (%d bytes) after %d attempts in %v; server restarted: %v, wait_timeout=%ds, max_allowed_packet=%d: %v",
		what, e.Range, e.Bytes, e.Attempts, e.Elapsed.Round(time.Millisecond),
		e.ServerRestarted, e.WaitTimeout, e.MaxAllowedPacket, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *RetryError) Unwrap() error { return e.Err }
