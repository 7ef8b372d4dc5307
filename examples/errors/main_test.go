package main

import (
	"strings"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestErrors(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)
	for _, want := range []string{
		`1. NaN:       ValueError: row 1, column "amount" (float64)`,
		"errors.Is(err, batch.ErrNotFinite) = true; written 0, not sent: rows 0..1",
		"2. too large: RowTooLargeError: row 1 needs ",
		"3. duplicate: ChunkError: the server refused rows 0..1 with error 1062",
		"4. lock wait: UnknownOutcomeError: rows 0..9 may or may not be written",
		"errors.Is(err, context.DeadlineExceeded) = true; written 0, unknown: rows 0..9, not sent: rows none",
		"10 of the 10 unknown rows are in the table",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	db := extest.Open(t, dsn)
	// Only part 4's rows are there: parts 1 to 3 wrote nothing.
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM errors_payments"); got != 10 {
		t.Errorf("%d rows, want 10", got)
	}
}
