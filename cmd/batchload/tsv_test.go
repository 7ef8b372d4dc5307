package main

import (
	"strings"
	"testing"
)

func TestTSVReader(t *testing.T) {
	runReaderCases(t, tsvWith(`\N`), []readerCase{
		{"plain", "a\tb\n1\t2\n", [][]string{{"a", "b"}, {"1", "2"}}, []int{1, 2}},
		{"no final newline", "a\tb\n1\t2", [][]string{{"a", "b"}, {"1", "2"}}, nil},
		{"escapes", `0\0b\bn\nr\rt\tZ\Zs\\q\'x\y` + "\n",
			[][]string{{"0\x00b\bn\nr\rt\tZ\x1as\\q'xy"}}, nil},
		{`\N is NULL as a whole field only`, "\\N\tN\t\\Nx\t\\\\N\n",
			[][]string{{"<NULL>", "N", "Nx", `\N`}}, nil},
		{"backslash before a real tab or LF (INTO OUTFILE)", "a\\\tb\tc\\\nd\nnext\n",
			[][]string{{"a\tb", "c\nd"}, {"next"}}, []int{1, 3}},
		{"escaped backslash before LF", "a\\\\\nb\n", [][]string{{`a\`}, {"b"}}, []int{1, 2}},
		{"an empty line is one empty field", "a\n\nb\n", [][]string{{"a"}, {""}, {"b"}}, []int{1, 2, 3}},
		{"empty fields", "\t\t\n", [][]string{{"", "", ""}}, nil},
		{"CR stays, as with LOAD DATA", "a\tb\r\n", [][]string{{"a", "b\r"}}, nil},
		{"a backslash at the very end stays", `a\`, [][]string{{`a\`}}, nil},
		{"unicode", "é\t😀\n", [][]string{{"é", "😀"}}, nil},
		{"long record", strings.Repeat("x\\\n", 5000) + "\tz\n", [][]string{{strings.Repeat("x\n", 5000), "z"}}, nil},
	})
}

func TestTSVNullToken(t *testing.T) {
	runReaderCases(t, tsvWith("NULL"), []readerCase{
		{"token", "NULL\t\\N\tNULLx\n", [][]string{{"<NULL>", "N", "NULLx"}}, nil},
	})
	runReaderCases(t, tsvWith(""), []readerCase{
		{"empty token", "\tx\t\n", [][]string{{"<NULL>", "x", "<NULL>"}}, nil},
	})
}

// FuzzTSV checks the reader's invariants on any input; its seeds run as a
// plain test.
func FuzzTSV(f *testing.F) {
	for _, s := range []string{"a\tb\n", "\\\n\\\t\n", "\\", "\n\n", "\\N\t\\\\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		readEvery(t, tsvWith(`\N`), input)
	})
}
