package batch

import (
	"database/sql/driver"
	"math"
	"reflect"
	"time"
)

// This file computes, without I/O, the exact payload length of every packet
// go-sql-driver/mysql (v1.10) writes for the statements this package sends.
// The facts come from the driver's packets.go and are restated next to each
// constant. A payload length P counts the command byte and excludes the 4-byte
// packet header(s), as the server's max_allowed_packet check does.
//
// Values are first normalized (normalize) to the handful of types the driver
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

	// MaxPlaceholders is the most parameters one prepared statement may hold;
	// the server refuses more at PREPARE (error 1390).
	MaxPlaceholders = 65535

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

var (
	valuerType = reflect.TypeFor[driver.Valuer]()
)

// normalize converts v to the value the driver sends unchanged, the way the
// driver's own converter would: a driver.Valuer is called (once), pointers are
// followed, integer kinds widen to int64 or uint64, floats to float64 (a
// float32 0.1 becomes 0.10000000149011612, as in the driver), byte slices
// and json.RawMessage become []byte, and a nil []byte becomes nil (both are
// sent as NULL). It refuses what the driver or the server cannot take.
func normalize(v any, enc *encoding) (any, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case driver.Valuer:
		rv := reflect.ValueOf(x)
		if rv.Kind() == reflect.Pointer && rv.IsNil() && rv.Type().Elem().Implements(valuerType) {
			// As database/sql does: a nil pointer to a value type whose Value
			// method has a value receiver is NULL, not a panic.
			return nil, nil
		}
		dv, err := x.Value()
		if err != nil {
			return nil, err
		}
		if _, ok := dv.(driver.Valuer); ok {
			return nil, ErrUnsupportedType
		}
		return normalizeReflect(dv, enc)
	}
	return normalizeReflect(v, enc)
}

// isNormal reports whether v is already normalized: of a type the driver
// sends as it is. It returns the error normalize would for such a value.
func isNormal(v any, enc *encoding) (bool, error) {
	switch x := v.(type) {
	case nil, int64, uint64, bool, string:
		return true, nil
	case float64:
		return true, checkFloat(x)
	case []byte:
		return x != nil, nil // a nil []byte is sent as NULL: normalized to nil
	case time.Time:
		return true, checkTime(x, enc)
	}
	return false, nil
}

// normalizeReflect handles the driver's own types, named types (type ID
// int64, type Name string, json.RawMessage, ...) and pointers; it never calls
// a driver.Valuer.
func normalizeReflect(v any, enc *encoding) (any, error) {
	if ok, err := isNormal(v, enc); ok || err != nil {
		return v, err
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), enc)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint(), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		return f, checkFloat(f)
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.IsNil() {
				return nil, nil
			}
			return rv.Bytes(), nil
		}
	}
	return nil, ErrUnsupportedType
}

func checkFloat(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ErrNotFinite
	}
	return nil
}

// checkTime refuses what the driver's appendDateTime refuses: a year outside
// 1..9999 once the time is moved to the driver's location. The zero time is
// sent as '0000-00-00' and is accepted.
func checkTime(t time.Time, enc *encoding) error {
	if t.IsZero() {
		return nil
	}
	if enc.locKnown {
		if y := enc.wireTime(t).Year(); y < 1 || y > 9999 {
			return ErrTimeRange
		}
		return nil
	}
	// The driver's location is not known: refuse only what is out of range
	// in every location (UTC offsets stay within a day). A time within a day
	// of the bounds is left to the driver, which refuses it before writing
	// anything if its location takes it out of range.
	if t.Before(minTime) || !t.Before(maxTime) {
		return ErrTimeRange
	}
	return nil
}

// Out of range in every location: a day beyond year 1..9999 in UTC.
var (
	minTime = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC)
)

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
