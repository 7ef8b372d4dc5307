package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statusCounters are the server's statement counters the tests read.
var statusCounters = []string{"Com_insert", "Com_replace", "Com_update", "Com_delete", "Com_begin", "Com_commit",
	"Com_rollback", "Com_stmt_prepare", "Com_stmt_execute", "Com_select"}

// globalStatus reads statusCounters once nothing but the test's own
// connection is left on the server, so that every session that ran before
// has its counts in the global ones. Com_select counts the SELECTs it ran
// to see that (before reading it), and "own selects" says how many.
func globalStatus(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	polls := int64(0)
	for {
		polls++
		var others int
		err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Daemon', 'Slave_IO', 'Slave_SQL') AND USER <> 'system user'`).Scan(&others)
		if err != nil {
			t.Fatal(err)
		}
		if others == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d other connections still open after 30s", others)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rows, err := db.Query("SHOW GLOBAL STATUS WHERE Variable_name IN ('" + strings.Join(statusCounters, "','") + "')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	st := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		st[name] = v
	}
	st["own selects"] = polls
	return st
}

// deltas returns after - before for each counter, the SELECTs after ran
// aside.
func deltas(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	d["Com_select"] -= after["own selects"]
	delete(d, "own selects")
	return d
}

// TestWrongHeaderSendsNothing proves, with the counters of the private
// server (no other client), that columns the table lacks fail the load
// before any statement but the reading of the table's columns: the
// prepared statements counted are all SELECTs (information_schema), and
// nothing was inserted, replaced, updated or begun. A right header, as a
// control, does count an INSERT.
func TestWrongHeaderSendsNothing(t *testing.T) {
	if os.Getenv("BATCH_TEST_DSN") != "" {
		t.Skip("the server's global counters are only the tool's on the private server")
	}
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	db.SetMaxOpenConns(1)
	mustExec(t, db, "DROP TABLE IF EXISTS untouched", "CREATE TABLE untouched (id INT PRIMARY KEY, n INT NULL, s VARCHAR(20) NULL, j JSON NULL)",
		"INSERT INTO untouched VALUES (1, 1, 'a', NULL)")
	dir := t.TempDir()
	file := func(name, data string) string { return writeFile(t, dir, name, []byte(data)) }
	for _, c := range []struct {
		name    string
		args    []string
		errText string
	}{
		{"csv header", []string{file("a.csv", "id,nope,S\n2,2,x\n")}, `the header of ` + filepath.Join(dir, "a.csv") + ` names columns that table untouched does not have: "nope"`},
		{"csv header, dry run", []string{"--dry-run", file("b.csv", "id,nope\n2,2\n")}, `does not have: "nope"`},
		{"csv header, upsert, rejects", []string{"--mode", "upsert", "--max-rejects", "-1", "--rejects", filepath.Join(dir, "r.csv"), file("c.csv", "ID,n,zz\n2,2,2\n")}, `does not have: "zz"`},
		{"tsv header, replace", []string{"--mode", "replace", file("d.tsv.gz", "id\tx\n2\t2\n")}, `does not have: "x"`},
		{"--columns", []string{"--columns", "id,n,what", file("e.csv", "2,2,2\n")}, `--columns names columns that table untouched does not have: "what"`},
		{"ndjson first object", []string{file("f.ndjson", "{\"id\":2,\"bogus\":1}\n{\"id\":3}\n")}, `the first record of`},
		{"a column named twice", []string{file("g.csv", "id,n,N\n2,2,2\n")}, "names a column twice: n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := globalStatus(t, db)
			code, s, errOut := load(t, context.Background(), dsn, nil, append(c.args, "untouched")...)
			d := deltas(before, globalStatus(t, db))
			if code != exitFailure || !strings.Contains(errOut, c.errText) || s.Rows != 0 {
				t.Errorf("exit %d, summary %+v, stderr %q; want exit 1 with %q", code, s, errOut, c.errText)
			}
			for _, k := range []string{"Com_insert", "Com_replace", "Com_update", "Com_delete", "Com_begin", "Com_commit", "Com_rollback"} {
				if d[k] != 0 {
					t.Errorf("%s went up by %d: a statement was sent", k, d[k])
				}
			}
			if d["Com_stmt_prepare"] < 1 || d["Com_stmt_prepare"] != d["Com_select"] || d["Com_stmt_execute"] != d["Com_select"] {
				t.Errorf("%d statements prepared, %d executed, %d SELECTs: want only the SELECTs that read the columns", d["Com_stmt_prepare"], d["Com_stmt_execute"], d["Com_select"])
			}
			t.Logf("counters went up by %v", d)
		})
	}
	if got := dump(t, db, "untouched"); got != "1,1,a\n" {
		t.Errorf("table changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "r.csv")); !os.IsNotExist(err) {
		t.Errorf("--rejects file made before the columns were checked: %v", err)
	}
	// The control: the counters do see the tool's statements.
	before := globalStatus(t, db)
	code, _, errOut := load(t, context.Background(), dsn, nil, file("ok.csv", "id,n\n2,2\n"), "untouched")
	if d := deltas(before, globalStatus(t, db)); code != exitOK || d["Com_insert"] < 1 {
		t.Errorf("a right header: exit %d (stderr %q), Com_insert up by %d; the counters cannot prove anything", code, errOut, d["Com_insert"])
	}
}

