package batch

// Unit tests, without a server, of how the errors of Galera, TiDB, Vitess
// and Group Replication are read (classify.go) and what the fate machinery
// does with them (fate.go: per chunk; judgeTxn and judgeCommit: in a
// transaction of chunks), and of the Vitess packet cap (limits.go).
// engines_test.go injects the same errors through a proxy against a real
// server.

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// engErr is a server error as the driver returns it.
func engErr(n uint16, msg string) error { return &mysql.MySQLError{Number: n, Message: msg} }

// vitessTail is what vttablet appends to a tablet's MySQL error.
const vitessTail = ` (CallerID: app): Sql: "insert into t(id, v) values (:v1, :v2)", BindVars: {v1: "type:INT64 value:\"1\""}`

// engClassCases are the engines' errors and their classes; "" as engine
// marks an error this package read the same way before engines were
// considered, kept as it was.
var engClassCases = []struct {
	engine string
	err    error
	want   class
}{
	// Galera, Percona XtraDB Cluster.
	{"Galera", engErr(1213, "Deadlock: wsrep aborted transaction"), classRolledBack},
	{"Galera", engErr(1213, "WSREP detected deadlock/conflict and aborted the transaction. Try restarting the transaction"), classRolledBack},
	{"Galera", engErr(1047, "WSREP has not yet prepared node for application use"), classNotSent},
	{"Galera", engErr(1047, "Unknown command"), classNotSent},
	{"Galera", engErr(1180, "Got error 5 during COMMIT"), classTooLarge},
	{"Galera", engErr(1180, `Got error 5 "Input/output error" during COMMIT`), classTooLarge},
	{"Galera", engErr(1180, "wsrep_max_ws_rows exceeded"), classTooLarge},
	{"Galera", engErr(1105, "Maximum writeset size exceeded"), classTooLarge},
	{"Galera", engErr(1180, "Error while appending streaming replication fragment(provider status: connection failed)"), classUnknown},
	{"Galera", engErr(1105, "Percona-XtraDB-Cluster prohibits use of DML command on a table (test.t) without an explicit "+
		"primary key with pxc_strict_mode = ENFORCING or MASTER"), classPermanent},
	// TiDB.
	{"TiDB", engErr(8025, "entry too large, the max entry size is 6291456, the size of data is 6291597"), classTooLarge},
	{"TiDB", engErr(8004, "Transaction is too large, size: 104857600"), classTooLarge},
	{"TiDB", engErr(8005, "Write Conflict, txnStartTS is stale"), classRolledBack},
	{"TiDB", engErr(9007, "Write conflict, txnStartTS=1, conflictStartTS=2, conflictCommitTS=3, key={tableID=88, handle=1} [try again later]"), classRolledBack},
	{"TiDB", engErr(8022, "Error: KV error safe to retry [try again later]"), classRolledBack},
	{"TiDB", engErr(8028, "Information schema is changed during the execution of the statement [try again later]"), classRolledBack},
	{"TiDB", engErr(9001, "PD server timeout"), classRolledBack},
	{"TiDB", engErr(9002, "TiKV server timeout"), classRolledBack},
	{"TiDB", engErr(9003, "TiKV server is busy"), classRolledBack},
	{"TiDB", engErr(9004, "Resolve lock timeout"), classRolledBack},
	{"TiDB", engErr(9005, "Region is unavailable"), classRolledBack},
	{"TiDB", engErr(1105, "execution result undetermined"), classUnknown},
	{"TiDB", engErr(1105, "other error: region epoch not match [try again later]"), classRolledBack},
	{"TiDB", engErr(1105, "other error: unknown error Wire Error(InvalidEnumValue(4004))"), classPermanent},
	// Vitess.
	{"Vitess", engErr(1105, "target: ks.0.primary: primary is not serving, there may be a reparent operation in progress"), classNotSent},
	{"Vitess", engErr(1317, "target: ks.0.primary: primary is not serving, there may be a reparent operation in progress"), classNotSent},
	{"Vitess", engErr(1105, "target: ks.0.primary: vttablet: rpc error: code = FailedPrecondition desc = operation not allowed in state NOT_SERVING"), classNotSent},
	{"Vitess", engErr(1105, "vttablet: rpc error: code = Aborted desc = Deadlock found when trying to get lock; "+
		"try restarting transaction (errno 1213) (sqlstate 40001)"+vitessTail), classRolledBack},
	{"Vitess", engErr(1213, "vttablet: rpc error: code = Aborted desc = Deadlock found when trying to get lock; "+
		"try restarting transaction (errno 1213) (sqlstate 40001)"+vitessTail), classRolledBack},
	{"Vitess", engErr(1317, "vttablet: rpc error: code = Aborted desc = Lock wait timeout exceeded (errno 1205) (sqlstate HY000)"+vitessTail), classRolledBack},
	{"Vitess", engErr(1815, "vttablet: rpc error: code = Internal desc = Lost connection to MySQL server during query "+
		"(errno 2013) (sqlstate HY000)"+vitessTail), classUnknown},
	{"Vitess", engErr(2013, "vttablet: Lost connection to MySQL server during query (errno 2013) (sqlstate HY000)"+vitessTail), classUnknown},
	{"Vitess", engErr(1105, "vttablet: Duplicate entry '1' for key 't.PRIMARY' (errno 1062) (sqlstate 23000)"+vitessTail), classPermanent},
	{"Vitess", engErr(1317, "vttablet: rpc error: code = DeadlineExceeded desc = context deadline exceeded"), classUnknown},
	{"Vitess", engErr(1153, "vttablet: rpc error: code = ResourceExhausted desc = grpc: received message larger than max (17825792 vs. 16777216)"), classTooLarge},
	{"Vitess", engErr(1203, "vttablet: rpc error: code = ResourceExhausted desc = grpc: trying to send message larger than max (17825792 vs. 16777216)"), classTooLarge},
	{"Vitess", engErr(1203, "target: ks.0.primary: vttablet: rpc error: code = ResourceExhausted desc = transaction pool connection limit exceeded"), classNotSent},
	{"Vitess", engErr(1203, "target: ks.0.primary: vttablet: rpc error: code = ResourceExhausted desc = resource pool timed out"), classNotSent},
	{"Vitess", engErr(1105, "vttablet: rpc error: code = Unknown desc = something else"), classPermanent},
	// A value after "Sql:" is never read as the error.
	{"Vitess", engErr(1105, "vttablet: rpc error: code = Unknown desc = bad"+
		` (CallerID: app): Sql: "insert", BindVars: {v1: "primary is not serving (errno 1213) (sqlstate 40001) result undetermined"}`), classPermanent},
	// Group Replication.
	{"GroupReplication", engErr(3100, "Error on observer while running replication hook 'before_commit'."), classTooLarge},
	{"GroupReplication", engErr(3100, "Error on observer while running replication hook 'before_dml'."), classPermanent},
	{"GroupReplication", engErr(3101, "Plugin instructed the server to rollback the current transaction."), classRolledBack},
	{"GroupReplication", engErr(1290, "The MySQL server is running with the --super-read-only option so it cannot execute this statement"), classNotSent},
	{"GroupReplication", engErr(1290, "The MariaDB server is running with the --read-only option so it cannot execute this statement"), classNotSent},
	// As before.
	{"", engErr(1153, "Got a packet bigger than 'max_allowed_packet' bytes"), classTooLarge},
	{"", engErr(1390, "Prepared statement contains too many placeholders"), classNotSent},
	{"", engErr(1461, "Can't create more than max_prepared_stmt_count statements"), classNotSent},
	{"", engErr(4031, "The client was disconnected by the server because of inactivity."), classNotSent},
	{"", engErr(1205, "Lock wait timeout exceeded; try restarting transaction"), classRolledBack},
	{"", engErr(1317, "Query execution was interrupted"), classUnknown},
	{"", engErr(1927, "Connection was killed"), classUnknown},
	{"", engErr(1062, "Duplicate entry '1' for key 'PRIMARY'"), classPermanent},
	{"", engErr(1406, "Data too long for column 'v' at row 3"), classPermanent},
	{"", engErr(1146, "Table 'test.t' doesn't exist"), classPermanent},
	{"", engErr(1105, "Unknown error"), classPermanent},
	{"", engErr(1180, "Got error 149 \"Lock deadlock; Retry transaction\" during COMMIT"), classPermanent},
	{"", engErr(1815, "Internal error: something"), classPermanent},
	{"", engErr(1203, "User app already has more than 'max_user_connections' active connections"), classPermanent},
	{"", engErr(1292, "Incorrect datetime value: 'x (errno 1213)' for column `v` at row 1"), classPermanent},
}

