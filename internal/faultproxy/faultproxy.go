// Package faultproxy is a small TCP proxy for fault tests: it sits between a
// client and a server, forwards bytes both ways, and injects the faults a
// database client must survive:
//
//   - cuts: each proxied connection is given a random budget of client bytes
//     and a direction. When the client has sent that many bytes, the
//     connection is cut in that direction. ClientToServer forwards exactly
//     the budget and resets both sides: the server usually gets half a
//     packet (the command never runs) while the client may well have written
//     all of it. ServerToClient forwards the MySQL packet that used up the
//     budget whole, then resets the client's side at once and half-closes
//     the server's: the server reads the whole command and runs it (however
//     long it takes, e.g. waiting for a lock), its reply is dropped, and the
//     client sees its connection reset with no reply, while the command may
//     still be running. (Counting reply bytes instead would almost never hit
//     the few bytes of an OK packet.) At most Options.MaxCuts connections
//     are cut; after that the proxy only forwards, so a client that retries
//     always gets through in the end.
//
// ServerToClient cuts follow the MySQL packet framing (3-byte length,
// 1-byte sequence) of what the client sends, so they need a connection
// without TLS or compression.
//   - a freeze (Freeze, Thaw): a silent network partition. Nothing is
//     forwarded either way, nothing is closed, and new connections are
//     accepted but not dialed through, until Thaw (or Close); what was read
//     meanwhile is delivered then, as TCP would retransmit it.
//     FreezeClients holds only the connections of some client addresses.
//   - a marker: when a given byte string passes from client to server, the
//     bytes that carry it are not forwarded, Options.OnMarker is called (for
//     example to SIGKILL and restart the server, a "query of death"), and the
//     connection is reset.
//   - injected errors (Options.MySQL, Rules, Inject): the proxy follows the
//     MySQL protocol, client commands and the server's replies, and a Rule
//     answers a chosen command with an ERR packet, before or after the
//     server ran it, and/or closes the connection there (see Rule).
//
// It has no dependency beyond the standard library. Toxiproxy does more, but
// needs a server process and an HTTP API; these faults need neither.
package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction is the way bytes flow through the proxy.
type Direction int

const (
	ClientToServer Direction = 1 << iota
	ServerToClient
	// Both lets each connection's cut direction be drawn at random.
	Both = ClientToServer | ServerToClient
)

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Options configures a Proxy. The zero value (with a Target) forwards
// without faults.
type Options struct {
	// Target is the server's address, "host:port".
	Target string

	// MaxCuts bounds the number of connections cut; 0 means none. Connections
	// are cut in the order they reach their budget.
	MaxCuts int
	// CutMin and CutMax bound each connection's budget of client bytes,
	// drawn uniformly in [CutMin, CutMax] (CutMin at least 1).
	CutMin, CutMax int64
	// Directions are the directions a cut may be in (default Both), see the
	// package documentation.
	Directions Direction
	// Seed seeds the random budgets and directions; 0 draws a random seed.
	Seed uint64

	// Marker, when not empty, is watched for in the client-to-server bytes
	// (also across reads). When it passes, the read that completes it is
	// dropped, OnMarker is called synchronously (the connection waits for
	// it), and the connection is reset.
	Marker   []byte
	OnMarker func()

	// DialTimeout bounds the dial to Target (default 5s).
	DialTimeout time.Duration

	// Listen is the address to listen on, "host:port" (default
	// "127.0.0.1:0", a free port of 127.0.0.1).
	Listen string
	// LocalIP, when set, is the IP address the proxy dials Target from, so
	// that the server sees every proxied connection come from it (any
	// 127.x.y.z works on Linux without configuration).
	LocalIP string

	// MySQL turns on protocol following: the proxy reads the client's
	// packets and the server's replies as MySQL packets (handshake, then
	// commands and their replies: OK, ERR, EOF, result sets, prepare
	// responses; CLIENT_DEPRECATE_EOF and MariaDB's metadata caching
	// followed) so that rules (Rules, Inject) can answer a command with an
	// error. Cuts, freezes and the marker work as without it, on whole
	// packets. It needs a connection without TLS or compression: CLIENT_SSL
	// is taken out of the server's greeting (a client that demands TLS
	// fails to connect, one that prefers it goes on without), and a client
	// that asks for compression is answered an ERR 1043 that says so. A
	// reply the proxy cannot follow (a command it does not know, a cursor)
	// makes it forward the rest of that connection as is; ProtocolErrors
	// says why.
	MySQL bool
	// Rules are rules in force from the start, as if added by Inject before
	// the first connection; they imply MySQL.
	Rules []Rule
}

