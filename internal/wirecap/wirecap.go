// Package wirecap captures the MySQL protocol packets that
// github.com/go-sql-driver/mysql writes, so that tests can check, byte for
// byte, the size of every packet the driver sends.
//
// Register a Recorder under a network name and use that name in the DSN:
//
//	rec := wirecap.Register("wirecap1")
//	db, _ := sql.Open("mysql", "root@wirecap1(127.0.0.1:3306)/test")
//	...
//	for _, p := range rec.Commands(wirecap.ComQuery) { ... p.Len ... }
//
// Only what the client writes is parsed. Both the plain and the compressed
// (compress=true) framings are understood; connections using TLS are
// recorded up to the SSLRequest only.
package wirecap

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// Command bytes (first payload byte of a command packet).
const (
	ComQuit             byte = 0x01
	ComInitDB           byte = 0x02
	ComQuery            byte = 0x03
	ComPing             byte = 0x0e
	ComChangeUser       byte = 0x11
	ComStmtPrepare      byte = 0x16
	ComStmtExecute      byte = 0x17
	ComStmtSendLongData byte = 0x18
	ComStmtClose        byte = 0x19
	ComStmtReset        byte = 0x1a
	ComSetOption        byte = 0x1b
	ComResetConnection  byte = 0x1f
)

// Kind classifies a logical packet written by the client.
type Kind uint8

const (
	// KindHandshake is a connection-phase packet (HandshakeResponse,
	// SSLRequest, auth switch response, ...): not a command.
	KindHandshake Kind = iota
	// KindCommand is a command-phase packet with sequence id 0: a command
	// (COM_QUERY, COM_STMT_EXECUTE, ...) whose first byte is Cmd.
	KindCommand
	// KindData is a command-phase packet with a non-zero sequence id, such
	// as the file content sent for LOAD DATA LOCAL INFILE. Cmd is only its
	// first byte.
	KindData
)

func (k Kind) String() string {
	switch k {
	case KindHandshake:
		return "handshake"
	case KindCommand:
		return "command"
	case KindData:
		return "data"
	}
	return "kind?"
}

// Packet is one logical packet written by the client: the payload of one
// or more frames (a payload of MaxFrame bytes or more is split into frames
// of MaxFrame bytes followed by a shorter, possibly empty, one).
type Packet struct {
	Conn int  // connection number, 1 for the first connection dialed through the Recorder
	Kind Kind // handshake, command or data
	Seq  byte // sequence id of the first frame
	Cmd  byte // first payload byte (the command for KindCommand); 0 if Len == 0
	// Len is the logical payload length P, as the server sees it: the sum
	// of the frames' payloads, command byte included, 4-byte headers
	// excluded.
	Len int
	// Frames is the number of 4-byte-header frames the payload was sent in.
	Frames int
	// Framed is Len plus the 4-byte headers: HeaderLen*Frames + Len.
	Framed int
	// Wire is the number of bytes on the socket attributed to this packet.
	// With plain framing it equals Framed. With compression it is the sum of
	// the compressed packets (7-byte header included) whose first
	// uncompressed byte belongs to this packet.
	Wire int
	// Compressed tells whether the packet travelled inside compressed
	// packets.
	Compressed bool
	// Head holds the first bytes of the payload, at most the Recorder's
	// HeadBytes setting at the time the packet started (nil by default).
	Head []byte
}

// ConnInfo describes one connection dialed through a Recorder.
type ConnInfo struct {
	Conn       int    // connection number
	Addr       string // address dialed
	WireBytes  int    // bytes written by the client so far
	Compressed bool   // CLIENT_COMPRESS was negotiated
	TLS        bool   // the stream switched to TLS and is no longer parsed
	Closed     bool
	Err        error // parse error, if any
}

// Recorder records the packets written on connections dialed through it.
// It is safe for concurrent use.
type Recorder struct {
	name     string
	headSize atomic.Int64
	nextConn atomic.Int64

	mu      sync.Mutex
	packets []Packet
	conns   []*conn
}

// New returns a Recorder that is not registered with the driver; use Dial
// or Wrap to capture connections.
func New() *Recorder {
	return &Recorder{}
}

