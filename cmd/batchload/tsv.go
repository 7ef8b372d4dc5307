package main

import (
	"bytes"
	"io"
)

// tsvReader reads the default format of LOAD DATA and SELECT ... INTO
// OUTFILE (and of mysqldump --tab): fields terminated by a tab, lines by
// LF, no enclosing quotes, backslash escapes. In a field, \0 \b \n \r \t \Z
// stand for NUL, backspace, LF, CR, tab and Ctrl-Z (0x1A), and a backslash
// before any other byte stands for that byte, so \\ is a backslash and a
// backslash before a real tab or LF (as INTO OUTFILE writes them) makes it
// part of the field. A field that is exactly the null token (\N unless
// --null says otherwise; compared before unescaping) is NULL. An empty line
// is a record of one empty field, as LOAD DATA reads it. A CR before the LF
// stays in the last field, as with LOAD DATA.
type tsvReader struct {
	src     *source
	null    string
	hasNull bool

	escaped bool // the scan for a record's end is just after a backslash
	rec     Record
	text    []byte
	bounds  []int
	kinds   []Kind
}

// newTSVReader reads TSV from r; hasNull says whether null is a token.
func newTSVReader(r io.Reader, null string, hasNull bool) *tsvReader {
	return &tsvReader{src: newSource(r, readBufSize), null: null, hasNull: hasNull}
}

// Next returns the next record (see RecordReader). TSV records are never
// malformed.
func (r *tsvReader) Next() (*Record, error) {
	r.escaped = false
	if !r.src.record(&r.rec, r.scan) {
		return nil, r.src.finalErr()
	}
	r.parse()
	return &r.rec, nil
}

// scan returns the index of the unescaped LF that ends the record in w,
// looking from from on, or -1 (see source.record).
func (r *tsvReader) scan(w []byte, from int) int {
	for i := from; i < len(w); i++ {
		if r.escaped {
			r.escaped = false
			continue
		}
		j := bytes.IndexAny(w[i:], "\\\n")
		if j < 0 {
			return -1
		}
		i += j
		if w[i] == '\n' {
			return i
		}
		r.escaped = true
	}
	return -1
}

// parse splits r.rec.Raw into fields and unescapes them.
func (r *tsvReader) parse() {
	body := r.rec.Raw
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body = body[:n-1]
	}
	r.rec.Fields, r.rec.Names, r.rec.Blank = r.rec.Fields[:0], nil, false
	r.text, r.bounds, r.kinds = r.text[:0], r.bounds[:0], r.kinds[:0]
	start := 0
	for i := 0; i <= len(body); i++ {
		if i+1 < len(body) && body[i] == '\\' {
			i++ // the escaped byte is part of the field, a tab included
			continue
		}
		if i < len(body) && body[i] != '\t' {
			continue
		}
		r.field(body[start:i])
		start = i + 1
	}
	r.rec.Fields = splitText(r.rec.Fields, r.text, r.bounds, r.kinds)
}

// field appends one raw field, unescaped, to r.text.
func (r *tsvReader) field(f []byte) {
	kind := Text
	switch {
	case r.hasNull && string(f) == r.null:
		kind = Null
	case bytes.IndexByte(f, '\\') < 0:
		r.text = append(r.text, f...)
	default:
		r.text = appendUnescaped(r.text, f)
	}
	r.bounds = append(r.bounds, len(r.text))
	r.kinds = append(r.kinds, kind)
}

// appendUnescaped appends f with LOAD DATA's backslash escapes resolved. A
// backslash that ends f (only at the end of an input without a final LF)
// stays a backslash.
func appendUnescaped(dst, f []byte) []byte {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			dst = append(dst, c)
			continue
		}
		i++
		dst = append(dst, unescapeTSV(f[i]))
	}
	return dst
}

// unescapeTSV is the byte that a backslash followed by c stands for.
func unescapeTSV(c byte) byte {
	switch c {
	case '0':
		return 0
	case 'b':
		return '\b'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'Z':
		return 0x1A
	}
	return c
}
