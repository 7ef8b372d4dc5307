package main

import (
	"strings"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestUpsert(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)
	for _, want := range []string{
		"1. initial load: 3 rows, RowsAffected 3",
		"2. update: 5 rows, RowsAffected 7",
		"3. 20000 rows for 1000 skus in 200 statements on 4 connections: 0 skus hold a price other than their last row's",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	db := extest.Open(t, dsn)
	for _, c := range []struct {
		sku  string
		want int64
	}{
		{"A-1", 11_500}, // updated
		{"B-2", 4_200},  // twice in the input: the later row
		{"C-3", 1_900},  // unchanged
		{"D-4", 3_300},  // inserted
		{"X-0000", 190_000},
		{"X-0999", 190_999},
	} {
		if got := extest.Int(t, db, "SELECT price_cents FROM upsert_prices WHERE sku = ?", c.sku); got != c.want {
			t.Errorf("%s: price_cents = %d, want %d", c.sku, got, c.want)
		}
	}
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM upsert_prices"); got != 1004 {
		t.Errorf("%d rows, want 1004", got)
	}
}
