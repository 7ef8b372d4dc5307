package batch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// This file reads errors: what a failed statement's error says about the
// chunk it carried, and which refusals at connection set-up no wait can cure.
// It decides nothing about what to do next: fate.go does.

// class is what a failed chunk's error says about the chunk.
type class int

const (
	// classNotSent: the server never ran the statement (nothing was written,
	// or the statement never arrived whole). Resending is safe.
	classNotSent class = iota
	// classTooLarge: a packet was over a limit; nothing ran. Resend after
	// re-reading the limits on a fresh connection and re-splitting.
	classTooLarge
	// classRolledBack: the server ran the statement and rolled it back
	// (deadlock, lock wait timeout in autocommit). Resending is safe outside
	// a caller's transaction.
	classRolledBack
	// classUnknown: the statement was sent whole and no reply came; it may or
	// may not have been applied.
	classUnknown
	// classPermanent: the server refused the statement for a reason a resend
	// cannot fix.
	classPermanent
)

func (c class) String() string {
	return [...]string{"not-sent", "too-large", "rolled-back", "unknown", "permanent"}[c]
}

// Server error numbers this package reacts to, by their names in the MySQL
// and MariaDB sources.
const (
	erDBAccessDenied          = 1044
	erAccessDenied            = 1045
	erBadDB                   = 1049
	erDupEntry                = 1062
	erNoSuchThread            = 1094
	erUnknownCharacterSet     = 1115
	erTableAccessDenied       = 1142
	erNetPacketTooLarge       = 1153 // the server closes the connection after it
	erUnknownSystemVariable   = 1193
	erLockWaitTimeout         = 1205
	erLockDeadlock            = 1213
	erSpecificAccessDenied    = 1227
	erWrongValueForVar        = 1231
	erWrongTypeForVar         = 1232
	erNotSupportedAuthMode    = 1251
	erUnknownCollation        = 1273
	erQueryInterrupted        = 1317
	erPSManyParam             = 1390 // more than 65,535 placeholders, at PREPARE
	erMaxPreparedStmtCount    = 1461 // max_prepared_stmt_count reached, at PREPARE
	erAccessDeniedNoPassword  = 1698
	erBadNull                 = 1048 // NULL into a NOT NULL column
	erWarnDataOutOfRange      = 1264
	erWarnDataTruncated       = 1265 // "Data truncated for column ... at row N": '12x' into an INT, a bad ENUM
	erTruncatedWrongValue     = 1292
	erTruncatedWrongValueFor  = 1366 // incorrect value for the column's type
	erDataTooLong             = 1406
	erNoReferencedRow         = 1452 // a foreign key's parent row is missing
	erSignalException         = 1644 // a trigger's SIGNAL
	erCheckConstraintMySQL    = 3819
	erCheckConstraintMariaDB  = 4025
	erConnectionKilled        = 1927 // MariaDB
	erClientInteractionTimout = 4031 // MySQL 8.0.24+: closed an idle connection
)

