package faultproxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// bufSize is the size of the proxy's read buffers, and how much of a reply
// it gathers before writing it to the client.
const bufSize = 32 << 10

// ProtocolErrors returns why MySQL mode refused connections, or stopped
// following them (and forwarded the rest as is), in the order it happened.
func (p *Proxy) ProtocolErrors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.protoErrs...)
}

func (p *Proxy) protocolError(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.protoErrs = append(p.protoErrs, err)
}

// wire is the MySQL-mode state of a link that its two directions share.
type wire struct {
	mu       sync.Mutex
	queue    []*pending        // commands forwarded whose reply has not started, oldest first
	stmts    map[uint32]string // statement text by statement id
	lastStmt uint32            // id of the statement prepared last
	plain    atomic.Bool       // following stopped: forward the rest as is
	cw       sync.Mutex        // serializes writes to the client
	dead     chan struct{}     // closed when the server direction ends

	// The client direction's own.
	started bool     // the handshake response was seen
	last    *pending // the last command queued
}

// pending is a command forwarded to the server, whose reply the server
// direction follows.
type pending struct {
	cmd  Command // without Payload
	kind replyKind
	rule *Rule // a Forward rule that fired on it: swallow the reply, then act
	// handshake: this is the handshake response, whose capabilities are
	// caps and ext.
	handshake bool
	caps, ext uint32
	done      chan struct{} // closed once the reply has been dealt with
}

func newWire() *wire {
	return &wire{stmts: map[uint32]string{}, dead: make(chan struct{})}
}

// push queues pd before its command is forwarded; false if following
// stopped.
func (w *wire) push(pd *pending) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.plain.Load() {
		return false
	}
	pd.done = make(chan struct{})
	w.queue = append(w.queue, pd)
	w.last = pd
	return true
}

// pop takes the oldest command waiting for its reply; nil if none.
func (w *wire) pop() *pending {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil
	}
	pd := w.queue[0]
	w.queue[0] = nil
	w.queue = w.queue[1:]
	return pd
}

