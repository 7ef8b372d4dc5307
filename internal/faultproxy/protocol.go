package faultproxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// MySQL protocol constants used by the MySQL mode.
const (
	maxFrame = 1<<24 - 1 // largest payload of one frame

	capMySQL        = 1 << 0  // CLIENT_MYSQL (CLIENT_LONG_PASSWORD); unset: MariaDB extended capabilities follow
	capCompress     = 1 << 5  // CLIENT_COMPRESS
	capProtocol41   = 1 << 9  // CLIENT_PROTOCOL_41
	capSSL          = 1 << 11 // CLIENT_SSL
	capDeprecateEOF = 1 << 24 // CLIENT_DEPRECATE_EOF

	extCacheMetadata = 1 << 4 // MARIADB_CLIENT_CACHE_METADATA

	statusMoreResults = 0x0008 // SERVER_MORE_RESULTS_EXISTS
)

// packet is one logical MySQL packet: the payload of one or more frames
// (a payload of maxFrame bytes or more is followed by another frame).
type packet struct {
	raw      []byte // the frames as read, headers included
	payload  []byte // the frames' payloads joined
	firstSeq byte   // sequence id of the first frame
	seq      byte   // sequence id of the last frame
}

// readPacket reads one logical packet from r. It returns io.EOF only when
// r ends before the packet starts.
func readPacket(r *bufio.Reader) (packet, error) {
	var pk packet
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF && len(pk.raw) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return pk, err
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		start := len(pk.raw)
		pk.raw = append(slices.Grow(pk.raw, 4+n), hdr[:]...)[:start+4+n]
		if _, err := io.ReadFull(r, pk.raw[start+4:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return pk, err
		}
		pk.seq = hdr[3]
		if start == 0 {
			pk.firstSeq = hdr[3]
			if n < maxFrame {
				pk.payload = pk.raw[4:] // the usual case: no copy
				return pk, nil
			}
		}
		pk.payload = append(pk.payload, pk.raw[start+4:]...)
		if n < maxFrame {
			return pk, nil
		}
	}
}

// greetingCaps returns the capability flags and the MariaDB extended
// capabilities of a server's initial handshake packet (protocol 10), and
// the offset in p of the lower two bytes of the flags; at < 0 if p is
// something else (such as an ERR packet).
func greetingCaps(p []byte) (caps, ext uint32, at int) {
	if len(p) < 1 || p[0] != 10 {
		return 0, 0, -1
	}
	i := 1
	for i < len(p) && p[i] != 0 { // server version, NUL-terminated
		i++
	}
	i += 1 + 4 + 8 + 1 // NUL, connection id, auth data part 1, filler
	if i+2 > len(p) {
		return 0, 0, -1
	}
	at = i
	caps = uint32(binary.LittleEndian.Uint16(p[i:]))
	i += 2 + 1 + 2 // lower flags, charset, status
	if i+2 > len(p) {
		return caps, 0, at
	}
	caps |= uint32(binary.LittleEndian.Uint16(p[i:])) << 16
	i += 2 + 1 + 6 // upper flags, auth data length, reserved
	if caps&capMySQL == 0 && i+4 <= len(p) {
		ext = binary.LittleEndian.Uint32(p[i:])
	}
	return caps, ext, at
}

// responseCaps returns the capability flags and MariaDB extended
// capabilities of a client's HandshakeResponse41 or SSLRequest.
func responseCaps(p []byte) (caps, ext uint32) {
	if len(p) < 4 {
		return 0, 0
	}
	caps = binary.LittleEndian.Uint32(p)
	// flags 4, max packet 4, charset 1, filler 19, extended flags 4
	if caps&capMySQL == 0 && len(p) >= 32 {
		ext = binary.LittleEndian.Uint32(p[28:])
	}
	return caps, ext
}

// lenenc decodes a length-encoded integer at the start of b and returns it
// and its size (0 if b is too short or does not start with one).
func lenenc(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	var size int
	switch b[0] {
	case 0xfb, 0xff:
		return 0, 0
	case 0xfc:
		size = 3
	case 0xfd:
		size = 4
	case 0xfe:
		size = 9
	default:
		return uint64(b[0]), 1
	}
	if len(b) < size {
		return 0, 0
	}
	var v uint64
	for i := size - 1; i >= 1; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, size
}

// okStatus returns the status flags of an OK packet, whether its header is
// 0x00 or, ending a result set with CLIENT_DEPRECATE_EOF, 0xFE.
func okStatus(p []byte) uint16 {
	_, n := lenenc(p[1:])
	if n == 0 {
		return 0
	}
	_, m := lenenc(p[1+n:])
	if m == 0 || len(p) < 1+n+m+2 {
		return 0
	}
	return binary.LittleEndian.Uint16(p[1+n+m:])
}

// eofStatus returns the status flags of the packet that ends a result set:
// an EOF packet, or with CLIENT_DEPRECATE_EOF an OK packet with header 0xFE.
func eofStatus(p []byte, deprecateEOF bool) uint16 {
	if deprecateEOF {
		return okStatus(p)
	}
	if len(p) < 5 {
		return 0
	}
	return binary.LittleEndian.Uint16(p[3:])
}