// Cut describes one cut, for test logs.
type Cut struct {
	Conn      int       // connection number, from 1, in accept order
	Direction Direction // what was cut: the request, or the reply after it
	After     int64     // client bytes forwarded before the cut
}

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	opts Options
	ln   net.Listener

	mu     sync.Mutex
	rng    *rand.Rand
	conns  map[*link]struct{}
	cuts   []Cut
	closed bool
	thaw   chan struct{} // non-nil while frozen; closed by Thaw, Close or a new freeze
	// frozen selects the connections a freeze holds, by client address;
	// nil holds them all.
	frozen func(client net.Addr) bool

	// MySQL mode: the rules not fired yet, how many rules were ever added,
	// what fired, and why connections were not (or no longer) followed.
	rules      []*ruleState
	nrules     int
	injections []Injection
	protoErrs  []error

	accepted atomic.Int64
	markers  atomic.Int64
	wg       sync.WaitGroup
}

// Start listens on a free port of 127.0.0.1 and proxies every connection to
// opts.Target until Close.
func Start(opts Options) (*Proxy, error) {
	if opts.Target == "" {
		return nil, errors.New("faultproxy: no Target")
	}
	if opts.MaxCuts > 0 && (opts.CutMin < 1 || opts.CutMax < opts.CutMin) {
		return nil, fmt.Errorf("faultproxy: need 1 <= CutMin <= CutMax, have %d, %d", opts.CutMin, opts.CutMax)
	}
	if opts.Directions&Both == 0 {
		opts.Directions = Both
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.LocalIP != "" && net.ParseIP(opts.LocalIP) == nil {
		return nil, fmt.Errorf("faultproxy: LocalIP %q is not an IP address", opts.LocalIP)
	}
	for _, r := range opts.Rules {
		if err := r.check(); err != nil {
			return nil, err
		}
	}
	opts.MySQL = opts.MySQL || len(opts.Rules) > 0
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{opts: opts, ln: ln, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), conns: map[*link]struct{}{}}
	for _, r := range opts.Rules {
		p.addRuleLocked(r) // nothing runs yet
	}
	p.opts.Rules = nil
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cuts returns the cuts made so far.
func (p *Proxy) Cuts() []Cut {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Cut(nil), p.cuts...)
}

// Markers is how many times the marker passed (and OnMarker was called).
func (p *Proxy) Markers() int { return int(p.markers.Load()) }

// Conns is how many client connections were accepted.
func (p *Proxy) Conns() int { return int(p.accepted.Load()) }

// Freeze stops all forwarding without closing anything, like a network
// that silently drops packets, until Thaw.
func (p *Proxy) Freeze() { p.freeze(nil) }

// FreezeClients is Freeze for only the connections whose client address
// (as the proxy sees it) match accepts, for example to cut one host off
// from a server that others still reach. It replaces the selection of an
// earlier Freeze or FreezeClients; Thaw ends it.
func (p *Proxy) FreezeClients(match func(client net.Addr) bool) { p.freeze(match) }

func (p *Proxy) freeze(match func(net.Addr) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.thaw != nil {
		close(p.thaw) // the waiters check the new selection
	}
	p.thaw = make(chan struct{})
	p.frozen = match
}

// Thaw ends a Freeze: the bytes held meanwhile are forwarded.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thaw != nil {
		close(p.thaw)
		p.thaw, p.frozen = nil, nil
	}
}

// waitThawed blocks while the proxy is frozen for l.
func (p *Proxy) waitThawed(l *link) {
	for {
		p.mu.Lock()
		ch, match := p.thaw, p.frozen
		p.mu.Unlock()
		if ch == nil || (match != nil && !match(l.client.RemoteAddr())) {
			return
		}
		<-ch
	}
}

