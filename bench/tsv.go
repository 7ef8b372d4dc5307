package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// tsvReader streams rows as LOAD DATA's default text format (fields
// terminated by tab, lines by newline, escaped by backslash, NULL as \N),
// encoding them as the driver asks for bytes: like the other contenders,
// LOAD DATA pays for turning values into its wire format inside the timing.
type tsvReader struct {
	rows [][]any
	next int
	buf  []byte
	off  int
	err  error
}

// tsvBuffer is how many bytes are encoded ahead of the driver's reads
// (it reads 16 KiB at a time, infile.go defaultPacketSize).
const tsvBuffer = 256 << 10

func newTSVReader(rows [][]any) *tsvReader {
	return &tsvReader{rows: rows, buf: make([]byte, 0, tsvBuffer)}
}

func (r *tsvReader) Read(p []byte) (int, error) {
	if r.off == len(r.buf) {
		if r.err != nil {
			return 0, r.err
		}
		r.buf, r.off = r.buf[:0], 0
		for len(r.buf) < tsvBuffer && r.next < len(r.rows) {
			var err error
			if r.buf, err = appendTSVRow(r.buf, r.rows[r.next]); err != nil {
				r.err = err
				break
			}
			r.next++
		}
		if len(r.buf) == 0 {
			if r.err == nil {
				r.err = io.EOF
			}
			return 0, r.err
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

func appendTSVRow(b []byte, row []any) ([]byte, error) {
	for j, v := range row {
		if j > 0 {
			b = append(b, '\t')
		}
		var err error
		if b, err = appendTSVValue(b, v); err != nil {
			return b, err
		}
	}
	return append(b, '\n'), nil
}

// appendTSVValue writes v as the server parses it back to the same value:
// floats with the shortest exact form (as the driver's interpolation does),
// DATETIME as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC.
func appendTSVValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, `\N`...), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, fmt.Errorf("bench: LOAD DATA cannot carry %v", x)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case time.Time:
		return x.UTC().AppendFormat(b, "2006-01-02 15:04:05.999999"), nil
	case string:
		return appendTSVEscaped(b, x), nil
	case []byte:
		return appendTSVEscaped(b, string(x)), nil // no copy: the compiler sees the conversion is read-only
	}
	return b, fmt.Errorf("bench: LOAD DATA encoder has no case for %T", v)
}

// appendTSVEscaped escapes what LOAD DATA's ESCAPED BY '\\' would read as
// syntax: backslash, tab, newline, and NUL (which it would keep, but a
// literal NUL is easy to lose in logs).
func appendTSVEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\\t\n\x00") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case 0:
			b = append(b, `\0`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// loadDataSQL is the statement that reads a registered reader into table.
func loadDataSQL(reader, table string, columns []string) string {
	return "LOAD DATA LOCAL INFILE 'Reader::" + reader + "' INTO TABLE " + quote(table) +
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" +
		quoteList(columns) + ")"
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ",")
}
