package wirecap

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// logical is one logical packet of a synthetic client stream.
type logical struct {
	seq     byte
	payload []byte
}

const (
	testFlagsPlain    = 0x000fa685 // typical go-sql-driver flags, no CLIENT_COMPRESS / CLIENT_SSL
	testFlagsCompress = testFlagsPlain | capCompress
	testFlagsSSL      = testFlagsPlain | capSSL
)

func handshakeResponse(flags uint32) []byte {
	b := make([]byte, 32, 64)
	binary.LittleEndian.PutUint32(b, flags)
	b = append(b, "root\x00\x00test\x00mysql_native_password\x00"...)
	return b
}

// frames encodes a logical packet as 4-byte-header frames, splitting at
// maxFrame exactly like go-sql-driver's writePacket.
func frames(l logical, maxFrame int) []byte {
	return appendFrames(nil, l, maxFrame)
}

func appendFrames(out []byte, l logical, maxFrame int) []byte {
	seq := l.seq
	data := l.payload
	for {
		size := min(len(data), maxFrame)
		out = append(out, byte(size), byte(size>>8), byte(size>>16), seq)
		out = append(out, data[:size]...)
		seq++
		data = data[size:]
		if size != maxFrame {
			return out
		}
	}
}

// payload returns n bytes starting with cmd: a 4 KiB block, half
// repetitive and half random, repeated.
func payload(rng *rand.Rand, cmd byte, n int) []byte {
	var block [4096]byte
	for i := range block {
		if (i/97)%2 == 0 {
			block[i] = 'a' + byte(i%3)
		} else {
			block[i] = byte(rng.IntN(256))
		}
	}
	b := make([]byte, n)
	for i := 0; i < n; i += len(block) {
		copy(b[i:], block[:])
	}
	if n > 0 {
		b[0] = cmd
	}
	return b
}

type stream struct {
	wire []byte
	want []Packet
}

// buildStream builds the client side of a connection: handshake packets in
// plain framing, then the command-phase packets, in plain framing or, if
// compressed, wrapped in compressed packets whose boundaries are chosen by
// cut (sizes of the uncompressed chunks, cycled); every other compressed
// packet is zlib-compressed, the others stored (uncompressed length 0).
func buildStream(t testing.TB, maxFrame, head int, compressed bool, cut []int, hs, cmds []logical) stream {
	t.Helper()
	var s stream
	size := 0
	for _, l := range append(hs[:len(hs):len(hs)], cmds...) {
		size += len(l.payload) + HeaderLen*(len(l.payload)/maxFrame+1)
	}
	s.wire = make([]byte, 0, size+size/2+1024)
	want := func(l logical, kind Kind, wire int, comp bool) Packet {
		n := len(l.payload)
		p := Packet{Conn: 1, Kind: kind, Seq: l.seq, Len: n, Frames: n/maxFrame + 1, Compressed: comp}
		p.Framed = p.Len + HeaderLen*p.Frames
		p.Wire = wire
		if n > 0 {
			p.Cmd = l.payload[0]
		}
		if head > 0 && n > 0 {
			p.Head = bytes.Clone(l.payload[:min(head, n)])
		}
		return p
	}
	for _, l := range hs {
		f := frames(l, maxFrame)
		s.wire = append(s.wire, f...)
		s.want = append(s.want, want(l, KindHandshake, len(f), false))
	}
	kindOf := func(l logical) Kind {
		if l.seq == 0 {
			return KindCommand
		}
		return KindData
	}
	if !compressed {
		for _, l := range cmds {
			n := len(s.wire)
			s.wire = appendFrames(s.wire, l, maxFrame)
			s.want = append(s.want, want(l, kindOf(l), len(s.wire)-n, false))
		}
		return s
	}
	// Inner stream and the offset at which each logical packet starts.
	inner := make([]byte, 0, size)
	var starts []int
	for _, l := range cmds {
		starts = append(starts, len(inner))
		inner = appendFrames(inner, l, maxFrame)
	}
	wire := make([]int, len(cmds))
	owner := func(off int) int { // index of the logical packet containing inner offset off
		i := 0
		for i+1 < len(starts) && starts[i+1] <= off {
			i++
		}
		return i
	}
	var cseq byte
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, zlib.BestSpeed)
	for i, off := 0, 0; off < len(inner); i++ {
		n := min(cut[i%len(cut)], len(inner)-off)
		chunk := inner[off : off+n]
		body := chunk
		ulen := 0
		if i%2 == 1 {
			zb.Reset()
			zw.Reset(&zb)
			zw.Write(chunk)
			zw.Close()
			body = zb.Bytes()
			ulen = n
		}
		s.wire = append(s.wire, byte(len(body)), byte(len(body)>>8), byte(len(body)>>16), cseq,
			byte(ulen), byte(ulen>>8), byte(ulen>>16))
		s.wire = append(s.wire, body...)
		cseq++
		wire[owner(off)] += CompressedHeaderLen + len(body)
		off += n
	}
	for i, l := range cmds {
		s.want = append(s.want, want(l, kindOf(l), wire[i], true))
	}
	return s
}

