package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadCase is a load of a small input into a fresh smallTable.
type loadCase struct {
	name    string
	file    string   // the input's file name, whose extension gives its format
	input   string   // the input
	args    []string // flags
	code    int      // the exit status
	errText string   // in stderr
	written int64
	table   string // dump of the table after
}

// runLoadCases writes each case's input to a file and loads it into table
// prefix_N (N the case's index), made by smallTable with the rows before.
func runLoadCases(t *testing.T, dsn, prefix string, before []string, cases []loadCase) {
	t.Helper()
	db := openDB(t, dsn)
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := fmt.Sprintf("%s_%d", prefix, i)
			smallTable(t, db, table, before...)
			path := writeFile(t, dir, c.file, []byte(c.input))
			code, s, errOut := load(t, context.Background(), dsn, nil, append(c.args, path, table)...)
			if code != c.code || !strings.Contains(errOut, c.errText) || s.Written != c.written {
				t.Errorf("exit %d, %d written, stderr %q; want exit %d, %d written, stderr with %q", code, s.Written, errOut, c.code, c.written, c.errText)
			}
			if got := dump(t, db, table); got != c.table {
				t.Errorf("table\n%s\nwant\n%s", got, c.table)
			}
		})
	}
}

// TestLoadErrors: what stops a load, and what it leaves.
func TestLoadErrors(t *testing.T) {
	dsn := serverDSN(t)
	runLoadCases(t, dsn, "errs", nil, []loadCase{
		{name: "unknown header column: nothing sent", file: "a.csv", input: "id,nope,S\n1,2,x\n",
			code: exitFailure, errText: `names columns that table errs_0 does not have: "nope"`},
		{name: "header names a column twice", file: "a.csv", input: "id,n,ID\n1,2,3\n",
			code: exitFailure, errText: "names a column twice: id"},
		{name: "unknown --columns", file: "a.csv", input: "1,2\n", args: []string{"--columns", "id,x"},
			code: exitFailure, errText: `--columns names columns that table errs_2 does not have: "x"`},
		{name: "a value the server would coerce is refused, and stops the load at budget 0", file: "a.csv", input: "id,n\n1,12abc\n2,3\n",
			code: exitBudget, errText: `a.csv: line 2 (byte 5): column n: "12abc" is not an integer: stopped: more than 0 rejects`},
		{name: "a value the server refuses stops the load at budget 0", file: "a.csv", input: "id,n\n1,1\n2,99999999999\n",
			code: exitBudget, errText: "a.csv: line 3 (byte 9): batch: rows [0, 2): row 1: Error 1264 (22003): Out of range value for column 'n'"},
		{name: "a malformed record stops the load after the rows before it", file: "a.csv",
			input: "id,n\n1,1\n2,2\n3,3\"\n4,4\n", code: exitBudget, errText: "a.csv: line 4 (byte 13): quote", written: 2,
			table: "1,1,-\n2,2,-\n"},
		{name: "a record with too few fields", file: "a.csv", input: "id,n\n1,1\n2\n",
			code: exitBudget, errText: "line 3 (byte 9): 1 fields, want 2", written: 1, table: "1,1,-\n"},
		{name: "an NDJSON key that is not a loaded column", file: "a.ndjson", input: "{\"id\":1}\n{\"id\":2,\"zz\":1}\n",
			code: exitBudget, errText: `line 2 (byte 9): key "zz" is not one of the loaded columns`, written: 1, table: "1,-,-\n"},
		{name: "an NDJSON key given twice in other case", file: "a.ndjson", input: "{\"id\":1,\"ID\":2}\n",
			code: exitFailure, errText: "names a column twice: id"},
		{name: "an empty CSV file has no header", file: "a.csv", input: "", code: exitFailure, errText: "is empty: no header record"},
		{name: "a header only is no rows", file: "a.csv", input: "id,n\r\n", code: exitOK},
		{name: "an empty NDJSON file is no rows", file: "a.ndjson", input: "\n", code: exitOK},
		{name: "a .gz name on plain data", file: "plain.csv.gz", input: "id\n1\n", code: exitFailure, errText: "not gzip-compressed"},
	})
}

