package batch

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Flavor is the kind of server on the other end of a connection. It decides
// SQL syntax where servers differ (ON DUPLICATE KEY UPDATE) and must be known
// before the version number means anything: MariaDB 10.11 would pass a
// "MySQL >= 8.0.20" test.
type Flavor int

const (
	MySQL   Flavor = iota // Oracle MySQL, and anything not recognized as another flavour
	MariaDB               // @@version contains "MariaDB"
	TiDB                  // @@version contains "TiDB"
	Vitess                // @@version contains "Vitess"
)

// String returns the flavour's name, e.g. "MariaDB".
func (f Flavor) String() string {
	switch f {
	case MariaDB:
		return "MariaDB"
	case TiDB:
		return "TiDB"
	case Vitess:
		return "Vitess"
	}
	return "MySQL"
}

const (
	// defaultClientMax is go-sql-driver/mysql's maxAllowedPacket when the DSN
	// does not set it (const.go, defaultMaxAllowedPacket).
	defaultClientMax = 64 << 20
)

// Limits are the facts about one connection that bound what this package may
// send on it. They are read on every connection the package uses, because a
// pool can hold connections made before and after SET GLOBAL
// max_allowed_packet or a server restart, and the session value is frozen at
// connect time.
type Limits struct {
	MaxAllowedPacket int  // the session's @@max_allowed_packet (S)
	NetBufferLength  int  // @@net_buffer_length; the server enforces max(S, this)
	Compressed       bool // the connection uses the compressed protocol
	// ClientMaxPacket is the driver's own limit (DSN maxAllowedPacket, M): from
	// the *mysql.Config given with DriverConfig, S-1 when that config sets 0,
	// else the driver's default of 64 MiB, assumed.
	ClientMaxPacket int
	ClientKnown     bool // ClientMaxPacket came from a *mysql.Config

	Flavor              Flavor
	Version             string // @@version, e.g. "10.11.19-MariaDB-0+deb12u1"
	Major, Minor, Patch int
	NoBackslashEscapes  bool // NO_BACKSLASH_ESCAPES is in the session's sql_mode
	Strict              bool // STRICT_TRANS_TABLES or STRICT_ALL_TABLES is set
	MaxPreparedStmts    int  // @@max_prepared_stmt_count (server-wide)
	WaitTimeout         int  // @@wait_timeout, seconds
	// ServerStarted is when the server started (now minus its Uptime
	// status), to tell a server restart from a cut connection; zero when the
	// server does not say.
	ServerStarted time.Time

	connID uint64 // CONNECTION_ID(), to stop a statement the client gave up on
	node   int    // which node of Failover the connection is to (0 without)
	galera bool   // wsrep_on: a Galera node (read with Failover only)
}

// restartedSince reports whether the server behind l started after the one
// behind old (allowing a second for Uptime's granularity).
func (l Limits) restartedSince(old Limits) bool {
	if l.ServerStarted.IsZero() || old.ServerStarted.IsZero() || !l.sameServer(old) {
		return false
	}
	return l.ServerStarted.Sub(old.ServerStarted) > 2*time.Second
}

// serverPacket is the largest payload the server accepts on this connection:
// P <= max(S, net_buffer_length) - 1, and with compression the 4-byte inner
// header of every 16 MiB piece counts too: P + 4*(floor(P/16777215)+1) <= that
// (docs/wire.md, measured on MariaDB 10.11).
func (l Limits) serverPacket() int {
	p := max(l.MaxAllowedPacket, l.NetBufferLength) - 1
	if l.Compressed {
		limit := p
		p = limit - compressedOverhead(limit) // fits, since the overhead grows with P
		for p+1+compressedOverhead(p+1) <= limit {
			p++
		}
	}
	return p
}

// Packet is the largest payload of any packet on this connection: what both
// the driver (P <= M, checked before anything is written) and the server
// accept. Through Vitess it is at most vitessPacket, whatever
// max_allowed_packet says.
func (l Limits) Packet() int {
	p := min(l.ClientMaxPacket, l.serverPacket())
	if l.Flavor == Vitess {
		p = min(p, vitessPacket)
	}
	return p
}

// vtgate sends each statement to a tablet in one gRPC message (the query
// text and its bind variables), which gRPC caps at grpc_max_message_size:
// 16 MiB unless vtgate and vttablet both raise it. A statement is sent
// through Vitess in packets of at most vitessPacket, 1 MiB below the cap,
// for what the message adds to the values: each bind variable's name, type
// and framing, and numbers and times written as text, some 15 to 40 bytes
// a value. That covers statements of tens of thousands of values; those
// with more are far smaller than the cap at the default byte budget
// (DefaultBytes). A statement over the cap anyway is refused with 1153
// (older Vitess: 1203, "message larger than max") and cut smaller
// (classify.go). docs/engines.md has the details.
const (
	vitessMessageMax = 16 << 20
	vitessPacket     = vitessMessageMax - 1<<20
)

// compressedOverhead is what the server adds to a payload of p bytes when it
// checks a compressed connection: 4 bytes for each started 16 MiB piece.
func compressedOverhead(p int) int { return 4 * (p/maxPacketChunk + 1) }