// The errors of clusters and gateways this package reacts to (docs/engines.md
// has each engine's limits and errors, and what is done about them). Several
// numbers mean different things on different engines: classifyMessage reads
// their messages.
const (
	// ER_UNKNOWN_COM_ERROR. Galera: "WSREP has not yet prepared node for
	// application use" (older releases: "Unknown command"), a node outside
	// the primary component or not synced; Vitess: a session the tablet no
	// longer has. Refused before anything ran. The driver sends no command
	// a MySQL server does not know, so no other 1047 is expected.
	erUnknownComError = 1047
	// ER_UNKNOWN_ERROR, whose message says what it is: Percona XtraDB
	// Cluster's pxc_strict_mode refusal, Galera 4's "Maximum writeset size
	// exceeded", Vitess's gRPC unavailable and unknown ("primary is not
	// serving"), TiDB's errors without a number of their own ("execution
	// result undetermined", "[try again later]").
	erUnknownError = 1105
	// ER_ERROR_DURING_COMMIT: on Galera, a write set over wsrep_max_ws_rows
	// ("wsrep_max_ws_rows exceeded") or wsrep_max_ws_size ("Got error 5
	// during COMMIT"), or a node that lost the cluster while replicating.
	erDuringCommit = 1180
	// ER_TOO_MANY_USER_CONNECTIONS: Vitess for gRPC's resource exhausted:
	// a tablet's pools full, and in older releases a statement over
	// grpc_max_message_size (newer ones say 1153).
	erTooManyUserConnections = 1203
	// ER_OPTION_PREVENTS_STATEMENT: "running with the --read-only
	// (--super-read-only) option": a replica, a Group Replication secondary.
	erOptionPreventsStatement = 1290
	erInternalError           = 1815 // ER_INTERNAL_ERROR: Vitess's gRPC internal
	// ER_RUN_HOOK_ERROR: Group Replication, "Error on observer while running
	// replication hook 'before_commit'": a transaction over
	// group_replication_transaction_size_limit.
	erRunHookError = 3100
	// ER_TRANSACTION_ROLLBACK_DURING_COMMIT: Group Replication, "Plugin
	// instructed the server to rollback the current transaction": a
	// certification conflict; rolled back.
	erTransactionRollbackDuringCommit = 3101

	// Client errors, as a proxy reports them (Vitess: vttablet lost its
	// connection to mysqld during the statement).
	crServerGone = 2006 // CR_SERVER_GONE_ERROR
	crServerLost = 2013 // CR_SERVER_LOST

	// TiDB's own numbers (pingcap/tidb pkg/errno; docs: "Error Codes and
	// Troubleshooting").
	erTiDBTxnTooLarge         = 8004 // "Transaction is too large": over txn-total-size-limit
	erTiDBWriteConflictInTiDB = 8005 // "Write conflict, txnStartTS is stale"
	erTiDBTxnRetryable        = 8022 // "KV error safe to retry": rolled back
	erTiDBEntryTooLarge       = 8025 // "entry too large": a row over txn-entry-size-limit (6 MiB)
	erTiDBInfoSchemaChanged   = 8028 // the table changed during the transaction: rolled back
	erTiDBPDServerTimeout     = 9001
	erTiDBTiKVServerTimeout   = 9002
	erTiDBTiKVServerBusy      = 9003
	erTiDBResolveLockTimeout  = 9004
	erTiDBRegionUnavailable   = 9005
	erTiDBWriteConflict       = 9007 // optimistic transactions, at COMMIT
)

// classify decides a failed chunk's class from its error alone.
func classify(err error) class {
	var me *mysql.MySQLError
	var ne net.Error
	switch {
	case errors.Is(err, mysql.ErrPktTooLarge):
		return classTooLarge // the driver refused before writing anything
	case errors.As(err, &me):
		return classifyServer(serverError(me))
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, mysql.ErrBusyBuffer):
		return classNotSent // nothing was written on the connection
	case errors.As(err, &ne):
		if isWriteCut(err) {
			// Cut while writing: the server never had the whole packet. This
			// is also how a packet that is too large often ends: the server
			// answers 1153 and closes while the client is still writing.
			return classNotSent
		}
		return classUnknown // a read failed or timed out after the request went out
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return classUnknown // the request was written and the reply lost
	}
	// Anything else (the driver refusing a value it cannot encode, ...) was
	// refused before the request was written.
	return classPermanent
}

// classifyServer is the class of a server error: its number (n), and its
// message (msg) where engines give one number several meanings (see
// serverError for the number and message of an error Vitess wrapped).
func classifyServer(n uint16, msg string) class {
	switch n {
	case erNetPacketTooLarge, erTiDBEntryTooLarge, erTiDBTxnTooLarge:
		return classTooLarge
	case erPSManyParam, erMaxPreparedStmtCount, erClientInteractionTimout, erUnknownComError:
		return classNotSent
	case erLockDeadlock, erLockWaitTimeout, erTransactionRollbackDuringCommit,
		erTiDBWriteConflictInTiDB, erTiDBTxnRetryable, erTiDBInfoSchemaChanged, erTiDBPDServerTimeout,
		erTiDBTiKVServerTimeout, erTiDBTiKVServerBusy, erTiDBResolveLockTimeout, erTiDBRegionUnavailable,
		erTiDBWriteConflict:
		return classRolledBack
	case erConnectionKilled, crServerGone, crServerLost:
		// Interrupted while running, or the connection behind a proxy lost:
		// rolled back on InnoDB, perhaps half done elsewhere. Resolved like a
		// lost reply.
		return classUnknown
	case erQueryInterrupted, erUnknownError, erDuringCommit, erTooManyUserConnections,
		erOptionPreventsStatement, erRunHookError:
		// The statement and its values follow "Sql:" in Vitess's messages.
		head, _, _ := strings.Cut(msg, ": Sql: ")
		return classifyMessage(n, head)
	}
	return classPermanent
}