// feed runs wire through a parser, splitting it according to split (which
// returns the size of the next Write given the offset), and returns what
// it recorded.
func feed(wire []byte, maxFrame, head int, split func(off int) int) ([]Packet, *parser) {
	var got []Packet
	p := &parser{
		conn:     1,
		maxFrame: maxFrame,
		headSize: func() int { return head },
		emit:     func(pk Packet) { got = append(got, pk) },
	}
	for off := 0; off < len(wire); {
		n := min(max(split(off), 1), len(wire)-off)
		p.Write(wire[off : off+n])
		off += n
	}
	return got, p
}

func checkStream(t *testing.T, name string, s stream, maxFrame, head int, split func(int) int) {
	t.Helper()
	got, p := feed(s.wire, maxFrame, head, split)
	if p.err != nil {
		t.Fatalf("%s: parse error: %v", name, p.err)
	}
	if p.wireTotal != len(s.wire) {
		t.Fatalf("%s: wireTotal %d, want %d", name, p.wireTotal, len(s.wire))
	}
	if d := cmp.Diff(s.want, got); d != "" {
		t.Fatalf("%s: packets differ (-want +got):\n%s", name, d)
	}
	sum := 0
	for _, pk := range got {
		sum += pk.Wire
	}
	if sum != len(s.wire) {
		t.Fatalf("%s: sum of Packet.Wire %d, want %d", name, sum, len(s.wire))
	}
}

// smallCommands exercises frame splitting with maxFrame = 8: payloads of
// 0, 1, 7, 8 (two frames, the second empty), 9, 16, 17 bytes, a data packet
// and its empty terminator.
func smallCommands(rng *rand.Rand) []logical {
	return []logical{
		{0, payload(rng, ComQuery, 9)},
		{0, payload(rng, ComPing, 1)},
		{0, payload(rng, ComStmtPrepare, 7)},
		{0, payload(rng, ComStmtExecute, 8)},
		{0, payload(rng, ComStmtSendLongData, 16)},
		{0, payload(rng, ComQuery, 17)},
		{1, payload(rng, 'x', 23)}, // LOAD DATA LOCAL INFILE content
		{2, nil},                   // its terminator
		{0, payload(rng, ComStmtClose, 5)},
		{0, nil},
		{0, payload(rng, ComQuit, 1)},
	}
}

func smallHandshake(flags uint32) []logical {
	return []logical{
		{1, handshakeResponse(flags)},
		{3, []byte("auth-switch-response-20b")},
	}
}

func TestParserEverySplitPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const maxFrame, head = 8, 5
	s := buildStream(t, maxFrame, head, false, nil, smallHandshake(testFlagsPlain), smallCommands(rng))
	checkStream(t, "bytewise", s, maxFrame, head, func(int) int { return 1 })
	checkStream(t, "whole", s, maxFrame, head, func(int) int { return len(s.wire) })
	for cut := 1; cut < len(s.wire); cut++ {
		checkStream(t, "two writes", s, maxFrame, head, func(off int) int {
			if off < cut {
				return cut - off
			}
			return len(s.wire)
		})
	}
}

func TestParserEverySplitCompressed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const maxFrame, head = 8, 3
	for _, cut := range [][]int{{1}, {3, 200, 5}, {7, 11}, {13}, {4096}, {4, 5, 6, 30}} {
		s := buildStream(t, maxFrame, head, true, cut, smallHandshake(testFlagsCompress), smallCommands(rng))
		checkStream(t, "bytewise", s, maxFrame, head, func(int) int { return 1 })
		checkStream(t, "whole", s, maxFrame, head, func(int) int { return len(s.wire) })
		for c := 1; c < len(s.wire); c++ {
			checkStream(t, "two writes", s, maxFrame, head, func(off int) int {
				if off < c {
					return c - off
				}
				return len(s.wire)
			})
		}
	}
}