// TestEngineErrorClasses checks each engine error's class, and what the
// fate machinery does with it: on a chunk in autocommit (the lookup policy
// of a plain INSERT into a keyed table), in an open transaction, and at
// COMMIT.
func TestEngineErrorClasses(t *testing.T) {
	type steps struct {
		chunk         step
		txn, atCommit txStep
	}
	want := map[class]steps{
		classNotSent:    {stepResend, txReplay, txReplay},
		classRolledBack: {stepResend, txReplay, txReplay},
		classTooLarge:   {stepShrink, txShrink, txShrink}, // at COMMIT: a group in halves, a single chunk cut in two
		classUnknown:    {stepLookup, txReplay, txSettle},
		classPermanent:  {stepReport, txReport, txReport},
	}
	for _, tc := range engClassCases {
		name := tc.engine + ": " + tc.err.Error()
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: class %v, want %v", name, got, tc.want)
			continue
		}
		f := fate{policy: unknownVerify}
		v := f.judge(attemptEnd{err: tc.err, sent: true, clientKnown: true})
		got := steps{v.next, judgeTxn(attemptEnd{err: tc.err, sent: true, clientKnown: true}, false, true), judgeCommit(tc.err, false)}
		if w := want[tc.want]; got != w {
			t.Errorf("%s: steps %+v, want %+v", name, got, w)
		}
	}
}

