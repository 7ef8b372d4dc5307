package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
)

// rejTable is the table of the reject tests: k is NOT NULL, s holds 8
// characters, d is a DATE.
const rejTable = "(id INT PRIMARY KEY, n INT NULL, s VARCHAR(8) CHARACTER SET utf8mb4 NULL, d DATE NULL, k INT NOT NULL)"

// rec is one record of a reject test's input: its bytes as written, and
// either the row it leaves in the table (dumpRej's form) or, for a record
// to be rejected, the server's error code (0 for one refused by batchload)
// and a part of the message.
type rec struct {
	raw   string
	row   string // "" for a record rejected (or a blank line: blank)
	code  int
	msg   string
	blank bool // not a data record
}

// rejInputs are the inputs of TestRejects, one per format: every quoting
// and escape rule inside the records rejected, so that the rejects file
// must hold them byte for byte.
var rejInputs = []struct {
	format string
	header string
	recs   []rec
	args   []string
}{
	{"csv", "\xEF\xBB\xBFid,n,s,d,k\r\n", []rec{
		{raw: "1,10,\"a,b\",2024-01-01,1\r\n", row: "1,10,a,b,2024-01-01,1"},
		{raw: "2,20,\"long \"\"quoted\"\"\r\ntext\",2024-01-01,1\r\n", code: 1406, msg: "Data too long for column 's'"},
		{raw: "3,30,\"x\r\ny\",2024-01-01,1\r\n", row: "3,30,x\r\ny,2024-01-01,1"},
		{raw: "4,4.5,z,2024-01-01,1\r\n", msg: `column n: "4.5" is not a whole number`},
		{raw: "5,5\"0,z,2024-01-01,1\r\n", msg: `quote (") in an unquoted field`},
		{raw: "6,60,z,2024-02-30,1\r\n", code: 1292, msg: "Incorrect date value: '2024-02-30'"},
		{raw: "7,70,z,2024-01-01,\r\n", code: 1048, msg: "Column 'k' cannot be null"},
		{raw: "\r\n", blank: true},
		{raw: "1,80,\"d,\"\"i\"\"\",2024-01-01,1\r\n", code: 1062, msg: "Duplicate entry '1'"},
		{raw: "8,,\"\",,2\r\n", row: "8,-,,-,2"},
		{raw: "9,90\r\n", msg: "2 fields, want 5"},
		{raw: "10,100,é😀日本,2024-12-31,3\r\n", row: "10,100,é😀日本,2024-12-31,3"},
		{raw: "11,1,\"abcdefgh  \",2024-01-01,1\r\n", msg: "trailing spaces"},
		{raw: "12,120,last,2024-01-01,4", row: "12,120,last,2024-01-01,4"}, // no final CRLF
	}, []string{"--null", ""}},
	{"tsv", "id\tn\ts\td\tk\n", []rec{
		{raw: "1\t10\ta\\tb\t2024-01-01\t1\n", row: "1,10,a\tb,2024-01-01,1"},
		{raw: "2\t20\tlong\\\nline \\\\ \\N\t2024-01-01\t1\n", code: 1406, msg: "Data too long for column 's'"},
		{raw: "3\t\\N\tx\\\\y\\0\t\\N\t1\n", row: "3,-,x\\y\x00,-,1"},
		{raw: "4\tabc\tz\t2024-01-01\t1\n", msg: `column n: "abc" is not an integer`},
		{raw: "5\t1\tz\\\tq\t2024-01-01\t\\N\n", code: 1048, msg: "Column 'k' cannot be null"},
		{raw: "\n", msg: "1 fields, want 5"}, // LOAD DATA reads an empty line as a record
		{raw: "1\t2\tdup\\r\\n\t2024-01-01\t1\n", code: 1062, msg: "Duplicate entry '1'"},
		{raw: "6\t1\n", msg: "2 fields, want 5"},
		{raw: "7\t7\t日本\\Z\t2024-01-01\t1\n", row: "7,7,日本\x1a,2024-01-01,1"},
	}, nil},
	{"ndjson", "", []rec{
		{raw: `{"id":1,"n":10,"s":"a\"b","d":"2024-01-01","k":1}` + "\n", row: `1,10,a"b,2024-01-01,1`},
		{raw: `{"id":2,"n":null,"s":"ünïcødé!!","d":null,"k":1}` + "\n", code: 1406, msg: "Data too long for column 's'"},
		{raw: `{"id":3,"s":"日本😀","k":2}` + "\r\n", row: "3,-,日本😀,-,2"},
		{raw: `{"id":4,"n":1.5,"k":1}` + "\n", msg: `column n: "1.5" is not a whole number`},
		{raw: `{"id":5,"k":null}` + "\n", code: 1048, msg: "Column 'k' cannot be null"},
		{raw: "  \n", blank: true},
		{raw: `{"id":6,"zz":1,"k":1}` + "\n", msg: `key "zz" is not one of the loaded columns`},
		{raw: "not json, \"é\"\n", msg: "not valid JSON"},
		{raw: `{"id":7,"n":true,"s":"\u00e9\n","k":3}` + "\n", row: "7,1,é\n,-,3"},
		{raw: `{"id":1,"k":9}`, code: 1062, msg: "Duplicate entry '1'"},
	}, nil},
}