// rowAlias reports whether ON DUPLICATE KEY UPDATE should use the row alias
// (INSERT ... AS new ... UPDATE c = new.c), which MySQL 8.0.20 introduced and
// which deprecates VALUES(c). MariaDB, TiDB and Vitess keep VALUES(c).
func (l Limits) rowAlias() bool {
	if l.Flavor != MySQL {
		return false
	}
	return l.Major > 8 || l.Major == 8 && (l.Minor > 0 || l.Patch >= 20)
}

// queryRower is what discovery needs: *sql.DB, *sql.Conn and *sql.Tx all
// have it.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// discover reads the limits of the connection behind q. cfg may be nil.
func discover(ctx context.Context, q queryRower, cfg *mysql.Config) (Limits, error) {
	var l Limits
	var sqlMode string
	err := q.QueryRowContext(ctx, "SELECT @@max_allowed_packet, @@net_buffer_length, @@version, @@sql_mode, @@max_prepared_stmt_count, @@wait_timeout, CONNECTION_ID()").
		Scan(&l.MaxAllowedPacket, &l.NetBufferLength, &l.Version, &sqlMode, &l.MaxPreparedStmts, &l.WaitTimeout, &l.connID)
	if err != nil {
		return l, fmt.Errorf("batch: reading connection limits: %w", err)
	}
	l.Flavor, l.Major, l.Minor, l.Patch = parseVersion(l.Version)
	l.NoBackslashEscapes, l.Strict = parseSQLMode(sqlMode)
	var name string
	var uptime int64
	if q.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Uptime'").Scan(&name, &uptime) == nil {
		l.ServerStarted = time.Now().Add(-time.Duration(uptime) * time.Second)
	}

	if cfg != nil {
		l.Compressed = hidden(cfg).compress
		l.ClientKnown = true
		l.ClientMaxPacket = cfg.MaxAllowedPacket
		if l.ClientMaxPacket == 0 {
			// The driver then reads max_allowed_packet on connect and uses S-1.
			l.ClientMaxPacket = l.MaxAllowedPacket - 1
		}
	} else {
		l.ClientMaxPacket = defaultClientMax
		var name, value string
		switch err := q.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Compression'").Scan(&name, &value); err {
		case nil:
			l.Compressed = strings.EqualFold(value, "ON")
		case sql.ErrNoRows: // servers without the variable do not compress
		default:
			return l, fmt.Errorf("batch: reading connection compression: %w", err)
		}
	}
	return l, nil
}

// parseVersion reads the flavour first, then the number: "10.11.19-MariaDB",
// "5.5.5-10.11.19-MariaDB" (replication prefix), "8.0.11-TiDB-v7.5.0",
// "8.0.30-Vitess", "8.4.3".
func parseVersion(v string) (f Flavor, major, minor, patch int) {
	switch lv := strings.ToLower(v); {
	case strings.Contains(lv, "mariadb"):
		f = MariaDB
		v = strings.TrimPrefix(v, "5.5.5-")
	case strings.Contains(lv, "tidb"):
		f = TiDB
	case strings.Contains(lv, "vitess"):
		f = Vitess
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		v = v[:i]
	}
	parts := strings.SplitN(v, ".", 3)
	nums := []*int{&major, &minor, &patch}
	for i, p := range parts {
		*nums[i], _ = strconv.Atoi(p)
	}
	return f, major, minor, patch
}

func parseSQLMode(mode string) (noBackslash, strict bool) {
	for _, m := range strings.Split(strings.ToUpper(mode), ",") {
		switch strings.TrimSpace(m) {
		case "NO_BACKSLASH_ESCAPES":
			noBackslash = true
		case "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES":
			strict = true
		}
	}
	return noBackslash, strict
}

// ReadLimits reads the limits of one connection of db (for a pool, one
// connection taken for the purpose) as Insert would; cfg may be nil, as
// with DriverConfig. Limits.Packet is the largest packet the package would
// send on it. Other connections of a pool may differ (see Limits).
func ReadLimits(ctx context.Context, db DB, cfg *mysql.Config) (Limits, error) {
	if p, ok := db.(pool); ok {
		conn, err := p.Conn(ctx)
		if err != nil {
			return Limits{}, err
		}
		defer conn.Close()
		return discover(ctx, conn, cfg)
	}
	return discover(ctx, db, cfg)
}

// clientCap is the driver limit learnt at run time when no *mysql.Config
// told it: below the largest packet of a statement the driver refused with
// mysql.ErrPktTooLarge. Zero means none learnt. Safe for concurrent use.
type clientCap struct {
	mu sync.Mutex
	v  int
}

// lower lowers the cap to at most v and returns it.
func (c *clientCap) lower(v int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.v == 0 || v < c.v {
		c.v = v
	}
	return c.v
}

// apply lowers lim's assumed driver limit to the cap.
func (c *clientCap) apply(lim *Limits) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.v > 0 {
		lim.ClientMaxPacket = min(lim.ClientMaxPacket, c.v)
	}
}
