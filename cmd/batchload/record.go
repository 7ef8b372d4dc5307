package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Kind says how a field was written in the input, which decides how it is
// converted for its column (see convert.go).
type Kind uint8

const (
	// Text is a CSV or TSV field, its text unescaped.
	Text Kind = iota
	// String is a JSON string, its text unescaped.
	String
	// Null is SQL NULL: the --null token, TSV's \N, a JSON null, or an
	// NDJSON key that a record leaves out.
	Null
	// Number is a JSON number, its text exactly as written.
	Number
	// Bool is a JSON true or false; Text is "true" or "false".
	Bool
	// JSON is a JSON object or array, its text exactly as written.
	JSON
)

// Field is one value of a record.
type Field struct {
	Text string
	Kind Kind
}

// Record is one record of the input.
//
// A Record returned by a RecordReader, and everything it points to except
// the strings, is only valid until the next call of Next: Raw is a window
// on the reader's buffer and Fields and Names are reused. The strings stay
// valid (they may be kept, and sent, without a copy).
type Record struct {
	// Fields are the values, in input order.
	Fields []Field
	// Names is, for NDJSON, the key of each field (len(Names) ==
	// len(Fields)); nil for CSV and TSV, whose fields are positional.
	Names []string
	// Blank is set for an empty line that carries no record (CSV: an empty
	// line; NDJSON: a line of white space). It has Raw, Line and Offset
	// like any record, so that the raw bytes of all records, blank ones
	// included, are the input.
	Blank bool
	// Line is the 1-based line number on which the record starts.
	Line int
	// Offset is the byte offset of the record's first byte (of Raw[0]) in
	// the input, after decompression.
	Offset int64
	// Raw is the record exactly as read, terminator (LF or CRLF) included;
	// the first record of a CSV file includes its byte-order mark.
	// Concatenating the Raw of every record gives back the input.
	Raw []byte
}

// RecordReader reads the records of one input, in order.
type RecordReader interface {
	// Next returns the next record, or io.EOF after the last one. A
	// malformed record comes back as a *RecordError together with the
	// record (its Raw, Line and Offset set, its Fields unreliable): reading
	// may go on after it. Any other error is final.
	Next() (*Record, error)
}

// RecordError is a record the reader could not parse. Reading goes on
// after it with the next record.
type RecordError struct {
	Line   int   // 1-based line on which the record starts
	Offset int64 // byte offset of the record in the input
	Err    error
}

// Error gives the line, the byte offset and the cause.
func (e *RecordError) Error() string {
	return fmt.Sprintf("line %d (byte %d): %v", e.Line, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// readBufSize is the initial size of a reader's buffer; it grows for a
// longer record. A variable for the tests, which make it tiny.
var readBufSize = 1 << 20

// maxRecord bounds one record: a runaway quoted CSV field would otherwise
// take the whole input into memory. It is the largest packet a MySQL server
// accepts (max_allowed_packet's ceiling).
var maxRecord = 1 << 30

// errTooLong is returned, final, for a record over maxRecord bytes.
var errTooLong = errors.New("record longer than 1 GiB (an unterminated quote?)")

// source is a buffered input that hands out records as windows on its
// buffer: window returns the bytes from the start of the current record
// on, and take consumes a record. Line and offset bookkeeping live here.
type source struct {
	r     io.Reader
	buf   []byte
	start int   // first byte of the current record in buf
	end   int   // end of the data read into buf
	off   int64 // input offset of buf[start]
	line  int   // line on which the current record starts
	eof   bool  // r has returned io.EOF
	err   error // a read error other than io.EOF, final
}

// newSource reads from r with a buffer of size bytes.
func newSource(r io.Reader, size int) *source {
	return &source{r: r, buf: make([]byte, size), line: 1}
}

// window is the data read but not taken yet.
func (s *source) window() []byte { return s.buf[s.start:s.end] }

// more reads more data after what window returns, moving or growing the
// buffer as needed. It returns false at the end of the input or on a read
// error (in s.err).
func (s *source) more() bool {
	if s.eof || s.err != nil {
		return false
	}
	if s.start > 0 && (s.end == len(s.buf) || s.start >= len(s.buf)/2) {
		n := copy(s.buf, s.buf[s.start:s.end])
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= maxRecord {
			s.err = errTooLong
			return false
		}
		nb := make([]byte, min(2*len(s.buf), maxRecord))
		s.end = copy(nb, s.buf[s.start:s.end])
		s.buf, s.start = nb, 0
	}
	for {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		switch {
		case err == io.EOF:
			s.eof = true
			return n > 0
		case err != nil:
			s.err = err
			return n > 0
		case n > 0:
			return true
		}
	}
}

// take consumes the first n bytes of the window as rec's Raw, and sets
// rec's Line and Offset.
func (s *source) take(rec *Record, n int) {
	rec.Raw = s.buf[s.start : s.start+n]
	rec.Line = s.line
	rec.Offset = s.off
	s.start += n
	s.off += int64(n)
	s.line += bytes.Count(rec.Raw, []byte{'\n'})
}

// record consumes the next record as rec's Raw. scan finds where it ends:
// given the window and the index from which to go on, it returns the index
// of the record's last byte (its LF), or -1 when the window ends first.
// scan keeps whatever state it needs (inside quotes, after a backslash)
// between calls; it sees every byte once, though the window may have moved
// between calls, so it must keep no index of its own. A record ends at the
// end of the input too. record returns false when no byte is left.
func (s *source) record(rec *Record, scan func(w []byte, from int) int) bool {
	from := 0
	for {
		w := s.window()
		if from < len(w) {
			if end := scan(w, from); end >= 0 {
				s.take(rec, end+1)
				return true
			}
			from = len(w)
		}
		if !s.more() {
			if from == 0 || s.err != nil {
				return false // the end, or a final error
			}
			s.take(rec, from)
			return true
		}
	}
}

// finalErr is the error to return when the input has no more records.
func (s *source) finalErr() error {
	if s.err != nil {
		return s.err
	}
	return io.EOF
}
