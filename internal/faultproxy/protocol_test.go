package faultproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// frame returns a packet with payload p and sequence id seq (p shorter
// than maxFrame).
func frame(seq byte, p []byte) []byte {
	return append([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq}, p...)
}

// reply frames payloads as one reply, from sequence id 1.
func reply(payloads ...[]byte) []byte {
	var b []byte
	for i, p := range payloads {
		b = append(b, frame(byte(i+1), p)...)
	}
	return b
}

func ok(status uint16) []byte { return binary.LittleEndian.AppendUint16([]byte{0, 0, 0}, status) }

// end is the packet that ends rows: EOF (0xFE, warnings 0, status) or,
// with CLIENT_DEPRECATE_EOF, an OK with header 0xFE (0 rows, last insert id
// 0, status): the same bytes.
func end(status uint16) []byte {
	return binary.LittleEndian.AppendUint16([]byte{0xfe, 0, 0}, status)
}

var (
	colDef  = []byte("\x03def\x00\x00\x00\x01a\x01a\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00")
	textRow = []byte("\x011\x03two")
	errPkt  = (&ErrPacket{Number: 1213, Message: "deadlock"}).encode(0)[4:]
)

// resultSet returns the packets of a result set of two columns and two
// rows ending with status; meta is the metadata-follows byte (-1: none).
func resultSet(deprecateEOF bool, meta int, status uint16) [][]byte {
	head := []byte{2}
	if meta >= 0 {
		head = append(head, byte(meta))
	}
	ps := [][]byte{head}
	if meta != 0 {
		ps = append(ps, colDef, colDef)
	}
	if !deprecateEOF {
		ps = append(ps, end(0))
	}
	return append(ps, textRow, textRow, end(status))
}

func prepareOK(cols, params uint16) []byte {
	b := []byte{0, 7, 0, 0, 0}
	b = binary.LittleEndian.AppendUint16(b, cols)
	b = binary.LittleEndian.AppendUint16(b, params)
	return append(b, 0, 0, 0)
}

// defs returns n definitions, and the EOF after them without
// CLIENT_DEPRECATE_EOF.
func defs(deprecateEOF bool, n int) [][]byte {
	var ps [][]byte
	for range n {
		ps = append(ps, colDef)
	}
	if n > 0 && !deprecateEOF {
		ps = append(ps, end(0))
	}
	return ps
}