// Close stops listening, resets every open connection and waits for the
// proxy's goroutines (an OnMarker call in progress included).
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.thaw != nil {
		close(p.thaw) // the held bytes go nowhere: every connection is reset below
		p.thaw, p.frozen = nil, nil
	}
	err := p.ln.Close()
	for l := range p.conns {
		l.reset()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// link is one proxied connection.
type link struct {
	id             int
	client, server net.Conn
	dir            Direction   // how the connection is cut
	budget         int64       // client bytes left before the cut; < 0: none
	lost           atomic.Bool // the reply is lost: drop what the server sends
	hungUp         atomic.Bool // closed in order: drop what the client sends
	once           sync.Once
}

// loseReply resets the client's side and half-closes the server's, so that
// the server still reads everything forwarded so far (an RST could make its
// kernel drop unread bytes) and finishes the command.
func (l *link) loseReply() {
	l.lost.Store(true)
	if tc, ok := l.client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = l.client.Close()
	if tc, ok := l.server.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// reset closes both sides abruptly (RST, not FIN), like a dead peer or a
// cut cable would look to the client.
func (l *link) reset() {
	l.once.Do(func() {
		for _, c := range []net.Conn{l.client, l.server} {
			if c == nil {
				continue
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	})
}

// hangUp ends the link in order: the server's side is closed and the
// client's half-closed (FIN), so that the client reads what was sent
// before, then end-of-file, as from a server that closed the connection.
// The client direction then drains (and drops) what the client still sends
// until it closes its side too, lest a write of the client's be answered
// by an RST that could reach it before it reads the end of file.
func (l *link) hangUp() {
	l.hungUp.Store(true)
	if tc, ok := l.client.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		_ = l.client.Close()
	}
	_ = l.server.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		id := int(p.accepted.Add(1))
		p.wg.Add(1)
		go p.serve(id, c)
	}
}

// newLink registers a link for client, drawing its cut; nil if the proxy
// is closed.
func (p *Proxy) newLink(id int, client net.Conn) *link {
	l := &link{id: id, client: client, budget: -1}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if p.opts.MaxCuts > 0 && len(p.cuts) < p.opts.MaxCuts {
		l.budget = p.opts.CutMin + p.rng.Int64N(p.opts.CutMax-p.opts.CutMin+1)
		l.dir = p.opts.Directions
		if l.dir == Both {
			l.dir = ClientToServer << p.rng.IntN(2)
		}
	}
	p.conns[l] = struct{}{}
	return l
}

func (p *Proxy) serve(id int, client net.Conn) {
	defer p.wg.Done()
	l := p.newLink(id, client)
	if l == nil {
		client.Close()
		return
	}
	defer func() {
		l.reset()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()

	p.waitThawed(l)
	d := net.Dialer{Timeout: p.opts.DialTimeout}
	if p.opts.LocalIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(p.opts.LocalIP)}
	}
	server, err := d.Dial("tcp", p.opts.Target)
	if err != nil {
		return // the client sees its connection closed, as with a dead server
	}
	l.server = server
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		server.Close()
		return
	}
	done := make(chan struct{}, 2)
	if p.opts.MySQL {
		w := newWire()
		go func() { p.clientMySQL(l, w); done <- struct{}{} }()
		go func() { p.serverMySQL(l, w); done <- struct{}{} }()
	} else {
		go func() { p.pipe(l, server, client, ClientToServer); done <- struct{}{} }()
		go func() { p.pipe(l, client, server, ServerToClient); done <- struct{}{} }()
	}
	<-done
	if !l.lost.Load() && !l.hungUp.Load() {
		l.reset() // one side ended: end the other
	} // else wait until the server has finished the command and closed, or the client has
	<-done
}

// takeCut reserves one of the MaxCuts cuts, or reports there is none left.
func (p *Proxy) takeCut(c Cut) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cuts) >= p.opts.MaxCuts {
		return false
	}
	p.cuts = append(p.cuts, c)
	return true
}

// pipe copies src to dst in direction dir, applying the link's budget and
// the marker.
func (p *Proxy) pipe(l *link, dst, src net.Conn, dir Direction) {
	buf := make([]byte, 32<<10)
	var cf clientFlow
	for {
		n, rerr := src.Read(buf)
		data := buf[:n]
		if dir == ClientToServer {
			if n > 0 && !p.fromClient(l, &cf, data) {
				return
			}
		} else if n > 0 && !l.lost.Load() { // else the reply is lost; read on until the server closes
			p.waitThawed(l)
			if _, err := dst.Write(data); err != nil {
				return
			}
		}
		if rerr != nil {
			return // EOF or a reset: the caller ends the other direction too
		}
	}
}