// TestLoadTable: the table, its database and its generated columns.
func TestLoadTable(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	mustExec(t, db, "DROP TABLE IF EXISTS gen", "CREATE TABLE gen (id INT PRIMARY KEY, twice INT AS (id * 2) VIRTUAL)")
	path := writeFile(t, t.TempDir(), "a.csv", []byte("id\n1\n2\n"))
	for _, c := range []struct {
		dsn, table string
		args       []string
		code       int
		errText    string
	}{
		{dsn, "nosuch", nil, exitFailure, "table nosuch not found"},
		{strings.Replace(dsn, "/test", "/", 1), "gen", nil, exitFailure, "the DSN names no database"},
		{strings.Replace(dsn, "/test", "/", 1), "test.gen", nil, exitOK, ""},
		{dsn, "gen", []string{"--columns", "id,twice"}, exitFailure, "names generated columns, which cannot be loaded: twice"},
		{dsn, "gen", []string{"--header=false"}, exitBudget, `line 1 (byte 0): column id: "id" is not an integer`}, // the header is data now
	} {
		mustExec(t, db, "TRUNCATE gen")
		code, _, errOut := load(t, context.Background(), c.dsn, nil, append(c.args, path, c.table)...)
		if code != c.code || !strings.Contains(errOut, c.errText) {
			t.Errorf("%s %q: exit %d, stderr %q; want %d with %q", c.table, c.args, code, errOut, c.code, c.errText)
		}
	}
}

// TestModes: insert, ignore, replace, upsert and the dry run, against rows
// already in the table.
func TestModes(t *testing.T) {
	dsn := serverDSN(t)
	before := []string{"(1,10,'a')", "(2,20,'b')"}
	input := "id,n,s\n2,21,B\n3,30,c\n"
	runLoadCases(t, dsn, "modes", before, []loadCase{
		{name: "insert stops on a duplicate", file: "a.csv", input: input, code: exitBudget,
			errText: "a.csv: one of the records on lines 2 to 3: batch: rows [0, 2): Error 1062 (23000): Duplicate entry '2' for key 'PRIMARY' (--max-rejects N lets",
			table:   "1,10,a\n2,20,b\n"},
		{name: "ignore", file: "a.csv", input: input, args: []string{"--mode", "ignore"}, code: exitOK, written: 2,
			table: "1,10,a\n2,20,b\n3,30,c\n"},
		{name: "replace", file: "a.csv", input: input, args: []string{"--mode", "replace"}, code: exitOK, written: 2,
			table: "1,10,a\n2,21,B\n3,30,c\n"},
		{name: "upsert", file: "a.csv", input: input, args: []string{"--mode", "upsert"}, code: exitOK, written: 2,
			table: "1,10,a\n2,21,B\n3,30,c\n"},
		{name: "upsert needs the key", file: "a.csv", input: "n,s\n5,x\n", args: []string{"--mode", "upsert"},
			code: exitFailure, errText: "lacks primary key column(s) id", table: "1,10,a\n2,20,b\n"},
		{name: "dry run keeps nothing", file: "a.csv", input: "id,n,s\n3,30,c\n4,40,d\n", args: []string{"--dry-run"},
			code: exitOK, written: 2, table: "1,10,a\n2,20,b\n"},
		{name: "dry run still fails on a duplicate", file: "a.csv", input: input, args: []string{"--dry-run"},
			code: exitBudget, errText: "Error 1062", table: "1,10,a\n2,20,b\n"},
		{name: "NULL token and empty strings", file: "a.csv", input: "id,n,s\n5,,\n6,,\"\"\n", args: []string{"--null", ""},
			code: exitOK, written: 2, table: "1,10,a\n2,20,b\n5,-,-\n6,-,\n"},
		{name: "tsv NULL and escapes", file: "a.tsv", input: "id\tn\ts\n7\t\\N\ta\\tb\\\\\n", code: exitOK, written: 1,
			table: "1,10,a\n2,20,b\n7,-,a\tb\\\n"},
		{name: "ndjson absent keys are NULL", file: "a.jsonl", input: "{\"s\":\"x\",\"id\":8}\n{\"id\":9,\"n\":true}\n",
			args: []string{"--columns", "id,n,s"}, code: exitOK, written: 2, table: "1,10,a\n2,20,b\n8,-,x\n9,1,-\n"},
	})
}

