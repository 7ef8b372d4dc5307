package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestResume(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)

	m := regexp.MustCompile(`attempt 1: context canceled\n  written:  (\d+) rows`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no report of the cancelled attempt")
	}
	if written, _ := strconv.Atoi(m[1]); written < 5000 || written >= n {
		t.Errorf("attempt 1 wrote %d rows; want at least 5000 (it is cancelled from then on) and fewer than %d", written, n)
	}
	for _, want := range []string{
		"unknown:  rows none",
		"attempt 2: batch: rows [14000, 15000): row 14321: Error 1406",
		"the server refused rows 14000..14999 (error 1406); fixing row 14321",
		"attempt 3: done, still not sent: none",
		"the table holds 20000 rows (want 20000), weights sum to 51990000 (want 51990000)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	db := extest.Open(t, dsn)
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM resume_shipments WHERE tracking = 'TRK-X-14321'"); got != 1 {
		t.Errorf("the fixed row is there %d times, want 1", got)
	}
}
