package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/klauspost/compress/zstd"
)

// openDB opens dsn for a test's own checks.
func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustExec runs statements, failing t on the first error.
func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// countRows is SELECT COUNT(*) of a table.
func countRows(t *testing.T, db *sql.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// load runs batchload with --summary json and --progress none and returns
// its exit status, summary and stderr.
func load(t *testing.T, ctx context.Context, dsn string, stdin io.Reader, args ...string) (int, summary, string) {
	t.Helper()
	args = append([]string{"--summary", "json", "--progress", "none"}, args...)
	code, out, errOut := runMain(ctx, stdin, env(dsn), args...)
	var s summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("batchload %q: exit %d, summary %q (%v), stderr %q", args, code, out, err, errOut)
	}
	if s.Rows != s.Written+s.Rejected+s.NotSent+s.Unknown || s.Exit != code {
		t.Errorf("summary not exact: %+v (exit %d)", s, code)
	}
	return code, s, errOut
}

// writeFile writes data to dir/name, compressed as the name says, unless
// the name starts with "plain.".
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	switch {
	case strings.HasPrefix(name, "plain."):
	case strings.HasSuffix(name, ".gz"):
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
		data = b.Bytes()
	case strings.HasSuffix(name, ".zst"):
		w, _ := zstd.NewWriter(&b)
		w.Write(data)
		w.Close()
		data = b.Bytes()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnicodeData loads UnicodeData.txt, as CSV, TSV and NDJSON files,
// plain, gzip and zstd, and through stdin, and compares each table's
// checksum with the rows'. LOAD DATA LOCAL INFILE of the TSV file must give
// the same table: the TSV reader reads what LOAD DATA reads.
func TestUnicodeData(t *testing.T) {
	rows := unicodeRows(t)
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	want := checksum(rows)
	dir := t.TempDir()
	csvData, tsvData, ndData := writeCSV(rows), writeTSV(rows), writeNDJSON(rows)
	for _, c := range []struct {
		name, file, stdin string
		args              []string
	}{
		{"csv", writeFile(t, dir, "ucd.csv", csvData), "", []string{"--null", ""}},
		{"csv.gz", writeFile(t, dir, "ucd.csv.gz", csvData), "", []string{"--null", "", "--workers", "3"}},
		{"tsv", writeFile(t, dir, "ucd.tsv", tsvData), "", nil},
		{"tsv.zst", writeFile(t, dir, "ucd.tsv.zst", tsvData), "", []string{"--workers", "1"}},
		{"tsv on stdin", "-", string(tsvData), []string{"--format", "tsv"}},
		{"ndjson", writeFile(t, dir, "ucd.ndjson", ndData), "", nil},
		{"ndjson.zst on stdin", "-", string(readBack(t, writeFile(t, dir, "ucd.ndjson.zst", ndData))), []string{"--format", "ndjson"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			table := "ucd_" + strings.NewReplacer(".", "_", " ", "_").Replace(c.name)
			mustExec(t, db, "DROP TABLE IF EXISTS "+table, "CREATE TABLE "+table+" "+ucdDDL)
			args := append(c.args, c.file, table)
			code, s, errOut := load(t, context.Background(), dsn, strings.NewReader(c.stdin), args...)
			if code != exitOK || s.Written != int64(len(rows)) {
				t.Fatalf("exit %d, %d of %d rows written; stderr %q", code, s.Written, len(rows), errOut)
			}
			if got, n := tableChecksum(t, db, table); got != want {
				t.Errorf("table checksum %s over %d rows, want %s over %d", got, n, want, len(rows))
			}
		})
	}
	t.Run("LOAD DATA agrees", func(t *testing.T) {
		path := filepath.Join(dir, "ucd.tsv")
		mysql.RegisterLocalFile(path)
		defer mysql.DeregisterLocalFile(path)
		mustExec(t, db, "DROP TABLE IF EXISTS ucd_loaddata", "CREATE TABLE ucd_loaddata "+ucdDDL,
			"LOAD DATA LOCAL INFILE '"+path+"' INTO TABLE ucd_loaddata CHARACTER SET utf8mb4 IGNORE 1 LINES")
		if got, n := tableChecksum(t, db, "ucd_loaddata"); got != want {
			t.Errorf("LOAD DATA's table checksum %s over %d rows, want %s over %d", got, n, want, len(rows))
		}
	})
}

// readBack returns a file's bytes.
func readBack(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallTable makes a fresh table t of a test: id INT PRIMARY KEY, n INT,
// s VARCHAR(20).
func smallTable(t *testing.T, db *sql.DB, name string, rows ...string) {
	t.Helper()
	mustExec(t, db, "DROP TABLE IF EXISTS "+name, "CREATE TABLE "+name+" (id INT PRIMARY KEY, n INT NULL, s VARCHAR(20) NULL)")
	for _, r := range rows {
		mustExec(t, db, "INSERT INTO "+name+" VALUES "+r)
	}
}

// dump returns a table's rows as "id,n,s" lines, NULL as -.
func dump(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query("SELECT id, COALESCE(n, '-'), COALESCE(s, '-') FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, n, s string
		if err := rows.Scan(&id, &n, &s); err != nil {
			t.Fatal(err)
		}
		b.WriteString(id + "," + n + "," + s + "\n")
	}
	return b.String()
}