// clientFlow is the state of a link's client-to-server direction.
type clientFlow struct {
	tail        []byte // the last len(Marker)-1 bytes forwarded, to find a marker across reads
	passed      int64  // client bytes forwarded
	f           framer // where packets end
	lossPending bool   // a ServerToClient cut waits for the end of the current packet
}

// fromClient forwards data from the client to the server, watching for
// the marker and spending the link's budget. It returns false when the link
// is done with (reset, or its reply lost).
func (p *Proxy) fromClient(l *link, cf *clientFlow, data []byte) bool {
	if p.sawMarker(cf, data) {
		p.markers.Add(1)
		if p.opts.OnMarker != nil {
			p.opts.OnMarker()
		}
		l.reset()
		return false
	}
	switch n, cut := p.spend(l, cf, data); cut {
	case cutRequest:
		_, _ = l.server.Write(data[:n])
		l.reset()
		return false
	case cutReply:
		_, _ = l.server.Write(data[:n])
		l.loseReply()
		return false
	}
	p.waitThawed(l)
	if _, err := l.server.Write(data); err != nil {
		return false
	}
	cf.passed += int64(len(data))
	return true
}

// sawMarker reports whether the marker passes with data (also across
// calls).
func (p *Proxy) sawMarker(cf *clientFlow, data []byte) bool {
	m := p.opts.Marker
	if len(m) == 0 {
		return false
	}
	joined := append(cf.tail, data...)
	if bytes.Contains(joined, m) {
		return true
	}
	keep := min(len(joined), len(m)-1)
	cf.tail = append(cf.tail[:0], joined[len(joined)-keep:]...)
	return false
}

// cutKind is what spend decides.
type cutKind int

const (
	noCut      cutKind = iota // forward all the data
	cutRequest                // forward the first n bytes, then reset
	cutReply                  // forward the first n bytes, then lose the reply
)

// spend counts data, about to be forwarded, against the link's budget and
// says whether (and after how many of its bytes) to cut.
func (p *Proxy) spend(l *link, cf *clientFlow, data []byte) (n int, cut cutKind) {
	switch {
	case cf.lossPending:
		if k, ended := cf.f.next(data); ended {
			return k, cutReply
		}
	case l.budget < 0:
		cf.f.feed(data)
	case int64(len(data)) < l.budget:
		l.budget -= int64(len(data))
		cf.f.feed(data)
	case !p.takeCut(Cut{Conn: l.id, Direction: l.dir, After: cf.passed + l.budget}):
		l.budget = -1 // no cut left: only forward from now on
		cf.f.feed(data)
	case l.dir == ClientToServer:
		return int(l.budget), cutRequest
	default: // ServerToClient: finish the packet holding the last byte of the budget
		at := int(l.budget)
		l.budget = -1
		if cf.f.feed(data[:at]) {
			return at, cutReply
		}
		if k, ended := cf.f.next(data[at:]); ended {
			return at + k, cutReply
		}
		cf.lossPending = true
	}
	return len(data), noCut
}

// framer follows MySQL packet boundaries in the bytes a client sends: each
// packet is a 3-byte little-endian payload length, a sequence byte, and the
// payload.
type framer struct {
	hdr  [4]byte
	have int // header bytes seen of the current packet
	left int // payload bytes left once the header is complete
}

// next consumes b up to the end of the current packet. It returns how many
// bytes it consumed and whether the packet ended there.
func (f *framer) next(b []byte) (n int, ended bool) {
	for f.have < 4 {
		if n == len(b) {
			return n, false
		}
		f.hdr[f.have] = b[n]
		f.have++
		n++
		if f.have == 4 {
			f.left = int(f.hdr[0]) | int(f.hdr[1])<<8 | int(f.hdr[2])<<16
		}
	}
	k := min(f.left, len(b)-n)
	f.left -= k
	n += k
	if f.left == 0 {
		f.have = 0
		return n, true
	}
	return n, false
}

// feed consumes all of b and reports whether its last byte ended a packet.
func (f *framer) feed(b []byte) (ended bool) {
	for len(b) > 0 {
		n, e := f.next(b)
		b = b[n:]
		ended = e
	}
	return ended
}