// isEnd tells whether p ends the rows of a result set (a text row that
// starts with 0xFE is at least 2^24 bytes long).
func isEnd(p []byte) bool { return len(p) > 0 && p[0] == 0xfe && len(p) < maxFrame }

// isProgress tells whether the ERR packet p is a MariaDB progress report
// (error number 0xFFFF, with MARIADB_CLIENT_PROGRESS), which comes before
// the reply proper.
func isProgress(p []byte) bool { return len(p) >= 3 && p[1] == 0xff && p[2] == 0xff }

// protocolError is a reply the proxy cannot follow.
type protocolError string

func (e protocolError) Error() string { return "faultproxy: " + string(e) }

// replyReader reads the server's reply to one command, handing each packet
// to emit (which forwards or drops it).
type replyReader struct {
	r    *bufio.Reader
	emit func(packet) error
	// infile is called on a LOCAL INFILE request (a 0xFB packet with
	// sequence id seq), before the reply is read on: the OK or ERR comes
	// once the client (or, if the request was swallowed, infile) has sent
	// the file.
	infile        func(seq byte) error
	deprecateEOF  bool
	cacheMetadata bool
}

// next reads the next packet of the reply and emits it.
func (rr *replyReader) next() (packet, error) {
	pk, err := readPacket(rr.r)
	if err != nil {
		return pk, err
	}
	if err := rr.emit(pk); err != nil {
		return pk, err
	}
	if len(pk.payload) == 0 {
		return pk, protocolError("empty packet in a reply")
	}
	return pk, nil
}

func (rr *replyReader) skip(n uint64) error {
	for range n {
		if _, err := rr.next(); err != nil {
			return err
		}
	}
	return nil
}

// rest reads the rest of a reply of the given kind whose first packet,
// already emitted, is first.
func (rr *replyReader) rest(kind replyKind, first packet) error {
	if len(first.payload) == 0 {
		return protocolError("empty packet in a reply")
	}
	switch kind {
	case replyResult:
		return rr.results(first)
	case replyPrepare:
		return rr.prepare(first.payload)
	case replyAuth:
		return rr.auth(first.payload)
	}
	return nil
}

// results reads the rest of a COM_QUERY or COM_STMT_EXECUTE reply whose
// first packet is pk: results until one without SERVER_MORE_RESULTS_EXISTS,
// or an error.
func (rr *replyReader) results(pk packet) error {
	for {
		var status uint16
		switch p := pk.payload; p[0] {
		case 0x00:
			status = okStatus(p)
		case 0xff:
			if !isProgress(p) {
				return nil
			}
			status = statusMoreResults // the reply proper comes after
		case 0xfb:
			if err := rr.infile(pk.seq); err != nil {
				return err
			}
			status = statusMoreResults // the OK or ERR after the file
		default:
			var err error
			if status, err = rr.resultSet(p); err != nil {
				return err
			}
		}
		if status&statusMoreResults == 0 {
			return nil
		}
		var err error
		if pk, err = rr.next(); err != nil {
			return err
		}
	}
}

// resultSet reads a result set after its column-count packet head and
// returns the status flags of its end.
func (rr *replyReader) resultSet(head []byte) (uint16, error) {
	n, k := lenenc(head)
	if k == 0 {
		return 0, protocolError(fmt.Sprintf("bad column count packet % x", head[:min(len(head), 16)]))
	}
	if !rr.cacheMetadata || len(head) <= k || head[k] == 1 {
		if err := rr.skip(n); err != nil {
			return 0, err
		}
	}
	if !rr.deprecateEOF {
		if err := rr.skip(1); err != nil {
			return 0, err
		}
	}
	for {
		pk, err := rr.next()
		switch {
		case err != nil:
			return 0, err
		case pk.payload[0] == 0xff:
			return 0, nil
		case isEnd(pk.payload):
			return eofStatus(pk.payload, rr.deprecateEOF), nil
		}
	}
}

// prepare reads the rest of a COM_STMT_PREPARE reply: the parameter and
// column definitions announced by its first packet.
func (rr *replyReader) prepare(first []byte) error {
	if first[0] != 0x00 || len(first) < 9 {
		return nil // an error
	}
	cols := uint64(binary.LittleEndian.Uint16(first[5:]))
	params := uint64(binary.LittleEndian.Uint16(first[7:]))
	for _, n := range []uint64{params, cols} {
		if n == 0 {
			continue
		}
		if !rr.deprecateEOF {
			n++
		}
		if err := rr.skip(n); err != nil {
			return err
		}
	}
	return nil
}

// auth reads the rest of an authentication exchange (after the handshake
// response, or COM_CHANGE_USER): auth switch requests (0xFE) and more data
// (0x01), answered by the client, until OK or ERR.
func (rr *replyReader) auth(p []byte) error {
	for p[0] != 0x00 && p[0] != 0xff {
		pk, err := rr.next()
		if err != nil {
			return err
		}
		p = pk.payload
	}
	return nil
}
