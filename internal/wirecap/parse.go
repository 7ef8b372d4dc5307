package wirecap

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
)

// Protocol constants, as used by github.com/go-sql-driver/mysql.
const (
	// MaxFrame is the largest payload of one 4-byte-header packet
	// (0xFFFFFF). A logical payload of MaxFrame bytes or more is split into
	// frames of MaxFrame bytes followed by a shorter (possibly empty) one.
	MaxFrame = 1<<24 - 1

	// HeaderLen is the size of the header of a plain packet.
	HeaderLen = 4
	// CompressedHeaderLen is the size of the header of a compressed packet.
	CompressedHeaderLen = 7

	capCompress = 1 << 5  // CLIENT_COMPRESS
	capSSL      = 1 << 11 // CLIENT_SSL

	// keep a compressed-frame buffer of at most this capacity between frames.
	keepCompBuf = 1 << 20
)

type outerMode uint8

const (
	modePlain      outerMode = iota // 4-byte-header packets directly on the wire
	modeCompressed                  // 7-byte-header compressed packets wrapping plain packets
	modeOpaque                      // TLS or broken stream: no longer parsed
)

// parser turns the byte stream that a MySQL client writes into logical
// packets. It is incremental: Write may be called with any split of the
// stream, down to one byte at a time. It keeps counters, never whole
// payloads (except the zlib-compressed bytes of the current compressed
// frame, which are decompressed when the frame is complete).
//
// Phases follow github.com/go-sql-driver/mysql (connector.go, packets.go,
// compress.go):
//   - connection phase: the client answers the server's handshake with the
//     HandshakeResponse (or SSLRequest) packet, sequence id 1, whose first 4
//     payload bytes are the negotiated capability flags (client & server);
//     further auth packets have sequence ids >= 3. All are plain packets.
//   - the first client packet with sequence id 0 starts the command phase.
//     If CLIENT_COMPRESS was in the HandshakeResponse flags, compression is
//     on from that packet on (the driver sets mc.compress after auth), so
//     that sequence id 0 is in fact byte 3 of the first 7-byte compressed
//     header (the compressed sequence, reset to 0 for every command).
//   - if CLIENT_SSL was in the flags, TLS follows the SSLRequest and the
//     rest of the stream is opaque.
type parser struct {
	emit     func(Packet)
	headSize func() int
	conn     int
	maxFrame int // MaxFrame; tests may lower it

	mode      outerMode
	command   bool // command phase reached
	compress  bool // CLIENT_COMPRESS negotiated
	sawFlags  bool // first connection-phase packet seen
	tls       bool
	err       error
	wireTotal int

	// compressed framing
	chdr  [CompressedHeaderLen]byte
	chdrN int
	cLeft int // bytes of the current compressed payload still to come
	cULen int // uncompressed length from the header, 0 = stored as is
	cBuf  []byte
	zr    io.ReadCloser
	zbuf  []byte

	// plain (inner) framing
	hdr      [HeaderLen]byte
	hdrN     int
	left     int  // payload bytes still to come in the current frame
	frameLen int  // payload length of the current frame
	inPkt    bool // a logical packet is in progress
	cur      Packet
	headCap  int
	flags    [4]byte
	flagsN   int
	wireAcc  int // wire bytes attributed to the current/next logical packet
	innerAcc int
}

// Write feeds bytes written by the client. It never fails: a stream that
// cannot be parsed sets p.err and switches the parser off.
func (p *parser) Write(b []byte) {
	p.wireTotal += len(b)
	for len(b) > 0 {
		switch p.mode {
		case modeOpaque:
			return
		case modePlain:
			n, sw := p.feedInner(b, true)
			b = b[n:]
			if sw {
				// The 4 bytes just read as a plain header are the start
				// of the first compressed header.
				p.mode = modeCompressed
				hdr := p.hdr
				p.hdrN = 0
				p.feedCompressed(hdr[:])
			}
		case modeCompressed:
			n := p.feedCompressed(b)
			b = b[n:]
		}
	}
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = fmt.Errorf("wirecap: conn %d: %w", p.conn, err)
	}
	p.mode = modeOpaque
}

// feedCompressed consumes compressed-protocol bytes. It returns how many
// bytes of b it consumed (all of them unless the parser failed).
func (p *parser) feedCompressed(b []byte) int {
	total := len(b)
	for len(b) > 0 && p.mode == modeCompressed {
		if p.chdrN < CompressedHeaderLen {
			k := copy(p.chdr[p.chdrN:], b)
			p.chdrN += k
			b = b[k:]
			if p.chdrN < CompressedHeaderLen {
				break
			}
			p.cLeft = uint24(p.chdr[0:3])
			p.cULen = uint24(p.chdr[4:7])
			// The whole compressed packet is attributed to the logical
			// packet that its first inner byte belongs to.
			p.wireAcc += CompressedHeaderLen + p.cLeft
			if p.cULen != 0 {
				if p.cLeft == 0 {
					p.fail(errors.New("compressed packet with empty zlib stream"))
					break
				}
				p.cBuf = p.cBuf[:0]
			}
			if p.cLeft == 0 {
				p.chdrN = 0
			}
			continue
		}
		k := min(p.cLeft, len(b))
		if p.cULen == 0 {
			p.feedInnerAll(b[:k])
		} else {
			p.cBuf = append(p.cBuf, b[:k]...)
		}
		b = b[k:]
		p.cLeft -= k
		if p.cLeft == 0 {
			p.chdrN = 0
			if p.cULen != 0 {
				p.inflate()
			}
		}
	}
	if p.mode != modeCompressed {
		return total
	}
	return total - len(b)
}