// dumpRej returns a reject test table's rows, NULL as -.
func dumpRej(t *testing.T, dsn, table string) []string {
	t.Helper()
	rows, err := openDB(t, dsn).Query("SELECT CONCAT_WS(',', id, COALESCE(n, '-'), COALESCE(s, '-'), COALESCE(d, '-'), k) FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// wantRej is what a reject test expects of an input: the whole input, the
// rejects file, the log lines and the table.
type wantRej struct {
	input, rejects []byte
	log            []rejectLine
	rows           []string
	data           int // data records
}

// expectRejects computes what loading recs must give.
func expectRejects(header string, recs []rec, file string) wantRej {
	w := wantRej{input: []byte(header), rejects: nil}
	line, offset, row := 1+strings.Count(header, "\n"), int64(len(header)), 0
	for _, r := range recs {
		w.input = append(w.input, r.raw...)
		if !r.blank {
			switch {
			case r.row != "":
				w.rows = append(w.rows, r.row)
			default:
				if w.rejects == nil {
					w.rejects = []byte(header)
				}
				w.rejects = append(w.rejects, r.raw...)
				l := rejectLine{File: file, Line: line, Offset: offset, Row: row, Message: r.msg, Source: "batchload"}
				if r.code != 0 {
					code := uint16(r.code)
					l.Code, l.Source = &code, "server"
				}
				w.log = append(w.log, l)
			}
			row++
		}
		line += strings.Count(r.raw, "\n")
		offset += int64(len(r.raw))
	}
	w.data = row
	return w
}

// checkRejects compares the files of --rejects path with w.
func checkRejects(t *testing.T, path string, w wantRej) {
	t.Helper()
	got := readBack(t, path)
	if strings.HasSuffix(path, ".gz") || strings.HasSuffix(path, ".zst") {
		in, err := openInput(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(in.r)
		in.close()
		if err != nil {
			t.Fatal(err)
		}
		got = b.Bytes()
	}
	if !bytes.Equal(got, w.rejects) {
		t.Errorf("rejects file\n got %q\nwant %q", got, w.rejects)
	}
	lines := strings.Split(strings.TrimSuffix(string(readBack(t, path+".log")), "\n"), "\n")
	if len(lines) != len(w.log) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(w.log), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		var g rejectLine
		if err := json.Unmarshal([]byte(l), &g); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		want := w.log[i]
		ok := g.File == want.File && g.Line == want.Line && g.Offset == want.Offset && g.Row == want.Row &&
			g.Source == want.Source && strings.Contains(g.Message, want.Message) &&
			reflect.DeepEqual(g.Code, want.Code) && (g.Code == nil) == (g.SQLState == nil) && (g.SQLState == nil || len(*g.SQLState) == 5)
		if !ok {
			t.Errorf("log line %d: %s\nwant file %q line %d offset %d row %d source %s code %v, message with %q",
				i, l, want.File, want.Line, want.Offset, want.Row, want.Source, deref(want.Code), want.Message)
		}
	}
}

func deref(p *uint16) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestRejects loads inputs holding bad records of every kind, in each
// format, plain, compressed and on stdin, with 1 and 3 workers and with a
// window of 2 records (flushed and settled all along the load) or the
// default one: the table holds exactly the good records, the rejects file
// exactly the others, byte for byte, after the header, and the log one
// line for each, in input order.
func TestRejects(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	n := 0
	for _, in := range rejInputs {
		for _, v := range []struct {
			name, ext, rejExt string
			stdin             bool
			workers, window   int
		}{
			{"plain", "", "", false, 1, 0},
			{"gz, window 2", ".gz", "", false, 3, 2},
			{"zst, rejects zst", ".zst", ".zst", false, 1, 2},
			{"stdin, rejects gz", "", ".gz", true, 3, 0},
		} {
			t.Run(in.format+" "+v.name, func(t *testing.T) {
				n++
				table := fmt.Sprintf("rej_%d", n)
				mustExec(t, db, "DROP TABLE IF EXISTS "+table, "CREATE TABLE "+table+" "+rejTable)
				if v.window > 0 {
					old := windowRows
					windowRows = v.window
					defer func() { windowRows = old }()
				}
				file := filepath.Join(dir, fmt.Sprintf("in%d.%s%s", n, in.format, v.ext))
				w := expectRejects(in.header, in.recs, file)
				writeFile(t, dir, filepath.Base(file), w.input)
				var stdin *bytes.Reader
				args := append([]string{"--max-rejects", "-1", "--workers", fmt.Sprint(v.workers)}, in.args...)
				if v.stdin {
					stdin, file = bytes.NewReader(readBack(t, file)), "-"
					w = expectRejects(in.header, in.recs, "-")
					args = append(args, "--format", in.format)
				}
				rejects := filepath.Join(dir, fmt.Sprintf("rejects%d.%s%s", n, in.format, v.rejExt))
				args = append(args, "--rejects", rejects, file, table)
				var code int
				var s summary
				var errOut string
				if stdin != nil {
					code, s, errOut = load(t, context.Background(), dsn, stdin, args...)
				} else {
					code, s, errOut = load(t, context.Background(), dsn, nil, args...)
				}
				if code != exitRejects || s.Rows != int64(w.data) || s.Written != int64(len(w.rows)) ||
					s.Rejected != int64(len(w.log)) || s.NotSent != 0 || s.Unknown != 0 || s.Rejects != rejects {
					t.Errorf("exit %d, summary %+v; want exit 3, %d rows, %d written, %d rejected; stderr:\n%s",
						code, s, w.data, len(w.rows), len(w.log), errOut)
				}
				if got := dumpRej(t, dsn, table); !reflect.DeepEqual(got, w.rows) {
					t.Errorf("table\n got %q\nwant %q", got, w.rows)
				}
				checkRejects(t, rejects, w)
				if first := w.log[0]; !strings.Contains(errOut, fmt.Sprintf("%s: line %d (byte %d): rejected: ", file, first.Line, first.Offset)) {
					t.Errorf("stderr does not tell the first reject:\n%s", errOut)
				}
				if v.name != "plain" {
					return
				}
				// The rejects file is an input of the same format: loaded
				// again into an empty table, the same records are rejected
				// but the duplicate, whose first is not there.
				again := table + "_again"
				mustExec(t, db, "DROP TABLE IF EXISTS "+again, "CREATE TABLE "+again+" "+rejTable)
				code, s, errOut = load(t, context.Background(), dsn, nil, append([]string{"--max-rejects", "-1", "--format", in.format}, append(in.args, rejects, again)...)...)
				if code != exitRejects || s.Written != 1 || s.Rejected != int64(len(w.log)-1) {
					t.Errorf("loading the rejects file: exit %d, summary %+v, stderr:\n%s", code, s, errOut)
				}
			})
		}
	}
}

// TestRejectBudget: the budget counts the records refused here and by the
// server alike; N rejects with --max-rejects N finish (exit 3), one more
// stops the load (exit 4) with the record beyond the budget not written,
// and the summary stays exact.
func TestRejectBudget(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	local := "id,n\n1,1\n2,x\n3,3\n4,y\n5,5\n6,z\n7,7\n"             // rows 1, 3, 5 refused here
	server := "id,n\n1,1\n2,99999999999\n3,3\n4,-99999999999\n5,5\n" // rows 1, 3 refused by the server
	mixed := "id,n\n1,1\n2,x\n3,99999999999\n4,4\n"                  // row 1 here, row 2 by the server
	for i, c := range []struct {
		name, input string
		args        []string
		code        int
		written     int64
		rejected    int64
		notSent     [][2]int
		err         string
	}{
		{"local, budget 3", local, []string{"--max-rejects", "3"}, exitRejects, 4, 3, nil, ""},
		{"local, budget 2", local, []string{"--max-rejects", "2"}, exitBudget, 3, 2, [][2]int{{5, 6}}, // the last record is not read
			`line 7 (byte 25): column n: "z" is not an integer: stopped: more than 2 rejects (--max-rejects 2)`},
		{"local, no limit", local, []string{"--max-rejects", "-1"}, exitRejects, 4, 3, nil, ""},
		{"local, budget 0", local, nil, exitBudget, 1, 0, [][2]int{{1, 2}}, "line 3 (byte 9): column n: \"x\" is not an integer: stopped: more than 0 rejects"},
		{"server, budget 2", server, []string{"--max-rejects", "2", "--workers", "1"}, exitRejects, 3, 2, nil, ""},
		{"server, budget 1", server, []string{"--max-rejects", "1", "--workers", "1"}, exitBudget, -1, 1, nil,
			"line 5 (byte 27): Error 1264 (22003): Out of range value for column 'n' at row 2: stopped: more than 1 rejects (--max-rejects 1)"},
		{"server, budget 0", server, []string{"--workers", "1"}, exitBudget, 0, 0, [][2]int{{0, 5}}, "Error 1264 (22003): Out of range value for column 'n'"},
		{"mixed, budget 2", mixed, []string{"--max-rejects", "2"}, exitRejects, 2, 2, nil, ""},
		{"mixed, budget 1: the server's refusal is beyond it", mixed, []string{"--max-rejects", "1", "--workers", "1"}, exitBudget, -1, 1, nil,
			"line 4 (byte 13): Error 1264 (22003): Out of range value for column 'n' at row 1: stopped: more than 1 rejects"}, // row 1 of the statement after the reject
	} {
		t.Run(c.name, func(t *testing.T) {
			table := fmt.Sprintf("budget_%d", i)
			smallTable(t, db, table)
			path := writeFile(t, dir, table+".csv", []byte(c.input))
			code, s, errOut := load(t, context.Background(), dsn, nil, append(c.args, path, table)...)
			if code != c.code || c.written >= 0 && s.Written != c.written || s.Rejected != c.rejected ||
				c.notSent != nil && !reflect.DeepEqual(s.NotSentR, c.notSent) || !strings.Contains(s.Error, c.err) {
				t.Errorf("exit %d, summary %+v, stderr:\n%s\nwant exit %d, %d written, %d rejected, not sent %v, error with %q",
					code, s, errOut, c.code, c.written, c.rejected, c.notSent, c.err)
			}
			if n := countRows(t, db, table); n != s.Written {
				t.Errorf("table has %d rows, summary says %d written", n, s.Written)
			}
		})
	}
}

// TestRejectsFileCreated: --rejects empties what an earlier load left,
// even when this one rejects nothing, or cannot (a budget of 0).
func TestRejectsFileCreated(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	rejects := filepath.Join(dir, "r.csv")
	path := writeFile(t, dir, "a.csv", []byte("id\n1\n"))
	for _, budget := range []string{"5", "0"} {
		smallTable(t, db, "rejfile")
		for _, p := range []string{rejects, rejects + ".log"} {
			if err := os.WriteFile(p, []byte("stale\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		code, s, _ := load(t, context.Background(), dsn, nil, "--max-rejects", budget, "--rejects", rejects, path, "rejfile")
		if code != exitOK || s.Rejects != "" || len(readBack(t, rejects)) != 0 || len(readBack(t, rejects+".log")) != 0 {
			t.Errorf("--max-rejects %s: exit %d, summary %+v, rejects %q", budget, code, s, readBack(t, rejects))
		}
	}
}

// TestRejectsOnly: an input of nothing but records refused here, with a
// window of 3 records, settles its windows all the same (no row is ever
// given to the writer) and writes every record out, in order.
func TestRejectsOnly(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	smallTable(t, db, "rejonly")
	old := windowRows
	windowRows = 3
	defer func() { windowRows = old }()
	var recs []rec
	for i := range 10 {
		recs = append(recs, rec{raw: fmt.Sprintf("%d,\"%d.5\"\r\n", i, i), msg: "is not a whole number"})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "only.csv")
	w := expectRejects("id,n\r\n", recs, path)
	writeFile(t, dir, "only.csv", w.input)
	rejects := filepath.Join(dir, "only-rejects.csv")
	code, s, errOut := load(t, context.Background(), dsn, nil, "--max-rejects", "-1", "--rejects", rejects, path, "rejonly")
	if code != exitRejects || s.Rows != 10 || s.Rejected != 10 || s.Written != 0 ||
		strings.Count(errOut, ": rejected: ") != maxShown || strings.Contains(errOut, "more rejects") {
		t.Errorf("exit %d, summary %+v, stderr:\n%s", code, s, errOut)
	}
	checkRejects(t, rejects, w)
}

// TestRefusesRow: with the default budget of 0, the server's refusals of a
// row's values (batch.MaxRejects's list) exit 4, as over the budget; other
// refusals are failures (exit 1). A duplicate key is the row's own only on
// a plain INSERT.
func TestRefusesRow(t *testing.T) {
	chunk := func(n uint16) error {
		return fmt.Errorf("wrapped: %w", &batch.ChunkError{Row: -1, Err: &mysql.MySQLError{Number: n}})
	}
	for _, n := range []uint16{1048, 1264, 1265, 1292, 1366, 1406, 1452, 1644, 3819, 4025} {
		if !refusesRow(chunk(n), false) {
			t.Errorf("%d is a row's own refusal", n)
		}
	}
	for _, n := range []uint16{1054, 1146, 1364, 1142, 1205} {
		if refusesRow(chunk(n), true) {
			t.Errorf("%d is not a row's own refusal", n)
		}
	}
	if !refusesRow(chunk(1062), true) || refusesRow(chunk(1062), false) {
		t.Errorf("1062 is a row's own refusal on a plain INSERT only")
	}
	if refusesRow(&mysql.MySQLError{Number: 1366}, true) {
		t.Errorf("a refusal outside a chunk (reading the table) is not a row's")
	}
}

// TestRejectBurst: a run of records the server refuses, then good ones,
// then more refused here and by the server: the chunks shrink while rows
// are rejected and grow again after (the library's tuner), and the load
// writes every good record, rejects the others and exits 3.
func TestRejectBurst(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	mustExec(t, db, "DROP TABLE IF EXISTS burst", "CREATE TABLE burst (id BIGINT NOT NULL, n INT NULL, s VARCHAR(40) NULL)")
	var b []byte
	b = append(b, "id,n,s\n"...)
	var good, bad int64
	for i := range 200_000 {
		switch {
		case i >= 5000 && i < 5300, i%5000 == 9:
			b = fmt.Appendf(b, "%d,99999999999,s%d\n", i, i)
			bad++
		case i >= 100_000 && i < 100_100:
			b = fmt.Appendf(b, "%d,x,s%d\n", i, i)
			bad++
		default:
			b = fmt.Appendf(b, "%d,%d,s%d\n", i, i%100_000, i)
			good++
		}
	}
	path := writeFile(t, t.TempDir(), "burst.csv", b)
	code, s, errOut := load(t, context.Background(), dsn, nil, "--max-rejects", "-1", path, "burst")
	if code != exitRejects || s.Written != good || s.Rejected != bad || countRows(t, db, "burst") != good {
		t.Errorf("exit %d, summary %+v; want exit 3, %d written, %d rejected; stderr:\n%.2000s", code, s, good, bad, errOut)
	}
}
