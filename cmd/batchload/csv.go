package main

import (
	"bytes"
	"errors"
	"io"
)

// csvReader reads RFC 4180 CSV: fields separated by commas, records by LF
// or CRLF, a field in double quotes may hold commas, quotes (doubled) and
// line breaks, kept exactly as written. A UTF-8 byte-order mark at the start
// of the input is not part of the first field. An empty line is a Blank
// record. With a null token, an unquoted field equal to it is NULL; a
// quoted field never is, so "" and ,, can tell an empty string from NULL
// (with an empty --null token).
//
// encoding/csv cannot serve here: it gives neither a record's raw bytes nor
// its byte offset.
type csvReader struct {
	src     *source
	null    string
	hasNull bool

	state  csvState // of the record being found
	rec    Record
	text   []byte // the unescaped fields of rec, back to back
	bounds []int  // end of each field in text
	kinds  []Kind // kind of each field
}

// csvState is where the scan for a record's end stands.
type csvState uint8

const (
	csvFieldStart csvState = iota // at the start of a field
	csvUnquoted                   // inside an unquoted field
	csvQuoted                     // inside a quoted field
	csvQuoteSeen                  // just after a quote inside a quoted field
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// newCSVReader reads CSV from r. hasNull says whether null is a token.
func newCSVReader(r io.Reader, null string, hasNull bool) *csvReader {
	return &csvReader{src: newSource(r, readBufSize), null: null, hasNull: hasNull}
}

// Next returns the next record (see RecordReader).
func (r *csvReader) Next() (*Record, error) {
	r.state = csvFieldStart
	if !r.src.record(&r.rec, r.scan) {
		return nil, r.src.finalErr()
	}
	if err := r.parse(); err != nil {
		return &r.rec, &RecordError{Line: r.rec.Line, Offset: r.rec.Offset, Err: err}
	}
	return &r.rec, nil
}

// scan returns the index of the LF that ends the record in w, looking from
// from on, or -1 (see source.record).
func (r *csvReader) scan(w []byte, from int) int {
	for i := from; i < len(w); i++ {
		if r.state == csvQuoted {
			j := bytes.IndexByte(w[i:], '"')
			if j < 0 {
				return -1
			}
			i += j
			r.state = csvQuoteSeen
			continue
		}
		switch c := w[i]; {
		case c == '\n':
			return i
		case c == ',':
			r.state = csvFieldStart
		case c == '"' && (r.state == csvFieldStart || r.state == csvQuoteSeen):
			r.state = csvQuoted
		case c == '\r' && r.state == csvQuoteSeen:
			// CR of a CRLF after a closing quote; parse checks the LF.
		default:
			r.state = csvUnquoted
		}
	}
	return -1
}

// parse splits r.rec.Raw into fields.
func (r *csvReader) parse() error {
	body := trimEOL(r.rec.Raw)
	if r.rec.Offset == 0 {
		body = bytes.TrimPrefix(body, utf8BOM)
	}
	r.rec.Fields, r.rec.Names = r.rec.Fields[:0], nil
	r.text, r.bounds, r.kinds = r.text[:0], r.bounds[:0], r.kinds[:0]
	r.rec.Blank = len(body) == 0
	if r.rec.Blank {
		return nil
	}
	for pos := 0; ; {
		var (
			k   Kind
			err error
		)
		if pos < len(body) && body[pos] == '"' {
			pos, err = r.quoted(body, pos)
		} else {
			pos, k, err = r.unquoted(body, pos)
		}
		if err != nil {
			return err
		}
		r.bounds = append(r.bounds, len(r.text))
		r.kinds = append(r.kinds, k)
		if pos >= len(body) {
			break
		}
		pos++ // the comma
	}
	r.rec.Fields = splitText(r.rec.Fields, r.text, r.bounds, r.kinds)
	return nil
}

// splitText appends to dst one field per bound: text[previous bound:bound]
// with kinds[i], all cut from one string, so a record costs one allocation.
func splitText(dst []Field, text []byte, bounds []int, kinds []Kind) []Field {
	s := string(text)
	start := 0
	for i, end := range bounds {
		dst = append(dst, Field{Text: s[start:end], Kind: kinds[i]})
		start = end
	}
	return dst
}

// quoted appends the quoted field at body[pos] to r.text and returns the
// index just after it: at the comma that follows, or at the end of body.
func (r *csvReader) quoted(body []byte, pos int) (int, error) {
	pos++
	for {
		j := bytes.IndexByte(body[pos:], '"')
		if j < 0 {
			return len(body), errUnterminated
		}
		r.text = append(r.text, body[pos:pos+j]...)
		pos += j + 1
		if pos < len(body) && body[pos] == '"' {
			r.text = append(r.text, '"')
			pos++
			continue
		}
		if pos < len(body) && body[pos] != ',' {
			return pos, errAfterQuote
		}
		return pos, nil
	}
}

// unquoted appends the unquoted field at body[pos] to r.text and returns
// the index of the comma that ends it (or len(body)) and its kind.
func (r *csvReader) unquoted(body []byte, pos int) (int, Kind, error) {
	end := bytes.IndexByte(body[pos:], ',')
	if end < 0 {
		end = len(body)
	} else {
		end += pos
	}
	f := body[pos:end]
	if bytes.IndexByte(f, '"') >= 0 {
		return end, Text, errBareQuote
	}
	if r.hasNull && string(f) == r.null {
		return end, Null, nil
	}
	r.text = append(r.text, f...)
	return end, Text, nil
}

// trimEOL returns raw without its LF or CRLF.
func trimEOL(raw []byte) []byte {
	if n := len(raw); n > 0 && raw[n-1] == '\n' {
		raw = raw[:n-1]
		if n > 1 && raw[n-2] == '\r' {
			raw = raw[:n-2]
		}
	}
	return raw
}

// CSV record errors.
var (
	errUnterminated = errors.New(`quoted field without its closing quote (")`)
	errAfterQuote   = errors.New(`text after a closing quote ("); a quote inside a quoted field is written ""`)
	errBareQuote    = errors.New(`quote (") in an unquoted field; quote the field and double the quote`)
)