// Register returns a new Recorder whose Dial is registered with
// mysql.RegisterDialContext under name, so that a DSN such as
// "root@name(127.0.0.1:3306)/test" is captured. A previous registration
// under the same name is replaced.
func Register(name string) *Recorder {
	r := New()
	r.name = name
	mysql.RegisterDialContext(name, r.Dial)
	return r
}

// Name returns the network name given to Register ("" for New).
func (r *Recorder) Name() string { return r.name }

// Unregister removes the dial function registered by Register.
func (r *Recorder) Unregister() {
	if r.name != "" {
		mysql.DeregisterDialContext(r.name)
	}
}

// SetHeadBytes sets how many leading payload bytes are kept in
// Packet.Head for packets that start from now on (0, the default, keeps
// none). Negative means 0.
func (r *Recorder) SetHeadBytes(n int) {
	r.headSize.Store(int64(max(n, 0)))
}

// HeadBytes returns the setting of SetHeadBytes.
func (r *Recorder) HeadBytes() int { return int(r.headSize.Load()) }

// Dial dials TCP to addr and returns the connection wrapped by Wrap.
func (r *Recorder) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return r.Wrap(c), nil
}

// Wrap returns c with every byte written to it parsed as MySQL client
// packets. The connection must be fresh: the first byte written must be
// the start of the client's first packet.
func (r *Recorder) Wrap(c net.Conn) net.Conn {
	id := int(r.nextConn.Add(1))
	w := &conn{Conn: c, rec: r}
	if a := c.RemoteAddr(); a != nil {
		w.addr = a.String()
	}
	w.p = parser{
		conn:     id,
		maxFrame: MaxFrame,
		emit:     r.add,
		headSize: r.HeadBytes,
	}
	r.mu.Lock()
	r.conns = append(r.conns, w)
	r.mu.Unlock()
	return w
}

func (r *Recorder) add(p Packet) {
	r.mu.Lock()
	r.packets = append(r.packets, p)
	r.mu.Unlock()
}

// Packets returns a copy of all the packets recorded since the last Reset,
// in the order they were completed (handshake packets included, flagged by
// Kind). The Head slices are shared and must not be modified.
func (r *Recorder) Packets() []Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.packets)
}

// Filter returns the recorded packets for which keep returns true.
func (r *Recorder) Filter(keep func(Packet) bool) []Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Packet
	for _, p := range r.packets {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// Commands returns the recorded command packets (KindCommand) whose
// command byte is cmd.
func (r *Recorder) Commands(cmd byte) []Packet {
	return r.Filter(func(p Packet) bool { return p.Kind == KindCommand && p.Cmd == cmd })
}

// AllCommands returns every recorded command packet (KindCommand).
func (r *Recorder) AllCommands() []Packet {
	return r.Filter(func(p Packet) bool { return p.Kind == KindCommand })
}

// Reset forgets the recorded packets. Connections and their parse state
// are kept: packets in progress are recorded when they complete.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.packets = nil
	r.mu.Unlock()
}

// Conns describes the connections dialed so far, in dial order.
func (r *Recorder) Conns() []ConnInfo {
	r.mu.Lock()
	cs := slices.Clone(r.conns)
	r.mu.Unlock()
	out := make([]ConnInfo, len(cs))
	for i, c := range cs {
		out[i] = c.info()
	}
	return out
}

// Err returns the parse errors of all connections joined, or nil. A parse
// error means the captured stream was not valid MySQL client protocol (or
// not as this package understands it); it never affects the connection.
func (r *Recorder) Err() error {
	var errs []error
	for _, ci := range r.Conns() {
		if ci.Err != nil {
			errs = append(errs, ci.Err)
		}
	}
	return errors.Join(errs...)
}

type conn struct {
	net.Conn
	rec  *Recorder
	addr string

	mu     sync.Mutex
	p      parser
	closed bool
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.mu.Lock()
		c.p.Write(b[:n])
		c.mu.Unlock()
	}
	return n, err
}

func (c *conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *conn) info() ConnInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ConnInfo{
		Conn:       c.p.conn,
		Addr:       c.addr,
		WireBytes:  c.p.wireTotal,
		Compressed: c.p.compress,
		TLS:        c.p.tls,
		Closed:     c.closed,
		Err:        c.p.err,
	}
}