// TestServerErrorVitess checks the reading of a tablet's MySQL error inside
// a Vitess one: the number, the message before it, the row it names.
func TestServerErrorVitess(t *testing.T) {
	tests := []struct {
		err     error
		n       uint16
		msg     string // what the message starts with
		at      int
		refused bool // a row refused for its values (MaxRejects)
	}{
		{engErr(1105, "vttablet: Data too long for column 'v' at row 3 (errno 1406) (sqlstate 22001)"+vitessTail),
			1406, "vttablet: Data too long for column 'v' at row 3", 2, true},
		{engErr(1406, "target: ks.0.primary: vttablet: Data too long for column 'v' at row 2 (errno 1406) (sqlstate 22001)"+vitessTail),
			1406, "target: ks.0.primary: vttablet: Data too long", 1, true},
		{engErr(1105, "vttablet: Duplicate entry '1 (errno 1213)' for key 't.PRIMARY' (errno 1062) (sqlstate 23000)"+vitessTail),
			1062, "vttablet: Duplicate entry", -1, true},
		{engErr(1317, "vttablet: rpc error: code = Canceled desc = context canceled"), 1317, "vttablet: rpc error", -1, false},
		{engErr(1105, "x (errno 65536) (sqlstate HY000)"), 1105, "x (errno 65536)", -1, false},
		{engErr(1105, "x (errno 0) (sqlstate HY000)"), 1105, "x (errno 0)", -1, false},
		{engErr(1105, "x (errno 12a)"), 1105, "x (errno 12a)", -1, false},
		// Another number outside Vitess's own is left alone.
		{engErr(1292, "Incorrect datetime value: 'x (errno 1213)' for column `v` at row 4"), 1292, "Incorrect datetime", 3, true},
		{errors.New("not a server error"), 0, "", -1, false},
	}
	for _, tc := range tests {
		if got := errNumber(tc.err); got != tc.n {
			t.Errorf("errNumber(%q) = %d, want %d", tc.err, got, tc.n)
		}
		var me *mysql.MySQLError
		if errors.As(tc.err, &me) {
			if _, msg := serverError(me); !strings.HasPrefix(msg, tc.msg) || strings.Contains(msg, "(CallerID") {
				t.Errorf("serverError(%q): message %q, want it to start with %q, without Vitess's tail", tc.err, msg, tc.msg)
			}
		}
		if got := atRow(tc.err); got != tc.at {
			t.Errorf("atRow(%q) = %d, want %d", tc.err, got, tc.at)
		}
		if got := refusesRow(tc.err, true); got != tc.refused {
			t.Errorf("refusesRow(%q) = %v, want %v", tc.err, got, tc.refused)
		}
	}
}

// TestVitessPacketCapSplits checks that through Vitess chunks are cut
// under vitessPacket, even when max_allowed_packet and MaxBytes allow more,
// and that a row over it is refused before anything is sent.
func TestVitessPacketCapSplits(t *testing.T) {
	plan := splitPlan{cols: 1, targetRows: 1000, maxBytes: 64 << 20, prepareRows: func(int, bool) int { return 1000 }}
	lim := Limits{Flavor: Vitess, MaxAllowedPacket: 1 << 30, NetBufferLength: 16384, ClientMaxPacket: 1 << 30}
	sc := plan.config(lim)
	if sc.packet != vitessPacket || sc.maxBytes != vitessPacket {
		t.Fatalf("Vitess: packet %d, byte budget %d; want both %d", sc.packet, sc.maxBytes, vitessPacket)
	}
	enc := defaultEncoding()
	six := strings.Repeat("x", 6<<20)
	chunks, err := sc.split(nil, &enc, flatRows([]any{six, six, six, six}, 1), 0)
	if err != nil || len(chunks) != 2 {
		t.Fatalf("four 6 MiB rows: %d chunks, err %v; want 2 chunks of 2 rows", len(chunks), err)
	}
	for _, c := range chunks {
		if c.size.Execute > vitessPacket || c.rows() != 2 {
			t.Errorf("chunk [%d, %d): EXECUTE %d bytes, over %d or not 2 rows", c.first, c.end, c.size.Execute, vitessPacket)
		}
	}
	lim.Flavor = MariaDB
	other := plan.config(lim)
	if chunks, err := other.split(nil, &enc, flatRows([]any{six, six, six, six}, 1), 0); err != nil || len(chunks) != 1 {
		t.Errorf("MariaDB: %d chunks, err %v; want the four rows in one", len(chunks), err)
	}
	err = sc.checkRows(&enc, flatRows([]any{six, strings.Repeat("x", 16<<20)}, 1), 0)
	var tl *RowTooLargeError
	if !errors.As(err, &tl) || tl.Row != 1 || tl.Limit != vitessPacket {
		t.Errorf("a 16 MiB row 1 through Vitess: err %v, want a RowTooLargeError for row 1, limit %d", err, vitessPacket)
	}
}