func join(parts ...[][]byte) [][]byte {
	var all [][]byte
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// TestReplyReader follows replies of every shape, with and without
// CLIENT_DEPRECATE_EOF, and checks that it reads each exactly to its end.
func TestReplyReader(t *testing.T) {
	for _, deprecateEOF := range []bool{false, true} {
		d := deprecateEOF
		cases := []struct {
			name  string
			kind  replyKind
			cache bool
			ps    [][]byte
		}{
			{"OK", replyResult, false, [][]byte{ok(0)}},
			{"ERR", replyResult, false, [][]byte{errPkt}},
			{"ResultSet", replyResult, false, resultSet(d, -1, 0)},
			{"MoreResults", replyResult, false, join([][]byte{ok(statusMoreResults)}, resultSet(d, -1, statusMoreResults), resultSet(d, -1, statusMoreResults), [][]byte{ok(0)})},
			{"ErrInRows", replyResult, false, append(resultSet(d, -1, 0)[:len(resultSet(d, -1, 0))-1], errPkt)},
			{"CachedMetadata", replyResult, true, resultSet(d, 0, 0)},
			{"SentMetadata", replyResult, true, resultSet(d, 1, 0)},
			{"Progress", replyResult, false, [][]byte{[]byte("\xff\xff\xff\x01\x01\x02\x00\x00\x00\x00\x00"), ok(0)}},
			{"LocalInfile", replyResult, false, [][]byte{[]byte("\xfbfile"), ok(0)}},
			{"Prepare", replyPrepare, false, join([][]byte{prepareOK(2, 3)}, defs(d, 3), defs(d, 2))},
			{"PrepareNoDefs", replyPrepare, false, [][]byte{prepareOK(0, 0)}},
			{"PrepareErr", replyPrepare, false, [][]byte{errPkt}},
			{"Auth", replyAuth, false, [][]byte{[]byte("\xfemysql_native_password\x00scramble"), []byte("\x01\x03"), ok(0)}},
			{"One", replyOne, false, [][]byte{end(0)}},
		}
		for _, c := range cases {
			name := c.name + map[bool]string{false: "/EOF", true: "/DeprecateEOF"}[d]
			t.Run(name, func(t *testing.T) {
				stream := append(reply(c.ps...), frame(0, []byte("next"))...)
				r := bufio.NewReader(bytes.NewReader(stream))
				emitted, infiles := 0, 0
				rr := replyReader{r: r, deprecateEOF: d, cacheMetadata: c.cache,
					emit:   func(packet) error { emitted++; return nil },
					infile: func(byte) error { infiles++; return nil }}
				first, err := readPacket(r)
				if err != nil {
					t.Fatal(err)
				}
				if err := rr.rest(c.kind, first); err != nil {
					t.Fatal(err)
				}
				if emitted != len(c.ps)-1 {
					t.Errorf("emitted %d packets after the first, want %d", emitted, len(c.ps)-1)
				}
				if next, err := readPacket(r); err != nil || string(next.payload) != "next" {
					t.Errorf("after the reply: %q, %v; want the next packet", next.payload, err)
				}
				if want := strings.Count(c.name, "Infile"); infiles != want {
					t.Errorf("%d LOCAL INFILE requests, want %d", infiles, want)
				}
			})
		}
	}
}

// TestReadPacket: a payload of maxFrame bytes or more comes in several
// frames, joined; a stream cut inside a packet is an unexpected EOF.
func TestReadPacket(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, maxFrame+10)
	stream := append(frame(0, big[:maxFrame]), frame(1, big[maxFrame:])...)
	stream = append(stream, frame(0, big[:maxFrame])...)
	stream = append(stream, frame(1, nil)...) // exactly maxFrame: an empty frame ends it
	stream = append(stream, frame(0, []byte("cut"))[:5]...)
	r := bufio.NewReader(bytes.NewReader(stream))
	for i, want := range []int{maxFrame + 10, maxFrame} {
		pk, err := readPacket(r)
		if err != nil || len(pk.payload) != want || len(pk.raw) != want+8 || pk.firstSeq != 0 || pk.seq != 1 {
			t.Fatalf("packet %d: %d bytes (%d raw), seq %d..%d, %v; want %d bytes, seq 0..1", i, len(pk.payload), len(pk.raw), pk.firstSeq, pk.seq, err, want)
		}
	}
	if _, err := readPacket(r); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut packet: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := readPacket(r); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func TestErrPacket(t *testing.T) {
	got := (&ErrPacket{Number: 1213, Message: "x"}).encode(3)
	want := []byte{10, 0, 0, 3, 0xff, 0xbd, 0x04, '#', 'H', 'Y', '0', '0', '0', 'x'}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode = % x, want % x", got, want)
	}
}

// fakeServer accepts one connection, greets it, reads the handshake
// response, answers OK, then answers every command with serve's packets.
func fakeServer(t *testing.T, serve func(cmd []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write(frame(0, greetingPayload(capProtocol41|capDeprecateEOF|capSSL)))
		if _, err := readPacket(r); err != nil {
			return
		}
		c.Write(frame(2, ok(0)))
		for {
			pk, err := readPacket(r)
			if err != nil {
				return
			}
			c.Write(serve(pk.payload))
		}
	}()
	return ln.Addr().String()
}

