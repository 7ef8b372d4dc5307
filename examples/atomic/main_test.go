package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestAtomic(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)

	// Without Atomic: the statement of rows 3000..3999 is refused, others
	// may be written (which ones depends on the two workers' timing), and
	// the table holds exactly what the Result says.
	m := regexp.MustCompile(`without Atomic: (\d+) of 5000 rows written .*\n.*error 1062.*\n  the table holds (\d+) rows`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no report of the load without Atomic")
	}
	written, _ := strconv.Atoi(m[1])
	held, _ := strconv.Atoi(m[2])
	if written != held || written < 1000 || written > 4000 {
		t.Errorf("without Atomic: %d rows written, table held %d; want equal, between 1000 and 4000", written, held)
	}
	// The rows not sent include at least the refused statement's.
	covered := false
	if ns := regexp.MustCompile(`without Atomic: .*not sent: rows (.*)\n`).FindStringSubmatch(out); ns != nil {
		for _, r := range strings.Split(ns[1], ", ") {
			first, end, _ := strings.Cut(r, "..")
			f, _ := strconv.Atoi(first)
			e, _ := strconv.Atoi(end)
			covered = covered || f <= 3000 && e >= 3999
		}
	}
	if !covered {
		t.Error("without Atomic: rows 3000..3999 are not among the rows not sent")
	}
	for _, want := range []string{
		"with Atomic: 0 of 5000 rows written, not sent: rows 0..4999\n" +
			"  error: the server refused the statement of rows 3000..3999: error 1062",
		"the table holds 0 rows: all or nothing",
		"fixed, with Atomic: 5000 rows written in 5 statements and one transaction; the table holds 5000 rows",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	db := extest.Open(t, dsn)
	if got := extest.Int(t, db, "SELECT COUNT(DISTINCT id) FROM atomic_accounts"); got != 5000 {
		t.Errorf("%d distinct ids, want 5000", got)
	}
}