// classifyMessage is the class of a server error whose number alone does
// not tell (docs/engines.md has the engines' messages and their sources).
func classifyMessage(n uint16, msg string) class {
	switch {
	case n == erUnknownError && strings.Contains(msg, "pxc_strict_mode"):
		// Percona XtraDB Cluster refusing DML on a table without a primary
		// key (pxc_strict_mode ENFORCING or MASTER): it refuses it again.
		return classPermanent
	case (n == erUnknownError || n == erQueryInterrupted) && notServing(msg):
		// Vitess: "primary is not serving, there may be a reparent
		// operation in progress", "operation not allowed in state
		// NOT_SERVING": refused before anything ran.
		return classNotSent
	case (n == erUnknownError || n == erTooManyUserConnections) && strings.Contains(msg, "message larger than max"):
		// Vitess: the statement is over vtgate's gRPC message limit
		// (grpc_max_message_size); recent versions say 1153 instead.
		return classTooLarge
	case n == erTooManyUserConnections && strings.Contains(msg, "pool"):
		// Vitess: a tablet's transaction or query pool is full
		// ("transaction pool connection limit exceeded", "resource pool
		// timed out"): refused before anything ran.
		return classNotSent
	case n == erUnknownError && strings.Contains(msg, "Maximum writeset size exceeded"):
		// Galera 4 (MariaDB 10.4+): the write set is over wsrep_max_ws_size.
		return classTooLarge
	case n == erUnknownError && strings.Contains(msg, "result undetermined"):
		// TiDB: the commit's outcome is unknown; TiDB closes the connection.
		return classUnknown
	case n == erUnknownError && strings.Contains(msg, "[try again later]"):
		// TiDB's mark of a transaction rolled back that may be run again.
		return classRolledBack
	case n == erQueryInterrupted:
		// Interrupted while running (KILL QUERY; Vitess's cancelled,
		// deadline exceeded, aborted): rolled back on InnoDB, perhaps half
		// done elsewhere. Resolved like a lost reply.
		return classUnknown
	case n == erDuringCommit:
		return classifyDuringCommit(msg)
	case n == erOptionPreventsStatement && (strings.Contains(msg, "read-only") || strings.Contains(msg, "read_only")):
		// --read-only, --super-read-only (a replica, a Group Replication
		// secondary, a demoted primary): refused before anything ran.
		return classNotSent
	case n == erRunHookError && strings.Contains(msg, "before_commit"):
		// Group Replication: the transaction is over
		// group_replication_transaction_size_limit (the likeliest cause of
		// a before_commit refusal); smaller ones pass.
		return classTooLarge
	}
	return classPermanent
}

// classifyDuringCommit reads a 1180, "Got error N during COMMIT".
func classifyDuringCommit(msg string) class {
	switch {
	case strings.Contains(msg, "wsrep_max_ws_rows"), strings.Contains(msg, "wsrep_max_ws_size"),
		strings.Contains(msg, "error 5 "):
		// Galera: the write set is over wsrep_max_ws_rows or
		// wsrep_max_ws_size ("Got error 5 during COMMIT": EIO from the
		// provider); the same statement would fail again, smaller ones pass.
		return classTooLarge
	case strings.Contains(msg, "Primary Component"), strings.Contains(msg, "connection failed"):
		// Galera: the node lost the cluster while replicating the write
		// set, which the rest of the cluster may have received and
		// committed.
		return classUnknown
	}
	return classPermanent
}