func greetingPayload(caps uint32) []byte {
	b := append([]byte{10}, "5.5.5-10.11.0-fake\x00"...)
	b = append(b, 1, 0, 0, 0)        // connection id
	b = append(b, "abcdefgh\x00"...) // auth data 1, filler
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, 45, 2, 0) // charset, status
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, 21, 0, 0, 0, 0, 0, 0) // auth data length, reserved
	b = append(b, 0, 0, 0, 0)           // MariaDB extended capabilities
	return append(b, "ijklmnopqrst\x00mysql_native_password\x00"...)
}

// fakeClient connects through p, checks the greeting, and logs in.
func fakeClient(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	g, err := readPacket(r)
	if err != nil {
		t.Fatal(err)
	}
	if caps, _, _ := greetingCaps(g.payload); caps&capSSL != 0 || caps&capDeprecateEOF == 0 {
		t.Fatalf("greeting capabilities %#x: want CLIENT_SSL taken out, CLIENT_DEPRECATE_EOF kept", caps)
	}
	resp := binary.LittleEndian.AppendUint32(nil, capMySQL|capProtocol41|capDeprecateEOF)
	resp = append(resp, make([]byte, 28)...)
	c.Write(frame(1, append(resp, "root\x00\x00"...)))
	if pk, err := readPacket(r); err != nil || pk.payload[0] != 0 {
		t.Fatalf("login: % x, %v", pk.payload, err)
	}
	return c, r
}

// TestUnfollowedCommand: after a command whose reply the proxy does not
// know, it forwards the rest of the connection as is (the rules no longer
// see it) and says why in ProtocolErrors.
func TestUnfollowedCommand(t *testing.T) {
	addr := fakeServer(t, func(cmd []byte) []byte {
		if cmd[0] == 0x0c { // COM_PROCESS_KILL, say with two packets the proxy would not expect
			return append(frame(1, ok(0)), frame(2, ok(0))...)
		}
		return frame(1, ok(0))
	})
	p, err := Start(Options{Target: addr, Rules: []Rule{{Match: IsCommand(ComQuery), Err: &ErrPacket{Number: 1213}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := fakeClient(t, p)
	c.Write(frame(0, []byte{0x0c, 1, 0, 0, 0}))
	for i := 0; i < 2; i++ {
		if pk, err := readPacket(r); err != nil || pk.payload[0] != 0 {
			t.Fatalf("reply %d to COM_PROCESS_KILL: % x, %v", i, pk.payload, err)
		}
	}
	c.Write(frame(0, []byte("\x03SELECT 1")))
	if pk, err := readPacket(r); err != nil || pk.payload[0] != 0 {
		t.Fatalf("COM_QUERY after it: % x, %v; want the server's OK", pk.payload, err)
	}
	errs := p.ProtocolErrors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "0x0c") || len(p.Injections()) != 0 {
		t.Fatalf("ProtocolErrors() = %v, Injections() = %v; want one error about 0x0c and no injection", errs, p.Injections())
	}
}

// TestUnparsableReply: a reply the proxy cannot parse reaches the client as
// it is, and so does the rest of the connection.
func TestUnparsableReply(t *testing.T) {
	addr := fakeServer(t, func(cmd []byte) []byte {
		if string(cmd) == "\x03SELECT 1" {
			return append(frame(1, nil), frame(2, ok(0))...) // an empty packet: no reply has one
		}
		return frame(1, ok(0))
	})
	p, err := Start(Options{Target: addr, MySQL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := fakeClient(t, p)
	c.Write(frame(0, []byte("\x03SELECT 1")))
	for i, want := range []int{0, len(ok(0))} {
		if pk, err := readPacket(r); err != nil || len(pk.payload) != want {
			t.Fatalf("packet %d of the reply: % x, %v; want %d bytes", i, pk.payload, err, want)
		}
	}
	c.Write(frame(0, []byte{ComPing}))
	if pk, err := readPacket(r); err != nil || pk.payload[0] != 0 {
		t.Fatalf("COM_PING after it: % x, %v", pk.payload, err)
	}
	if errs := p.ProtocolErrors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "empty packet") {
		t.Fatalf("ProtocolErrors() = %v; want one about the empty packet", errs)
	}
}
