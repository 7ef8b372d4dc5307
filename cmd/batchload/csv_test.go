package main

import (
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestCSVReader(t *testing.T) {
	runReaderCases(t, csvWith("", false), []readerCase{
		{"plain", "a,b,c\n1,2,3\n", [][]string{{"a", "b", "c"}, {"1", "2", "3"}}, []int{1, 2}},
		{"no final newline", "a,b\n1,2", [][]string{{"a", "b"}, {"1", "2"}}, []int{1, 2}},
		{"quotes, commas and newlines in quotes",
			"\"a \"\"q\"\"\",\"x,y\",\"line1\nline2\"\nnext,1,2\n",
			[][]string{{`a "q"`, "x,y", "line1\nline2"}, {"next", "1", "2"}}, []int{1, 3}},
		{"BOM and CRLF, CRLF kept inside quotes",
			"\xEF\xBB\xBFid,name\r\n1,\"a\r\nb\"\r\n2,c",
			[][]string{{"id", "name"}, {"1", "a\r\nb"}, {"2", "c"}}, []int{1, 2, 4}},
		{"a BOM only at the start is skipped", "a\n\xEF\xBB\xBFb\n", [][]string{{"a"}, {"\xEF\xBB\xBFb"}}, nil},
		{"blank lines", "a\n\n\r\nb\n", [][]string{{"a"}, {"<BLANK>"}, {"<BLANK>"}, {"b"}}, []int{1, 2, 3, 4}},
		{"empty fields", ",,\n\"\",x,\n\"\"\n", [][]string{{"", "", ""}, {"", "x", ""}, {""}}, nil},
		{"a lone CR is data", "a\rb,c\n", [][]string{{"a\rb", "c"}}, nil},
		{"quoted field before CRLF", "\"a\",\"b\"\r\n", [][]string{{"a", "b"}}, nil},
		{"bare quote, then on", "a\"b,c\nok,1\n", [][]string{{"<ERR>", errBareQuote.Error()}, {"ok", "1"}}, []int{1, 2}},
		{"text after a closing quote, then on", "\"ab\"c,d\nx,y\n", [][]string{{"<ERR>", errAfterQuote.Error()}, {"x", "y"}}, []int{1, 2}},
		{"unterminated quote runs to the end", "x\n\"abc\ndef,g\n", [][]string{{"x"}, {"<ERR>", errUnterminated.Error()}}, []int{1, 2}},
		{"long field", "\"" + strings.Repeat("ab,\n", 3000) + "\",z\n", [][]string{{strings.Repeat("ab,\n", 3000), "z"}}, nil},
		{"unicode", "é,😀,\"日本\"\n", [][]string{{"é", "😀", "日本"}}, nil},
	})
}

func TestCSVNull(t *testing.T) {
	runReaderCases(t, csvWith("", true), []readerCase{
		{"empty unquoted is NULL, quoted is not", "1,,\"\"\n,\n", [][]string{{"1", "<NULL>", ""}, {"<NULL>", "<NULL>"}}, nil},
	})
	runReaderCases(t, csvWith("NULL", true), []readerCase{
		{"token", "NULL,\"NULL\",NULLx,\n", [][]string{{"<NULL>", "NULL", "NULLx", ""}}, nil},
	})
}

func TestCSVTooLong(t *testing.T) {
	oldMax, oldSize := maxRecord, readBufSize
	maxRecord, readBufSize = 64, 16
	defer func() { maxRecord, readBufSize = oldMax, oldSize }()
	r := newCSVReader(strings.NewReader("\""+strings.Repeat("x", 200)), "", false)
	if _, err := r.Next(); !errors.Is(err, errTooLong) {
		t.Fatalf("got %v, want errTooLong", err)
	}
}

// FuzzCSV checks the reader's invariants on any input (raw bytes add up,
// offsets and lines), and that where encoding/csv reads the input without
// error, the fields are the same. Its seeds run as a plain test.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "\"a\"\"b\",\"c\nd\"\n", "\n\nx\n", "a,\"b\"\"\"\n\"\"\n", ",\n,,", "\"x\"y\n", "a\"b\n", "\"", "é,\"ü\n\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		gs := readEvery(t, csvWith("", false), input)
		if strings.ContainsRune(input, '\r') || strings.HasPrefix(input, "\xEF\xBB\xBF") {
			return // encoding/csv turns CRLF in quotes into LF and keeps a BOM
		}
		cr := csv.NewReader(strings.NewReader(input))
		cr.FieldsPerRecord = -1
		want, err := cr.ReadAll()
		if err != nil {
			return
		}
		var have [][]string
		for _, g := range gs {
			if g.Err != "" {
				t.Fatalf("record at line %d: %s; encoding/csv read the input", g.Line, g.Err)
			}
			if !g.Blank {
				have = append(have, g.Fields)
			}
		}
		if len(have) != len(want) || len(want) > 0 && !reflect.DeepEqual(have, want) {
			t.Fatalf("fields\n got %q\nwant %q (encoding/csv)", have, want)
		}
	})
}

// BenchmarkCSVReader reads 100k narrow records (~120 bytes).
func BenchmarkCSVReader(b *testing.B) {
	var sb strings.Builder
	for i := range 100_000 {
		sb.WriteString(`123456,987654,1234.56,42,2024-01-01 00:00:00,"SKU-000123",Some product name here,"a note, with a comma"` + "\n")
		_ = i
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := newCSVReader(strings.NewReader(data), "", false)
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			}
		}
	}
}
