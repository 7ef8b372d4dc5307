package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestCSV(t *testing.T) {
	fileRows = 20_000
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)
	for _, want := range []string{
		"loading 20000 / 20000 rows", // the bar, drawn once at the end
		"100 %",
		"csv_products: 20000 of 20000 rows written in 20 statements",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The table holds what the file holds: compare sums and NULLs with a
	// file generated the same way.
	path := filepath.Join(t.TempDir(), "products.csv")
	if err := generate(path, fileRows); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var stock, cents, nulls int64
	for _, rec := range recs[1:] {
		s, _ := strconv.ParseInt(rec[4], 10, 64)
		stock += s
		whole, frac, _ := strings.Cut(rec[3], ".")
		w, _ := strconv.ParseInt(whole, 10, 64)
		c, _ := strconv.ParseInt(frac, 10, 64)
		cents += w*100 + c
		if rec[2] == "" {
			nulls++
		}
	}
	db := extest.Open(t, dsn)
	for _, c := range []struct {
		query string
		want  int64
	}{
		{"SELECT COUNT(*) FROM csv_products", int64(fileRows)},
		{"SELECT SUM(stock) FROM csv_products", stock},
		{"SELECT CAST(SUM(price) * 100 AS SIGNED) FROM csv_products", cents},
		{"SELECT COUNT(*) FROM csv_products WHERE category IS NULL", nulls},
		{`SELECT COUNT(*) FROM csv_products WHERE name LIKE '%"Classic"%' OR name LIKE '%kettle, steel%'`, -1},
	} {
		got := extest.Int(t, db, c.query)
		if c.want < 0 {
			if got == 0 {
				t.Errorf("%s = 0: quoted fields were not loaded as written", c.query)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
}