// genReader is an input of n CSV rows "i,i,si" made on the fly, that calls
// hook (if any) before row at.
type genReader struct {
	n, i, at int
	hook     func()
	buf      []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	if len(g.buf) == 0 {
		if g.i == g.n {
			return 0, io.EOF
		}
		if g.i == g.at && g.hook != nil {
			g.hook()
		}
		g.buf = fmt.Appendf(g.buf, "%d,%d,s%d\n", g.i, g.i, g.i)
		g.i++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// TestInterrupt cancels a load half way, as SIGINT does: it stops, exits 1
// and its summary is exact.
func TestInterrupt(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	smallTable(t, db, "interrupted")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gen := &genReader{n: 300_000, at: 150_000, hook: cancel}
	code, s, errOut := load(t, ctx, dsn, gen, "--format", "csv", "--columns", "id,n,s", "-", "interrupted")
	n := countRows(t, db, "interrupted")
	t.Logf("summary %+v; table %d rows", s, n)
	if code != exitFailure || !strings.Contains(s.Error, "interrupted") || !strings.Contains(errOut, "interrupted") {
		t.Errorf("exit %d, error %q, stderr %q; want exit 1, interrupted", code, s.Error, errOut)
	}
	if s.Rows == 0 || s.Rows >= 300_000 || s.NotSent == 0 {
		t.Errorf("%d rows given, %d not sent: the load did not stop half way", s.Rows, s.NotSent)
	}
	if n < s.Written || n > s.Written+s.Unknown {
		t.Errorf("table has %d rows; the summary says %d written, %d unknown", n, s.Written, s.Unknown)
	}
}

// TestProgressJSON: --progress json writes JSON lines to stderr, rows
// written growing.
func TestProgressJSON(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	smallTable(t, db, "progress")
	old := progressEvery
	progressEvery = 10 * time.Millisecond
	defer func() { progressEvery = old }()
	var errOut bytes.Buffer
	code := run(context.Background(), []string{"--progress", "json", "--format", "csv", "--header=false", "-", "progress"},
		stdio{in: &genReader{n: 200_000}, out: io.Discard, err: &errOut}, env(dsn))
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if code != exitOK || len(lines) < 3 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	last := int64(-1)
	for _, l := range lines[:len(lines)-1] { // the last line is the summary
		var s snapshot
		if err := json.Unmarshal([]byte(l), &s); err != nil || s.RowsWritten < last || s.RowsRead < s.RowsWritten {
			t.Fatalf("progress line %q (%v) after %d rows written", l, err, last)
		}
		last = s.RowsWritten
	}
	if !strings.HasPrefix(lines[len(lines)-1], "batchload: progress: 200000 rows, 200000 written") {
		t.Errorf("summary line %q", lines[len(lines)-1])
	}
}

// TestProgressBar: --progress bar draws a bar that ends full.
func TestProgressBar(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	smallTable(t, db, "bar")
	path := filepath.Join(t.TempDir(), "bar.csv")
	var b bytes.Buffer
	io.Copy(&b, &genReader{n: 50_000})
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runMain(context.Background(), nil, env(dsn), "--progress", "bar", "--header=false", path, "bar")
	if code != exitOK || !strings.Contains(errOut, "100 %") || !strings.Contains(errOut, "50000 rows") ||
		!strings.Contains(errOut, " rows/s") || !strings.Contains(errOut, "ETA") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestProgressAuto: --progress auto draws nothing where stderr is not a
// terminal (a file, a pipe, a buffer).
func TestProgressAuto(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{f, &bytes.Buffer{}} {
		if _, ok := newReporter("auto", w).(noReporter); !ok {
			t.Errorf("--progress auto on %T: %T, want no reporter", w, newReporter("auto", w))
		}
	}
	if _, ok := newReporter("bar", f).(*barReporter); !ok {
		t.Errorf("--progress bar: no bar")
	}
}
