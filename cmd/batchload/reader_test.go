package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// got is a record as a test sees it, copied out of the reader.
type got struct {
	Fields []string // texts; "<NULL>" for NULL
	Kinds  []Kind
	Names  []string
	Blank  bool
	Line   int
	Offset int64
	Raw    string
	Err    string // the record's error, if any
}

// newReaderFunc makes a reader of one format over r.
type newReaderFunc func(r io.Reader) RecordReader

func csvWith(null string, hasNull bool) newReaderFunc {
	return func(r io.Reader) RecordReader { return newCSVReader(r, null, hasNull) }
}

func tsvWith(null string) newReaderFunc {
	return func(r io.Reader) RecordReader { return newTSVReader(r, null, true) }
}

func ndjson(r io.Reader) RecordReader { return newNDJSONReader(r) }

// readAll reads every record of rr. A final error fails t.
func readAll(t testing.TB, rr RecordReader) []got {
	t.Helper()
	var out []got
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			return out
		}
		var re *RecordError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("final error after %d records: %v", len(out), err)
		}
		g := got{Names: append([]string(nil), rec.Names...), Blank: rec.Blank, Line: rec.Line, Offset: rec.Offset, Raw: string(rec.Raw)}
		if err != nil {
			g.Err = re.Err.Error()
			if re.Line != rec.Line || re.Offset != rec.Offset {
				t.Errorf("error at line %d byte %d, record at line %d byte %d", re.Line, re.Offset, rec.Line, rec.Offset)
			}
		} else {
			for _, f := range rec.Fields {
				g.Fields = append(g.Fields, text(f))
				g.Kinds = append(g.Kinds, f.Kind)
			}
		}
		out = append(out, g)
	}
}

// text is a field's text, or "<NULL>".
func text(f Field) string {
	if f.Kind == Null {
		return "<NULL>"
	}
	return f.Text
}

// readEvery reads input with a 1 MiB buffer, with a 1-byte buffer fed one
// byte per Read (every scan resumes after every byte, the buffer grows from
// 1 byte), and with a 3-byte buffer; the three must agree. It checks that
// the raw bytes of the records are the input, that each offset is the sum
// of the lengths before it and each line one more than the LFs before it.
func readEvery(t *testing.T, mk newReaderFunc, input string) []got {
	t.Helper()
	want := readAll(t, mk(strings.NewReader(input)))
	for _, c := range []struct {
		size int
		r    io.Reader
	}{{1, iotest.OneByteReader(strings.NewReader(input))}, {3, strings.NewReader(input)}} {
		old := readBufSize
		readBufSize = c.size
		other := readAll(t, mk(c.r))
		readBufSize = old
		if !reflect.DeepEqual(other, want) {
			t.Fatalf("buffer of %d bytes: got\n%+v\nwant (1 MiB buffer)\n%+v", c.size, other, want)
		}
	}
	var raw strings.Builder
	line := 1
	for i, g := range want {
		if g.Offset != int64(raw.Len()) || g.Line != line {
			t.Errorf("record %d at line %d byte %d, want line %d byte %d", i, g.Line, g.Offset, line, raw.Len())
		}
		raw.WriteString(g.Raw)
		line += strings.Count(g.Raw, "\n")
	}
	if raw.String() != input {
		t.Errorf("raw bytes do not add up to the input:\n got %q\nwant %q", raw.String(), input)
	}
	return want
}

// fieldsOf returns the fields of each record ("<BLANK>" for a blank one,
// "<ERR>" and the error for a malformed one).
func fieldsOf(gs []got) [][]string {
	var out [][]string
	for _, g := range gs {
		switch {
		case g.Err != "":
			out = append(out, []string{"<ERR>", g.Err})
		case g.Blank:
			out = append(out, []string{"<BLANK>"})
		default:
			out = append(out, g.Fields)
		}
	}
	return out
}

// linesOf returns each record's line.
func linesOf(gs []got) []int {
	var out []int
	for _, g := range gs {
		out = append(out, g.Line)
	}
	return out
}

// readerCase is one input and the records it must give.
type readerCase struct {
	name   string
	input  string
	fields [][]string
	lines  []int
}

// runReaderCases checks each case with readEvery.
func runReaderCases(t *testing.T, mk newReaderFunc, cases []readerCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gs := readEvery(t, mk, c.input)
			if f := fieldsOf(gs); !reflect.DeepEqual(f, c.fields) {
				t.Errorf("fields\n got %q\nwant %q", f, c.fields)
			}
			if c.lines != nil && !reflect.DeepEqual(linesOf(gs), c.lines) {
				t.Errorf("lines %v, want %v", linesOf(gs), c.lines)
			}
		})
	}
}
