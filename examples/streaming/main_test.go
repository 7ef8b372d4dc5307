package main

import (
	"strings"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestStreaming(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)
	for _, want := range []string{
		"after Flush: the table holds 10000 rows\n",
		"after Close: 50000 rows written in 50 statements",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	db := extest.Open(t, dsn)
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM streaming_readings"); got != total {
		t.Errorf("%d rows, want %d", got, total)
	}
	// Every reading once, in order: the times are distinct and cover the
	// whole stream.
	if got := extest.Int(t, db, "SELECT COUNT(DISTINCT at) FROM streaming_readings"); got != total {
		t.Errorf("%d distinct times, want %d", got, total)
	}
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM streaming_readings WHERE sensor = 'sensor-15'"); got != total/16 {
		t.Errorf("sensor-15 has %d readings, want %d", got, total/16)
	}
}