// TestParserRealFrameSize uses the real 0xFFFFFF frame size with payloads
// of 16 MiB and more, written 1 byte at a time around every header and in
// big random pieces in between.
func TestParserRealFrameSize(t *testing.T) {
	if testing.Short() {
		t.Skip("big payloads")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	cmds := []logical{
		{0, payload(rng, ComQuery, 100)},
		{0, payload(rng, ComQuery, MaxFrame-1)}, // one frame
		{0, payload(rng, ComQuery, MaxFrame)},   // MaxFrame + empty frame
		{0, payload(rng, ComQuery, MaxFrame+1)}, // MaxFrame + 1
		{0, payload(rng, ComStmtExecute, 2*MaxFrame+12345)},
		{0, payload(rng, ComStmtClose, 5)},
	}
	hs := smallHandshake(testFlagsPlain)
	// The compressed variant cuts the inner stream like go-sql-driver:
	// at most MaxFrame-4 bytes per compressed packet.
	for _, compressed := range []bool{false, true} {
		flags := uint32(testFlagsPlain)
		if compressed {
			flags = testFlagsCompress
		}
		hs[0].payload = handshakeResponse(flags)
		s := buildStream(t, MaxFrame, 4, compressed, []int{MaxFrame - 4, 3, 1000}, hs, cmds)
		// Offsets of every 4- or 7-byte header are unknown to the feeder
		// in the compressed case, so go bytewise around every multiple
		// of a few interesting sizes, and in random pieces elsewhere.
		split := func(off int) int {
			for _, m := range []int{MaxFrame, MaxFrame + 4, MaxFrame - 4, MaxFrame + 7} {
				if r := off % m; r < 16 || r > m-16 {
					return 1
				}
			}
			return 1 + rng.IntN(1<<20)
		}
		checkStream(t, "real frames", s, MaxFrame, 4, split)
		checkStream(t, "real frames whole", s, MaxFrame, 4, func(int) int { return len(s.wire) })
	}
}

func TestParserTLS(t *testing.T) {
	wire := frames(logical{1, handshakeResponse(testFlagsSSL)[:32]}, MaxFrame)
	wire = append(wire, "\x16\x03\x01 some TLS bytes \x00\x00\x00\x00"...)
	got, p := feed(wire, MaxFrame, 0, func(int) int { return 1 })
	if p.err != nil || !p.tls || len(got) != 1 || got[0].Kind != KindHandshake || got[0].Len != 32 {
		t.Fatalf("err=%v tls=%v got=%+v", p.err, p.tls, got)
	}
}

func TestParserBadZlib(t *testing.T) {
	wire := frames(logical{1, handshakeResponse(testFlagsCompress)}, MaxFrame)
	wire = append(wire, 5, 0, 0, 0, 200, 0, 0, 'n', 'o', 'p', 'e', '!')
	wire = append(wire, "more garbage"...)
	got, p := feed(wire, MaxFrame, 0, func(int) int { return 1 })
	if p.err == nil || !strings.Contains(p.err.Error(), "zlib") {
		t.Fatalf("want zlib error, got %v", p.err)
	}
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
}

// discardConn is a net.Conn that swallows writes.
type discardConn struct{}

func (discardConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) LocalAddr() net.Addr              { return nil }
func (discardConn) RemoteAddr() net.Addr             { return nil }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// TestRecorderConcurrent writes several synthetic connections at once
// through Recorder.Wrap, byte by byte.
func TestRecorderConcurrent(t *testing.T) {
	r := New()
	r.SetHeadBytes(2)
	const nconn = 6
	type result struct {
		conn int
		want []Packet
	}
	done := make(chan result, nconn)
	for i := range nconn {
		compressed := i%2 == 1
		flags := uint32(testFlagsPlain)
		if compressed {
			flags = testFlagsCompress
		}
		rng := rand.New(rand.NewPCG(uint64(i), 9))
		s := buildStream(t, MaxFrame, 2, compressed, []int{50, 7}, smallHandshake(flags), smallCommands(rng))
		c := r.Wrap(discardConn{})
		go func() {
			for j := range s.wire {
				c.Write(s.wire[j : j+1])
			}
			c.Close()
			done <- result{c.(*conn).p.conn, s.want}
		}()
	}
	want := map[int][]Packet{}
	nwant := 0
	for range nconn {
		res := <-done
		for i := range res.want {
			res.want[i].Conn = res.conn
		}
		want[res.conn] = res.want
		nwant += len(res.want)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	got := r.Packets()
	if len(got) != nwant {
		t.Fatalf("got %d packets, want %d", len(got), nwant)
	}
	// Per connection, the order is the write order; compare everything
	// but Conn, which depends on scheduling.
	perConn := map[int][]Packet{}
	for _, p := range got {
		perConn[p.Conn] = append(perConn[p.Conn], p)
	}
	if d := cmp.Diff(want, perConn); d != "" {
		t.Fatalf("packets differ (-want +got):\n%s", d)
	}
	for _, ci := range r.Conns() {
		if !ci.Closed || ci.WireBytes == 0 {
			t.Errorf("conn info %+v", ci)
		}
	}
	if n := len(r.Commands(ComStmtClose)); n != nconn {
		t.Errorf("Commands(ComStmtClose): %d, want %d", n, nconn)
	}
	r.Reset()
	if len(r.Packets()) != 0 {
		t.Error("Reset left packets")
	}
}

func benchParser(b *testing.B, compressed bool) {
	rng := rand.New(rand.NewPCG(7, 8))
	flags := uint32(testFlagsPlain)
	if compressed {
		flags = testFlagsCompress
	}
	s := buildStream(b, MaxFrame, 0, compressed, []int{MaxFrame - 4},
		[]logical{{1, handshakeResponse(flags)}},
		[]logical{{0, payload(rng, ComQuery, 40<<20)}})
	b.SetBytes(int64(len(s.wire)))
	for b.Loop() {
		// Writes of at most 16 MiB, as the driver does.
		feed(s.wire, MaxFrame, 0, func(int) int { return MaxFrame + 4 })
	}
}

// BenchmarkParserPlain measures the overhead on a 40 MiB statement.
func BenchmarkParserPlain(b *testing.B) { benchParser(b, false) }

// BenchmarkParserCompressed includes zlib decompression.
func BenchmarkParserCompressed(b *testing.B) { benchParser(b, true) }