// TestDryRun: a dry run reports what a load would do, the server's own
// errors and rejects included, and leaves the table as it was, whatever
// its outcome; the same input loaded for real does change it.
func TestDryRun(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	before := []string{"(1,10,'a')", "(2,20,'b')"}
	input := "id,n,s\n3,30,c\n4,4x,d\n2,21,dup\n5,50,this is far too long for the column\n6,60,e\n"
	path := writeFile(t, dir, "dry.csv", []byte(input))
	rejects := filepath.Join(dir, "dry-rejects.csv")
	for i, c := range []struct {
		args              []string
		code              int
		written, rejected int64
	}{
		{[]string{"--dry-run", "--max-rejects", "-1", "--rejects", rejects}, exitRejects, 2, 3},
		{[]string{"--dry-run", "--max-rejects", "1", "--workers", "1"}, exitBudget, -1, 1},
		{[]string{"--dry-run"}, exitBudget, -1, 0},
		{[]string{"--dry-run", "--mode", "upsert", "--max-rejects", "5"}, exitRejects, 3, 2},
	} {
		table := fmt.Sprintf("dry_%d", i)
		smallTable(t, db, table, before...)
		was := dump(t, db, table)
		code, s, errOut := load(t, context.Background(), dsn, nil, append(c.args, path, table)...)
		if code != c.code || c.written >= 0 && s.Written != c.written || s.Rejected != c.rejected || !s.DryRun {
			t.Errorf("%q: exit %d, summary %+v, stderr %q; want exit %d, %d written, %d rejected", c.args, code, s, errOut, c.code, c.written, c.rejected)
		}
		if got := dump(t, db, table); got != was {
			t.Errorf("%q: the dry run changed the table:\n%s\nwas\n%s", c.args, got, was)
		}
	}
	w := expectRejects("id,n,s\n", []rec{{raw: "3,30,c\n", row: "x"}, {raw: "4,4x,d\n", msg: `column n: "4x" is not an integer`},
		{raw: "2,21,dup\n", code: 1062, msg: "Duplicate entry '2'"}, {raw: "5,50,this is far too long for the column\n", code: 1406, msg: "Data too long"},
		{raw: "6,60,e\n", row: "x"}}, path)
	checkRejects(t, rejects, w)
	// The same load, for real.
	smallTable(t, db, "dry_real", before...)
	code, s, _ := load(t, context.Background(), dsn, nil, "--max-rejects", "-1", path, "dry_real")
	if got := dump(t, db, "dry_real"); code != exitRejects || s.Written != 2 || got != "1,10,a\n2,20,b\n3,30,c\n6,60,e\n" {
		t.Errorf("for real: exit %d, summary %+v, table\n%s", code, s, got)
	}
}