// notServing reports whether a message says the server behind a gateway
// is not serving (Vitess's tablet states, vtgate's reparent buffer).
func notServing(msg string) bool {
	return strings.Contains(msg, "not serving") || strings.Contains(msg, "NOT_SERVING")
}

// serverError is the number and message of a server error. Vitess sends the
// MySQL error of a tablet in its message, "... (errno 1213) (sqlstate
// 40001) ...: Sql: ..., BindVars: ...", under a number of its own (1105 for
// gRPC's unavailable or unknown, 1317 for aborted, cancelled or deadline
// exceeded, 1815 for internal) or under that same number (vtgate reads it
// back, as the last "(errno N)" of the message): the error is then N, and
// its message the text before.
func serverError(me *mysql.MySQLError) (n uint16, msg string) {
	n, msg = me.Number, me.Message
	// The statement and its values come after "Sql:": a value could look
	// like anything.
	head, _, _ := strings.Cut(msg, ": Sql: ")
	i := strings.LastIndex(head, " (errno ")
	if i < 0 {
		return n, msg
	}
	digits, _, ok := strings.Cut(head[i+len(" (errno "):], ")")
	inner, err := strconv.ParseUint(digits, 10, 16)
	if !ok || err != nil || inner == 0 {
		return n, msg
	}
	switch n {
	case uint16(inner), erUnknownError, erQueryInterrupted, erInternalError:
		return uint16(inner), head[:i]
	}
	return n, msg
}

// refusedSetup reports whether the server refused what a connection is set
// up with: the account, the database, a DSN system variable or charset, the
// access the package's discovery needs. Waiting cannot cure that, unlike a
// server that is restarting (connection refused, 1053 shutting down) or full
// (1040 too many connections): those are waited out.
func refusedSetup(err error) bool {
	switch errNumber(err) {
	case erDBAccessDenied, erAccessDenied, erBadDB, erUnknownCharacterSet, erTableAccessDenied,
		erUnknownSystemVariable, erSpecificAccessDenied, erWrongValueForVar, erWrongTypeForVar,
		erNotSupportedAuthMode, erUnknownCollation, erAccessDeniedNoPassword:
		return true
	}
	return false
}

// isWriteCut reports whether err is a connection cut while the request was
// being written.
func isWriteCut(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "write"
}

// errNumber is the server error number in err, or 0: the MySQL error
// inside a Vitess one (see serverError).
func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		n, _ := serverError(me)
		return n
	}
	return 0
}

// refusesRow reports whether err is the server refusing a row for its own
// values (see MaxRejects), as opposed to the statement as a whole. A
// duplicate key counts only for a plain INSERT (dupIsRow): with REPLACE,
// Ignore or ON DUPLICATE KEY UPDATE a 1062 comes from another unique key
// and would come again.
func refusesRow(err error, dupIsRow bool) bool {
	switch errNumber(err) {
	case erBadNull, erWarnDataOutOfRange, erWarnDataTruncated, erTruncatedWrongValue, erTruncatedWrongValueFor, erDataTooLong,
		erNoReferencedRow, erSignalException, erCheckConstraintMySQL, erCheckConstraintMariaDB:
		return true
	case erDupEntry:
		return dupIsRow
	}
	return false
}

// atRow is the row, counted from 0 within the statement, that the server's
// message names ("... at row N", N from 1), or -1 when it names none. Only
// the errors whose message the server builds that way count (1264, 1265,
// 1292, 1366, 1406): a trigger's SIGNAL text is the trigger author's.
func atRow(err error) int {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return -1
	}
	num, msg := serverError(me)
	switch num {
	case erWarnDataOutOfRange, erWarnDataTruncated, erTruncatedWrongValue, erTruncatedWrongValueFor, erDataTooLong:
	default:
		return -1
	}
	i := strings.LastIndex(msg, " at row ")
	if i < 0 {
		return -1
	}
	n, perr := strconv.Atoi(msg[i+len(" at row "):])
	if perr != nil || n < 1 {
		return -1
	}
	return n - 1
}
