package batch

import (
	"time"
)

// This file computes, without I/O, the exact payload length of every packet
// go-sql-driver/mysql (v1.10) writes for the statements this package sends.
// The facts come from the driver's packets.go and are restated next to each
// constant. A payload length P counts the command byte and excludes the 4-byte
// packet header(s), as the server's max_allowed_packet check does.
//
// Values are first normalized (rows.go, normalize) to the handful of types the driver
// sends as they are: nil, int64, uint64, float64, bool, string, []byte and
// time.Time. The same normalized value is then sized here and handed to the
// driver, so the size and the bytes cannot drift apart.

const (
	// COM_STMT_EXECUTE: command (1) + statement id (4) + flags (1) + iteration
	// count (4). With parameters, a NULL bitmap of ceil(N/8) bytes, the
	// new-params-bound flag (1) and two type bytes per parameter follow.
	executeFixed = 1 + 4 + 1 + 4

	// COM_STMT_SEND_LONG_DATA: command (1) + statement id (4) + parameter
	// id (2), then a piece of the value.
	longDataHeader = 1 + 4 + 2

	// The driver sends a string or []byte of at least
	// max(maxAllowedPacket/(N+1), 64) bytes as long data (packets.go,
	// writeExecutePacket).
	minLongData = 64

	// maxPlaceholders is the most parameters one prepared statement may hold;
	// the server refuses more at PREPARE (error 1390).
	maxPlaceholders = 65535

	// maxPacketChunk is the largest payload of one physical packet; longer
	// payloads are split, and the server checks the total.
	maxPacketChunk = 1<<24 - 1
)

// encoding holds the parts of the driver's configuration that change how
// many bytes a value takes.
type encoding struct {
	loc      *time.Location // mysql.Config.Loc; the driver's default is UTC
	truncate time.Duration  // mysql.Config.TimeTruncate
	// locKnown is false when the caller gave no *mysql.Config: the driver's Loc
	// is then assumed to be UTC, and a time that is midnight in UTC is sized as
	// if it were not (19 bytes instead of 10), since it may not be midnight in
	// the driver's real location. Sizes then bound the packet from above.
	locKnown bool
}

func defaultEncoding() encoding { return encoding{loc: time.UTC} }

func (enc *encoding) wireTime(t time.Time) time.Time {
	t = t.In(enc.loc)
	if enc.truncate > 0 {
		t = t.Truncate(enc.truncate)
	}
	return t
}

// timeTextLen is the length of the text the driver sends for t (utils.go,
// appendDateTime): '0000-00-00' for the zero time, 'YYYY-MM-DD' at midnight,
// 'YYYY-MM-DD HH:MM:SS' without fraction, else '.' and the nanosecond digits
// with trailing zeros trimmed.
func (enc *encoding) timeTextLen(t time.Time) int {
	if t.IsZero() {
		return 10
	}
	if enc.truncate > 0 {
		t = t.Truncate(enc.truncate)
	}
	if ns := t.Nanosecond(); ns != 0 {
		return 20 + 9 - trailingDecimalZeros(ns)
	}
	if !enc.locKnown {
		return 19
	}
	// Seconds since midnight in the driver's location, without the cost of
	// a full calendar conversion.
	sec := t.Unix()
	if enc.loc != time.UTC {
		_, off := t.In(enc.loc).Zone()
		sec += int64(off)
	}
	if sec%86400 == 0 {
		return 10
	}
	return 19
}

func trailingDecimalZeros(n int) int {
	z := 0
	for n%10 == 0 {
		n /= 10
		z++
	}
	return z
}

// lenencLen is the size of a length-encoded integer.
func lenencLen(n int) int {
	switch {
	case n < 251:
		return 1
	case n < 1<<16:
		return 3
	case n < 1<<24:
		return 4
	}
	return 9
}

// longDataThreshold is the length from which the driver sends a string or
// []byte as COM_STMT_SEND_LONG_DATA instead of inside COM_STMT_EXECUTE, for a
// statement of n parameters and a driver maxAllowedPacket of clientMax.
func longDataThreshold(clientMax, n int) int {
	return max(clientMax/(n+1), minLongData)
}

// inlineSize is the number of bytes a normalized value adds to the values
// part of COM_STMT_EXECUTE, and long its length when it goes as long data
// instead (0 otherwise). NULL costs nothing there (its bit is in the bitmap).
func (enc *encoding) inlineSize(v any, ld int) (inline, long int) {
	switch x := v.(type) {
	case nil:
		return 0, 0
	case int64, uint64, float64:
		return 8, 0
	case bool:
		return 1, 0
	case string:
		if len(x) >= ld {
			return 0, len(x)
		}
		return lenencLen(len(x)) + len(x), 0
	case []byte:
		if len(x) >= ld {
			return 0, len(x)
		}
		return lenencLen(len(x)) + len(x), 0
	case time.Time:
		return 1 + enc.timeTextLen(x), 0
	}
	panic("batch: internal error: value was not normalized")
}

// executeOverhead is the size of COM_STMT_EXECUTE for n parameters before the
// values themselves.
func executeOverhead(n int) int {
	if n == 0 {
		return executeFixed
	}
	return executeFixed + (n+7)/8 + 1 + 2*n
}

// longDataPackets returns the number of COM_STMT_SEND_LONG_DATA packets and
// their total payload for a value of n bytes: the driver cuts it into pieces
// of at most clientMax-1-7 bytes (packets.go, writeCommandLongData).
func longDataPackets(n, clientMax int) (packets, payload, largest int) {
	piece := clientMax - 1 - longDataHeader
	packets = (n + piece - 1) / piece
	largest = min(n, piece) + longDataHeader
	return packets, n + packets*longDataHeader, largest
}

// stmtSize is what one statement of the chunk costs on the wire.
type stmtSize struct {
	Execute      int // payload of COM_STMT_EXECUTE
	LongData     int // total payload of the COM_STMT_SEND_LONG_DATA packets
	LongPackets  int // their number
	LargestLong  int // the largest of them
	LongValueMax int // the longest value sent as long data
}

// Total is the payload bytes the statement sends, all packets included.
func (s stmtSize) Total() int { return s.Execute + s.LongData }

// chunkSize sizes the COM_STMT_EXECUTE (and long data) of one statement
// carrying rows [first, end) of vals.
func (enc *encoding) chunkSize(vals valueRows, first, end, clientMax int) stmtSize {
	n := (end - first) * vals.cols
	ld := longDataThreshold(clientMax, n)
	s := stmtSize{Execute: executeOverhead(n)}
	for i := first; i < end; i++ {
		for _, v := range vals.row(i) {
			in, long := enc.inlineSize(v, ld)
			s.Execute += in
			if long > 0 {
				p, pay, big := longDataPackets(long, clientMax)
				s.LongPackets += p
				s.LongData += pay
				s.LargestLong = max(s.LargestLong, big)
				s.LongValueMax = max(s.LongValueMax, long)
			}
		}
	}
	return s
}

// prepareSize is the payload of COM_STMT_PREPARE for a query: 1 + its length.
func prepareSize(queryLen int) int { return 1 + queryLen }
