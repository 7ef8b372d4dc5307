package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ndjsonReader reads newline-delimited JSON: one JSON object per line, its
// keys naming columns. A JSON string is a String field, null is Null, true
// and false are Bool, a number keeps its text exactly as written (as
// json.Number does), and an object or array keeps its JSON text as
// written. A line of white space only is a Blank record; CRLF is allowed.
type ndjsonReader struct {
	src    *source
	rec    Record
	text   []byte
	bounds []int
	kinds  []Kind
	names  map[string]string // interned keys
	str    []byte            // scratch for a string with escapes
}

// newNDJSONReader reads NDJSON from r.
func newNDJSONReader(r io.Reader) *ndjsonReader {
	return &ndjsonReader{src: newSource(r, readBufSize), names: map[string]string{}}
}

// Next returns the next record (see RecordReader).
func (r *ndjsonReader) Next() (*Record, error) {
	if !r.src.record(&r.rec, scanLF) {
		return nil, r.src.finalErr()
	}
	if err := r.parse(); err != nil {
		return &r.rec, &RecordError{Line: r.rec.Line, Offset: r.rec.Offset, Err: err}
	}
	return &r.rec, nil
}

// scanLF returns the index of the first LF in w from from on, or -1: JSON
// text holds no raw LF but between values.
func scanLF(w []byte, from int) int {
	if j := bytes.IndexByte(w[from:], '\n'); j >= 0 {
		return from + j
	}
	return -1
}

// JSON record errors.
var (
	errNotJSON   = errors.New("not valid JSON")
	errNotObject = errors.New("not a JSON object")
)

// parse reads the object of r.rec.Raw into fields and names. The line is
// checked with json.Valid first, so the walk below can trust its syntax.
func (r *ndjsonReader) parse() error {
	body := trimSpace(r.rec.Raw)
	r.rec.Fields, r.rec.Names = r.rec.Fields[:0], r.rec.Names[:0]
	r.text, r.bounds, r.kinds = r.text[:0], r.bounds[:0], r.kinds[:0]
	r.rec.Blank = len(body) == 0
	if r.rec.Blank {
		return nil
	}
	if !json.Valid(body) {
		return errNotJSON
	}
	if body[0] != '{' {
		return errNotObject
	}
	for p := skipSpace(body, 1); body[p] != '}'; {
		key, next, err := r.key(body, p)
		if err != nil {
			return err
		}
		p = skipSpace(body, skipSpace(body, next)+1) // past the colon
		p = r.value(body, p)
		r.rec.Names = append(r.rec.Names, key)
		if p = skipSpace(body, p); body[p] == ',' {
			p = skipSpace(body, p+1)
		}
	}
	r.rec.Fields = splitText(r.rec.Fields, r.text, r.bounds, r.kinds)
	return nil
}

// key reads the key string at body[p], interned, and returns it with the
// index after it. A key given twice is an error.
func (r *ndjsonReader) key(body []byte, p int) (string, int, error) {
	raw, end := stringAt(body, p)
	k, err := r.unquote(raw)
	if err != nil {
		return "", 0, err
	}
	name, ok := r.names[string(k)]
	if !ok {
		name = string(k)
		r.names[name] = name
	}
	for _, n := range r.rec.Names {
		if n == name {
			return "", 0, fmt.Errorf("key %q given twice", name)
		}
	}
	return name, end, nil
}

// value appends the value at body[p] as a field and returns the index
// after it.
func (r *ndjsonReader) value(body []byte, p int) int {
	kind, end := String, p
	switch c := body[p]; {
	case c == '"':
		var raw []byte
		raw, end = stringAt(body, p)
		s, _ := r.unquote(raw) // valid JSON: cannot fail
		r.text = append(r.text, s...)
	case c == 'n':
		kind, end = Null, p+4
	case c == 't' || c == 'f':
		kind, end = Bool, p+4
		if c == 'f' {
			end++
		}
		r.text = append(r.text, body[p:end]...)
	case c == '{' || c == '[':
		kind, end = JSON, compositeEnd(body, p)
		r.text = append(r.text, body[p:end]...)
	default:
		kind, end = Number, numberEnd(body, p)
		r.text = append(r.text, body[p:end]...)
	}
	r.bounds = append(r.bounds, len(r.text))
	r.kinds = append(r.kinds, kind)
	return end
}

// unquote returns the contents of the JSON string raw (quotes included),
// unescaped; the result may be a window on raw or on r.str.
func (r *ndjsonReader) unquote(raw []byte) ([]byte, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	r.str = append(r.str[:0], s...)
	return r.str, nil
}

// stringAt returns the JSON string starting at body[p] (quotes included)
// and the index after it.
func stringAt(body []byte, p int) ([]byte, int) {
	for i := p + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return body[p : i+1], i + 1
		}
	}
	return body[p:], len(body) // not reached on valid JSON
}

// compositeEnd returns the index after the object or array at body[p].
func compositeEnd(body []byte, p int) int {
	depth := 0
	for i := p; i < len(body); i++ {
		switch body[i] {
		case '"':
			_, end := stringAt(body, i)
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(body)
}

// numberEnd returns the index after the number at body[p].
func numberEnd(body []byte, p int) int {
	for p < len(body) && bytes.IndexByte([]byte("+-0123456789.eE"), body[p]) >= 0 {
		p++
	}
	return p
}

// skipSpace returns the index of the first byte at or after p that is not
// JSON white space.
func skipSpace(body []byte, p int) int {
	for p < len(body) && (body[p] == ' ' || body[p] == '\t' || body[p] == '\r' || body[p] == '\n') {
		p++
	}
	return p
}

// trimSpace returns b without JSON white space at either end.
func trimSpace(b []byte) []byte {
	b = b[skipSpace(b, 0):]
	for n := len(b); n > 0 && skipSpace(b, n-1) == n; n = len(b) {
		b = b[:n-1]
	}
	return b
}