func (p *parser) inflate() {
	br := bytes.NewReader(p.cBuf)
	var err error
	if p.zr == nil {
		p.zr, err = zlib.NewReader(br)
	} else {
		err = p.zr.(zlib.Resetter).Reset(br, nil)
	}
	if err != nil {
		p.fail(fmt.Errorf("zlib: %w", err))
		return
	}
	if p.zbuf == nil {
		p.zbuf = make([]byte, 64<<10)
	}
	n := 0
	for {
		m, rerr := p.zr.Read(p.zbuf)
		if m > 0 {
			n += m
			if n > p.cULen {
				p.fail(fmt.Errorf("compressed packet inflates past its declared %d bytes", p.cULen))
				return
			}
			p.feedInnerAll(p.zbuf[:m])
			if p.mode == modeOpaque {
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			p.fail(fmt.Errorf("zlib: %w", rerr))
			return
		}
	}
	if err := p.zr.Close(); err != nil {
		p.fail(fmt.Errorf("zlib: %w", err))
		return
	}
	if n != p.cULen {
		p.fail(fmt.Errorf("compressed packet inflates to %d bytes, header says %d", n, p.cULen))
		return
	}
	if cap(p.cBuf) > keepCompBuf {
		p.cBuf = nil
	}
}

// feedInnerAll feeds plain packets found inside compressed packets.
func (p *parser) feedInnerAll(b []byte) {
	for len(b) > 0 && p.mode != modeOpaque {
		n, _ := p.feedInner(b, false)
		b = b[n:]
	}
}

// feedInner consumes plain-packet bytes. onWire tells whether they are
// directly on the wire (plain framing) rather than inside compressed
// packets. It returns the number of bytes consumed and whether the stream
// switches to compressed framing right after them.
func (p *parser) feedInner(b []byte, onWire bool) (int, bool) {
	consumed := 0
	for len(b) > 0 {
		if p.hdrN < HeaderLen {
			k := copy(p.hdr[p.hdrN:], b)
			p.hdrN += k
			b = b[k:]
			consumed += k
			if p.hdrN < HeaderLen {
				return consumed, false
			}
			size := uint24(p.hdr[0:3])
			seq := p.hdr[3]
			if !p.inPkt {
				if !p.command && seq == 0 {
					p.command = true
					if p.compress && onWire {
						return consumed, true
					}
				}
				p.startPacket(seq, !onWire)
			}
			p.frameLen = size
			p.left = size
			p.cur.Frames++
			p.innerAcc += HeaderLen + size
			if onWire {
				p.wireAcc += HeaderLen + size
			}
			if size == 0 {
				p.endFrame()
				if p.mode == modeOpaque {
					return consumed, false
				}
			}
			continue
		}
		k := min(p.left, len(b))
		p.payload(b[:k])
		b = b[k:]
		consumed += k
		p.left -= k
		if p.left == 0 {
			p.endFrame()
			if p.mode == modeOpaque {
				return consumed, false
			}
		}
	}
	return consumed, false
}

func (p *parser) startPacket(seq byte, compressed bool) {
	p.inPkt = true
	kind := KindHandshake
	if p.command {
		kind = KindCommand
		if seq != 0 {
			kind = KindData
		}
	}
	p.cur = Packet{Conn: p.conn, Kind: kind, Seq: seq, Compressed: compressed}
	p.headCap = 0
	if p.headSize != nil {
		p.headCap = max(p.headSize(), 0)
	}
	p.flagsN = 0
}

func (p *parser) payload(b []byte) {
	if len(b) == 0 {
		return
	}
	if p.cur.Len == 0 {
		p.cur.Cmd = b[0]
	}
	if p.cur.Kind == KindHandshake && !p.sawFlags && p.flagsN < len(p.flags) {
		p.flagsN += copy(p.flags[p.flagsN:], b)
	}
	if h := p.headCap - len(p.cur.Head); h > 0 {
		if p.cur.Head == nil {
			p.cur.Head = make([]byte, 0, min(p.headCap, 4096))
		}
		p.cur.Head = append(p.cur.Head, b[:min(h, len(b))]...)
	}
	p.cur.Len += len(b)
}

func (p *parser) endFrame() {
	p.hdrN = 0
	if p.frameLen == p.maxFrame {
		return // the logical packet continues in the next frame
	}
	p.inPkt = false
	pk := p.cur
	pk.Wire = p.wireAcc
	pk.Framed = p.innerAcc
	p.wireAcc, p.innerAcc = 0, 0
	p.cur = Packet{}
	if p.emit != nil {
		p.emit(pk)
	}
	if pk.Kind == KindHandshake && !p.sawFlags {
		p.sawFlags = true
		if p.flagsN < len(p.flags) {
			p.fail(fmt.Errorf("first client packet has %d bytes, too short for capability flags", pk.Len))
			return
		}
		caps := uint32(p.flags[0]) | uint32(p.flags[1])<<8 | uint32(p.flags[2])<<16 | uint32(p.flags[3])<<24
		p.compress = caps&capCompress != 0
		if caps&capSSL != 0 {
			// SSLRequest: TLS follows, nothing more can be read.
			p.tls = true
			p.mode = modeOpaque
		}
	}
}

func uint24(b []byte) int {
	return int(b[0]) | int(b[1])<<8 | int(b[2])<<16
}
