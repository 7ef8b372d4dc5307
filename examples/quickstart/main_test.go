package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

// chunks reads the chunks column of a load's line in the output table.
func chunks(t *testing.T, out, load string, rows int) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(load) + `\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line for load %q in the output", load)
	}
	if got, _ := strconv.Atoi(m[1]); got != rows {
		t.Errorf("%s: rows = %d, want %d", load, got, rows)
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

func check(t *testing.T, out string, rows int) {
	t.Helper()
	if got, want := chunks(t, out, "defaults", rows), (rows+999)/1000; got != want {
		t.Errorf("defaults: chunks = %d, want %d (1000 rows each)", got, want)
	}
	if got, want := chunks(t, out, "MaxRows(250)", rows), rows/250; got != want {
		t.Errorf("MaxRows(250): chunks = %d, want %d", got, want)
	}
	// About 80 bytes a row: 16 KiB holds ~200 rows, rounded down to a
	// shape of 192 (3*2^6).
	if got, want := chunks(t, out, "MaxBytes(16 KiB)", rows), (rows+191)/192; got != want {
		t.Errorf("MaxBytes(16 KiB): chunks = %d, want %d (192 rows each)", got, want)
	}
	want := "check: quickstart_orders holds " + strconv.Itoa(rows) + " rows"
	if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(out) {
		t.Errorf("output lacks %q", want)
	}
}

// TestEmbedded runs the quickstart as a newcomer does, without MYSQL_DSN.
func TestEmbedded(t *testing.T) {
	out := extest.Run(t, run, "")
	check(t, out, embeddedRows)
}

func TestServer(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)
	check(t, out, serverRows)
	db := extest.Open(t, dsn)
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM quickstart_orders"); got != serverRows {
		t.Errorf("table holds %d rows, want %d", got, serverRows)
	}
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM quickstart_orders WHERE note IS NOT NULL"); got != (serverRows+6)/7 {
		t.Errorf("%d rows have a note, want %d", got, (serverRows+6)/7)
	}
}