// stop ends the following: from now on both directions forward packets as
// they are. err, if not nil, says why, in ProtocolErrors.
func (w *wire) stop(p *Proxy, err error) {
	if err != nil {
		p.protocolError(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.plain.Store(true)
	for _, pd := range w.queue {
		close(pd.done)
	}
	w.queue = nil
}

// waitIdle waits until the replies to the commands forwarded so far are
// dealt with; false if the link ended first.
func (w *wire) waitIdle() bool {
	if w.last == nil {
		return true
	}
	select {
	case <-w.last.done:
		return true
	case <-w.dead:
		return false
	}
}

func (w *wire) toClient(l *link, b []byte) error {
	w.cw.Lock()
	defer w.cw.Unlock()
	_, err := l.client.Write(b)
	return err
}

// sqlOf returns the statement text of a command's payload (see
// Command.SQL).
func (w *wire) sqlOf(payload []byte) string {
	switch payload[0] {
	case ComQuery, ComStmtPrepare:
		return string(payload[1:])
	case ComStmtExecute:
		if id, ok := stmtID(payload); ok {
			w.mu.Lock()
			defer w.mu.Unlock()
			if id == 0xffffffff { // MariaDB: the statement prepared last
				id = w.lastStmt
			}
			return w.stmts[id]
		}
	}
	return ""
}

// track forgets the statements a command deallocates.
func (w *wire) track(payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch payload[0] {
	case ComStmtClose:
		if id, ok := stmtID(payload); ok {
			delete(w.stmts, id)
		}
	case ComResetConnection, ComChangeUser:
		clear(w.stmts)
	}
}

// remember records the text of a statement the server prepared.
func (w *wire) remember(id uint32, sql string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stmts[id] = sql
	w.lastStmt = id
}

// stmtID returns the statement id that follows the command byte.
func stmtID(payload []byte) (uint32, bool) {
	if len(payload) < 5 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(payload[1:]), true
}

// finish closes the link as rule r says, once its Err (if any) was sent:
// in order after an Err (hangUp), abruptly without.
func finish(l *link, r *Rule) {
	if r.Err != nil {
		l.hangUp()
	} else {
		l.reset()
	}
}

// clientMySQL reads the client's packets: the handshake response first,
// then commands (sequence id 0), which the rules see, and the rest
// (authentication data, LOCAL INFILE contents), forwarded as is.
func (p *Proxy) clientMySQL(l *link, w *wire) {
	r := bufio.NewReaderSize(l.client, bufSize)
	var cf clientFlow
	for {
		pk, err := readPacket(r)
		if err != nil {
			return // a partial packet is dropped: the server never runs it
		}
		var ok bool
		switch {
		case l.hungUp.Load():
			continue // drained
		case w.plain.Load() || (w.started && (pk.firstSeq != 0 || len(pk.payload) == 0)):
			ok = p.fromClient(l, &cf, pk.raw)
		case !w.started:
			w.started = true
			ok = p.handshakeResponse(l, w, &cf, pk)
		default:
			ok = p.command(l, w, &cf, pk)
		}
		if !ok && !l.hungUp.Load() {
			return
		}
	}
}

// handshakeResponse forwards the client's handshake response, or refuses
// what the proxy could not follow with an ERR packet.
func (p *Proxy) handshakeResponse(l *link, w *wire, cf *clientFlow, pk packet) bool {
	caps, ext := responseCaps(pk.payload)
	var why string
	switch {
	case caps&capProtocol41 == 0:
		why = "a pre-4.1 handshake response"
	case caps&capSSL != 0:
		why = "TLS (CLIENT_SSL)"
	case caps&capCompress != 0:
		why = "compression (CLIENT_COMPRESS): connect without it (DSN compress=false)"
	}
	if why == "" {
		w.push(&pending{kind: replyAuth, handshake: true, caps: caps, ext: ext})
		return p.fromClient(l, cf, pk.raw)
	}
	err := fmt.Errorf("faultproxy: connection %d: MySQL mode cannot follow %s", l.id, why)
	p.protocolError(err)
	refusal := ErrPacket{Number: 1043, SQLState: "08S01", Message: err.Error()} // ER_HANDSHAKE_ERROR
	p.waitThawed(l)
	_ = w.toClient(l, refusal.encode(pk.seq+1))
	l.hangUp()
	return true // drain
}

// command passes a client command through the rules, then forwards it,
// or answers it in the server's place.
func (p *Proxy) command(l *link, w *wire, cf *clientFlow, pk packet) bool {
	c := Command{Conn: l.id, Cmd: pk.payload[0], Seq: pk.seq, SQL: w.sqlOf(pk.payload), Payload: pk.payload}
	kind := replyOf(c.Cmd)
	if why := unfollowable(c, kind); why != "" {
		w.stop(p, fmt.Errorf("faultproxy: connection %d: %s; forwarding the rest of the connection as is", l.id, why))
		return p.fromClient(l, cf, pk.raw)
	}
	w.track(pk.payload)
	if kind == replyNone {
		return p.fromClient(l, cf, pk.raw)
	}
	rule := p.match(c)
	c.Payload = nil
	if rule != nil && !rule.Forward {
		return p.answer(l, w, c, rule)
	}
	w.push(&pending{cmd: c, kind: kind, rule: rule})
	return p.fromClient(l, cf, pk.raw)
}

// unfollowable says why the proxy cannot follow the reply to c; "" if it
// can.
func unfollowable(c Command, kind replyKind) string {
	switch {
	case kind == replyUnknown:
		return fmt.Sprintf("the reply to command 0x%02x is not followed", c.Cmd)
	case c.Cmd == ComStmtExecute && len(c.Payload) > 5 && c.Payload[5]&0x07 != 0:
		return "a COM_STMT_EXECUTE that opens a cursor is not followed"
	}
	return ""
}

// answer deals with a command that rule r keeps from the server: once the
// earlier replies are out, the client gets r.Err, and/or the link is
// closed.
func (p *Proxy) answer(l *link, w *wire, c Command, r *Rule) bool {
	if !w.waitIdle() {
		return false
	}
	if r.Err != nil {
		p.waitThawed(l)
		if err := w.toClient(l, r.Err.encode(c.Seq+1)); err != nil {
			return false
		}
	}
	if r.Close {
		finish(l, r)
		return r.Err != nil // after an Err, drain
	}
	return true
}

// serverSide is the MySQL-mode server-to-client direction of a link.
type serverSide struct {
	p   *Proxy
	l   *link
	w   *wire
	r   *bufio.Reader
	out []byte // bytes for the client not written yet

	caps, ext     uint32 // the server's capabilities
	deprecateEOF  bool   // CLIENT_DEPRECATE_EOF, as agreed
	cacheMetadata bool   // MARIADB_CLIENT_CACHE_METADATA, as agreed
}

// serverMySQL reads the server's packets: the greeting, then the reply to
// each command the client direction queued. Anything else (such as the
// ERR of a killed connection) is forwarded as is.
func (p *Proxy) serverMySQL(l *link, w *wire) {
	defer close(w.dead)
	s := &serverSide{p: p, l: l, w: w, r: bufio.NewReaderSize(l.server, bufSize)}
	if !s.greeting() {
		return
	}
	for {
		pk, err := readPacket(s.r)
		if err != nil {
			return
		}
		if pd := w.pop(); pd != nil {
			if !s.reply(pd, pk) {
				return
			}
		} else if s.send(pk.raw, true) != nil {
			return
		}
	}
}

// greeting forwards the server's initial handshake without CLIENT_SSL and
// notes its capabilities.
func (s *serverSide) greeting() bool {
	pk, err := readPacket(s.r)
	if err != nil {
		return false
	}
	caps, ext, at := greetingCaps(pk.payload)
	switch {
	case at >= 0:
		s.caps, s.ext = caps, ext
		binary.LittleEndian.PutUint16(pk.raw[4+at:], uint16(caps&^capSSL))
	case len(pk.payload) > 0 && pk.payload[0] == 0xff:
		s.w.stop(s.p, nil) // "too many connections" and the like: the server closes
	default:
		s.w.stop(s.p, fmt.Errorf("faultproxy: connection %d: the server's greeting is not a protocol 10 handshake", s.l.id))
	}
	return s.send(pk.raw, true) == nil
}

// reply follows the reply to pd, whose first packet is first, forwarding
// or swallowing it, then carries out pd's rule.
func (s *serverSide) reply(pd *pending, first packet) bool {
	defer close(pd.done)
	if pd.handshake {
		s.deprecateEOF = pd.caps&s.caps&capDeprecateEOF != 0
		s.cacheMetadata = pd.ext&s.ext&extCacheMetadata != 0
	}
	if pd.cmd.Cmd == ComStmtPrepare && len(first.payload) >= 5 && first.payload[0] == 0x00 {
		id, _ := stmtID(first.payload)
		s.w.remember(id, pd.cmd.SQL)
	}
	swallow := pd.rule != nil
	rr := replyReader{r: s.r, deprecateEOF: s.deprecateEOF, cacheMetadata: s.cacheMetadata}
	rr.emit = func(pk packet) error {
		if swallow {
			return nil
		}
		return s.send(pk.raw, s.r.Buffered() == 0)
	}
	rr.infile = func(seq byte) error { return s.infile(seq, swallow) }
	err := rr.emit(first)
	if err == nil {
		err = rr.rest(pd.kind, first)
	}
	if err == nil {
		err = s.flush()
	}
	if err != nil {
		return s.failed(err, swallow)
	}
	if swallow {
		return s.inject(pd)
	}
	return true
}

// failed deals with an error in following a reply: a reply the proxy
// cannot follow is forwarded as is, with the rest of the connection,
// unless it was being swallowed; then the link is reset.
func (s *serverSide) failed(err error, swallow bool) bool {
	var pe protocolError
	if !errors.As(err, &pe) {
		return false // a read or write error: the link is over
	}
	if swallow {
		s.p.protocolError(fmt.Errorf("faultproxy: connection %d: %s; reset, since its reply was being swallowed", s.l.id, string(pe)))
		s.l.reset()
		return false
	}
	s.w.stop(s.p, fmt.Errorf("faultproxy: connection %d: %s; forwarding the rest of the connection as is", s.l.id, string(pe)))
	return s.flush() == nil
}

// infile answers a LOCAL INFILE request with sequence id seq: the client
// sends the file, unless the reply is swallowed; then the proxy sends the
// server an empty file.
func (s *serverSide) infile(seq byte, swallow bool) error {
	if !swallow {
		return s.flush()
	}
	_, err := s.l.server.Write([]byte{0, 0, 0, seq + 1})
	return err
}

// inject carries out the Forward rule of pd once its reply is swallowed.
func (s *serverSide) inject(pd *pending) bool {
	r := pd.rule
	if r.Err != nil {
		if r.Close {
			s.l.hungUp.Store(true) // what the client sends once it has the ERR is not forwarded
		}
		if err := s.send(r.Err.encode(pd.cmd.Seq+1), true); err != nil {
			return false
		}
	}
	if r.Close {
		finish(s.l, r)
		return false
	}
	return true
}

// send writes raw to the client, gathering small packets until flush is
// true or enough are gathered.
func (s *serverSide) send(raw []byte, flush bool) error {
	if len(s.out)+len(raw) > bufSize {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if len(raw) > bufSize {
		return s.write(raw)
	}
	s.out = append(s.out, raw...)
	if flush {
		return s.flush()
	}
	return nil
}

func (s *serverSide) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	err := s.write(s.out)
	s.out = s.out[:0]
	return err
}

// write writes b to the client, once thawed; not at all if the reply is
// lost to a cut.
func (s *serverSide) write(b []byte) error {
	if s.l.lost.Load() {
		return nil
	}
	s.p.waitThawed(s.l)
	return s.w.toClient(s.l, b)
}
