package main

// The tests of --load-id (ledger.go): a load killed (SIGKILL, SIGINT) half
// way and run again with the same id leaves every row exactly once, in a
// table without a key (where a row written twice would stay twice); a
// finished load run again writes nothing; the rejects file of a rerun holds
// every bad record of the input once; another input is refused.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// resumeDDL is the table of the resume tests: no key at all, so that only
// the ledger keeps a rerun from writing a row twice.
const resumeDDL = "(id BIGINT NOT NULL, n INT NULL, s VARCHAR(40) NULL) ENGINE=InnoDB"

// resumeInput is a generated CSV input of n data records "id,n,s" after
// a header; with bad, every 1000th record (from row 7) is refused here (n
// is not a number) and every 1000th from row 507 by the server (n out of
// INT's range).
type resumeInput struct {
	want   wantRej // the input, the rejects file and log it must give, the good rows
	crc    int64   // SUM(CRC32('id,n,s')) over the good rows
	good   int64   // good rows
	server int64   // records the server refuses
	path   string
}

func makeResumeInput(t *testing.T, dir, name string, n int, bad bool) resumeInput {
	t.Helper()
	const header = "id,n,s\n"
	recs := make([]rec, n)
	var crc, good, server int64
	for i := range recs {
		s := fmt.Sprintf("s%d-%08x", i, crc32.ChecksumIEEE([]byte(fmt.Sprint(i))))
		switch {
		case bad && i%1000 == 7:
			recs[i] = rec{raw: fmt.Sprintf("%d,x%d,%s\n", i, i, s), msg: fmt.Sprintf(`column n: "x%d" is not an integer`, i)}
		case bad && i%1000 == 507:
			recs[i] = rec{raw: fmt.Sprintf("%d,99999999999,%s\n", i, s), code: 1264, msg: "Out of range value for column 'n'"}
			server++
		default:
			row := fmt.Sprintf("%d,%d,%s", i, i%100000, s)
			recs[i] = rec{raw: row + "\n", row: row}
			crc += int64(crc32.ChecksumIEEE([]byte(row)))
			good++
		}
	}
	path := filepath.Join(dir, name)
	w := expectRejects(header, recs, path)
	writeFile(t, dir, name, w.input)
	return resumeInput{want: w, crc: crc, good: good, server: server, path: path}
}

// checkExact checks that table holds each good row of in exactly once.
func (in resumeInput) checkExact(t *testing.T, db *sql.DB, table string) {
	t.Helper()
	var n, distinct, crc int64
	err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT id), COALESCE(SUM(CRC32(CONCAT_WS(',', id, n, s))), 0) FROM "+table).Scan(&n, &distinct, &crc)
	if err != nil {
		t.Fatal(err)
	}
	if n != in.good || distinct != in.good || crc != in.crc {
		t.Errorf("table %s: %d rows (%d distinct ids), checksum %d; want %d rows once each, checksum %d", table, n, distinct, crc, in.good, in.crc)
	}
}

// checkRejects checks the files of --rejects path against in's bad
// records: both empty when it has none.
func (in resumeInput) checkRejects(t *testing.T, path string) {
	t.Helper()
	if len(in.want.log) > 0 {
		checkRejects(t, path, in.want)
		return
	}
	if data, log := readBack(t, path), readBack(t, path+".log"); len(data) != 0 || len(log) != 0 {
		t.Errorf("no rejects, but the rejects file holds %q and its log %q", data, log)
	}
}

// ledgerHeld returns what the ledger holds of load id: the rows written
// and the rows rejected in its ranges, and the ranges.
func ledgerHeld(t *testing.T, db *sql.DB, ledger, id string) (written, rejected, ranges int64) {
	t.Helper()
	err := db.QueryRow("SELECT COALESCE(SUM(written), 0), COALESCE(SUM(end_row - first_row - written), 0), COUNT(*) FROM "+ledger+" WHERE load_id = ?", id).
		Scan(&written, &rejected, &ranges)
	if err != nil && !strings.Contains(err.Error(), "1146") {
		t.Fatal(err)
	}
	return written, rejected, ranges
}

// startLoad starts the command as a process, with --summary json and
// --progress none.
func startLoad(t *testing.T, ctx context.Context, dsn string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := command(ctx, dsn, append([]string{"--summary", "json", "--progress", "none"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, &out, &errOut, exited
}

// interruptOnceCommitted starts a load and sends it sig once the ledger
// holds at least least rows of load id, then waits for it to end. It
// returns the exit status and its stdout and stderr.
func interruptOnceCommitted(t *testing.T, dsn, ledger, id string, least int64, sig syscall.Signal, args ...string) (int, string, string) {
	t.Helper()
	db := openDB(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd, out, errOut, exited := startLoad(t, ctx, dsn, args...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if w, r, _ := ledgerHeld(t, db, ledger, id); w+r >= least {
			break
		}
		select {
		case <-exited:
			t.Fatalf("the load ended before it was interrupted: exit %d, stdout %q, stderr %q", cmd.ProcessState.ExitCode(), out, errOut)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no ledger rows after 2 minutes; stderr %q", errOut)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("still running 2 minutes after %v", sig)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestResumeAfterKill: a load is SIGKILLed (or SIGINTed) half way; the
// table then holds exactly the rows the ledger says committed; a rerun
// with the same --load-id passes over them (its summary's resumed is what
// the ledger held) and writes the rest: every row exactly once, checked by
// count and checksum. With bad records (refused here and by the server),
// the rerun's rejects file holds each bad record of the input once, in
// order, the server's recalled from the ledger with their error.
func TestResumeAfterKill(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	for i, c := range []struct {
		name string
		sig  syscall.Signal
		rows int
		bad  bool
	}{
		{"SIGKILL", syscall.SIGKILL, 300_000, false}, // no budget: never flushed before the end
		{"SIGKILL, rejects", syscall.SIGKILL, 200_000, true},
		{"SIGINT, rejects", syscall.SIGINT, 200_000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			table, id := fmt.Sprintf("resume_kill_%d", i), fmt.Sprintf("kill-%d-%d", i, time.Now().UnixNano())
			mustExec(t, db, "DROP TABLE IF EXISTS "+table, "CREATE TABLE "+table+" "+resumeDDL)
			in := makeResumeInput(t, dir, table+".csv", c.rows, c.bad)
			rejects := filepath.Join(dir, table+"-rejects.csv")
			args := []string{"--load-id", id, in.path, table}
			if c.bad {
				args = append([]string{"--max-rejects", "-1", "--rejects", rejects}, args...)
			}

			code, out, errOut := interruptOnceCommitted(t, dsn, defaultLedgerTable, id, int64(c.rows/5), c.sig, args...)
			written, rejected, ranges := ledgerHeld(t, db, defaultLedgerTable, id)
			n := countRows(t, db, table)
			t.Logf("%v: exit %d; ledger: %d written, %d rejected in %d ranges; table %d rows", c.sig, code, written, rejected, ranges, n)
			if n != written {
				t.Fatalf("after %v the table holds %d rows, the ledger says %d were committed", c.sig, n, written)
			}
			if written+rejected >= int64(c.rows) {
				t.Fatalf("the load finished before %v", c.sig)
			}
			if c.sig == syscall.SIGINT {
				var s summary
				if err := json.Unmarshal([]byte(out), &s); err != nil {
					t.Fatalf("summary %q: %v; stderr %q", out, err, errOut)
				}
				if code != exitFailure || !strings.Contains(s.Error, "interrupted") || s.Written != written || s.Unknown != 0 ||
					s.Rows != s.Written+s.Rejected+s.NotSent+s.Unknown {
					t.Errorf("interrupted: exit %d, summary %+v; want exit 1, %d written (the ledger's), none unknown", code, s, written)
				}
			}

			code, s, errOut := loadProcess(t, dsn, args...)
			wantCode := exitOK
			if c.bad {
				wantCode = exitRejects
			}
			if code != wantCode || s.Resumed != written || s.Written != in.good || s.Rejected != int64(len(in.want.log)) ||
				s.Rows != int64(c.rows) || s.NotSent != 0 || s.Unknown != 0 {
				t.Errorf("rerun: exit %d, summary %+v; want exit %d, %d rows, %d written of which %d resumed, %d rejected; stderr:\n%s",
					code, s, wantCode, c.rows, in.good, written, len(in.want.log), errOut)
			}
			if written > 0 && !strings.Contains(errOut, "resuming: earlier runs committed "+fmt.Sprint(written)+" rows (and rejected "+fmt.Sprint(rejected)+")") {
				t.Errorf("the rerun does not say it resumes: %s", errOut)
			}
			in.checkExact(t, db, table)
			if c.bad {
				in.checkRejects(t, rejects)
			}
		})
	}
}

// loadProcess runs the command as a process with --summary json and
// --progress none and returns its exit status, summary and stderr.
func loadProcess(t *testing.T, dsn string, args ...string) (int, summary, string) {
	t.Helper()
	code, out, errOut := runCommand(t, dsn, nil, append([]string{"--summary", "json", "--progress", "none"}, args...)...)
	var s summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("batchload %q: exit %d, summary %q (%v), stderr %q", args, code, out, err, errOut)
	}
	if s.Rows != s.Written+s.Rejected+s.NotSent+s.Unknown || s.Exit != code {
		t.Errorf("summary not exact: %+v (exit %d)", s, code)
	}
	return code, s, errOut
}

// TestResumeFinished: a finished load run again with its --load-id writes
// nothing (the table, which has no key, keeps one copy of each row; no
// INSERT into it is even sent), every row resumed; exit 0, or 3 when the
// load had rejects, which the rerun's rejects file holds again, once. A
// load without rejects keeps no raw record (the window is off) and still
// exits 0. Also with --ledger-table and gzip input, and on stdin.
func TestResumeFinished(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	for i, c := range []struct {
		name  string
		rows  int
		bad   bool
		args  []string
		stdin bool
	}{
		{"clean", 20_000, false, nil, false},
		{"rejects", 20_000, true, []string{"--max-rejects", "-1"}, false},
		{"rejects, budget spent by the earlier rejects", 3_000, true, []string{"--max-rejects", "6", "--workers", "1"}, false},
		{"own ledger table, stdin", 5_000, true, []string{"--max-rejects", "10", "--ledger-table", "test.my_ledger"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			table, id := fmt.Sprintf("resume_done_%d", i), fmt.Sprintf("done-%d-%d", i, time.Now().UnixNano())
			mustExec(t, db, "DROP TABLE IF EXISTS "+table, "CREATE TABLE "+table+" "+resumeDDL)
			in := makeResumeInput(t, dir, table+".csv", c.rows, c.bad)
			rejects := filepath.Join(dir, table+"-rejects.csv")
			file := in.path
			var stdin func() *bytes.Reader
			if c.stdin {
				data := readBack(t, in.path)
				stdin, file = func() *bytes.Reader { return bytes.NewReader(data) }, "-"
				in.want = expectRejectsOf(t, in, "-")
			}
			args := append(append([]string{"--load-id", id, "--rejects", rejects, "--format", "csv"}, c.args...), file, table)
			run := func() (int, summary, string) {
				if stdin != nil {
					return load(t, context.Background(), dsn, stdin(), args...)
				}
				return load(t, context.Background(), dsn, nil, args...)
			}
			wantCode := exitOK
			if c.bad {
				wantCode = exitRejects
			}
			code, s, errOut := run()
			if code != wantCode || s.Written != in.good || s.Resumed != 0 || s.Rejected != int64(len(in.want.log)) {
				t.Fatalf("first run: exit %d, summary %+v; stderr:\n%s", code, s, errOut)
			}
			in.checkRejects(t, rejects)
			ledger := defaultLedgerTable
			if c.stdin {
				ledger = "test.my_ledger"
			}
			before, counters := tableStatus(t, db, table), privateStatus(t, db)
			code, s, errOut = run()
			if d := deltas(counters, privateStatus(t, db)); d != nil && (d["Com_insert"] != 0 || d["Com_commit"] != 0) {
				t.Errorf("the rerun sent %d INSERTs and %d COMMITs", d["Com_insert"], d["Com_commit"])
			}
			if code != wantCode || s.Written != in.good || s.Resumed != in.good || s.Rejected != int64(len(in.want.log)) || s.NotSent != 0 {
				t.Errorf("rerun: exit %d, summary %+v; want exit %d, %d written, all resumed; stderr:\n%s", code, s, wantCode, in.good, errOut)
			}
			if after := tableStatus(t, db, table); after != before {
				t.Errorf("the rerun changed the table: %s, then %s", before, after)
			}
			if w, r, _ := ledgerHeld(t, db, ledger, id); w != in.good || r != in.server {
				t.Errorf("ledger %s: %d written, %d rejected; want %d and %d (the server's rejects)", ledger, w, r, in.good, in.server)
			}
			in.checkExact(t, db, table)
			in.checkRejects(t, rejects)
		})
	}
}

// expectRejectsOf is in.want for the input named file.
func expectRejectsOf(t *testing.T, in resumeInput, file string) wantRej {
	w := in.want
	w.log = append([]rejectLine(nil), w.log...)
	for i := range w.log {
		w.log[i].File = file
	}
	return w
}

// tableStatus is a table's row count and checksum.
func tableStatus(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	var n, crc int64
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS(',', id, n, s))), 0) FROM "+table).Scan(&n, &crc); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, checksum %d", n, crc)
}

// privateStatus is globalStatus on the private server, where the counters
// are the tool's; nil on another (BATCH_TEST_DSN).
func privateStatus(t *testing.T, db *sql.DB) map[string]int64 {
	if os.Getenv("BATCH_TEST_DSN") != "" {
		return nil
	}
	return globalStatus(t, db)
}

// TestResumeMismatch: a rerun whose input is seen not to be the earlier
// runs' one exits 1, with a message naming the load id and how to start
// over, and writes nothing: another TABLE or other columns (the library's
// check), fewer records than were committed, a record refused here where
// a committed range has it. A run while another of the same id holds its
// lock is refused before it sends anything.
func TestResumeMismatch(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	mustExec(t, db, "DROP TABLE IF EXISTS resume_mm", "CREATE TABLE resume_mm "+resumeDDL,
		"DROP TABLE IF EXISTS resume_mm2", "CREATE TABLE resume_mm2 "+resumeDDL)
	in := makeResumeInput(t, dir, "mm.csv", 10_000, false)
	id := fmt.Sprintf("mm-%d", time.Now().UnixNano())
	if code, s, errOut := load(t, context.Background(), dsn, nil, "--load-id", id, in.path, "resume_mm"); code != exitOK || s.Written != 10_000 {
		t.Fatalf("first run: exit %d, summary %+v, stderr %s", code, s, errOut)
	}
	var twoColumns []byte
	for i := range 20_000 {
		twoColumns = fmt.Appendf(twoColumns, "%d,%d\n", i, i)
	}
	short := writeFile(t, dir, "short.csv", []byte("id,n,s\n1,1,a\n2,2,b\n"))
	badRow := bytes.Replace(readBack(t, in.path), []byte("\n5000,5000,"), []byte("\n5000,x,"), 1)
	withBad := writeFile(t, dir, "withbad.csv", badRow)
	for _, c := range []struct {
		name    string
		args    []string
		errText string
	}{
		{"another table", []string{in.path, "resume_mm2"}, "was for another table or other columns"},
		{"other columns", []string{"--columns", "id,n", "--header=false", writeFile(t, dir, "cols.csv", twoColumns), "resume_mm"}, "was for another table or other columns"},
		{"fewer records", []string{short, "resume_mm"}, "short.csv has 2 records, but earlier runs committed rows up to 10000"},
		{"a record refused in a committed range", []string{"--max-rejects", "5", withBad, "resume_mm"}, `line 5002 (byte `},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tableStatus(t, db, "resume_mm") + tableStatus(t, db, "resume_mm2")
			code, s, errOut := load(t, context.Background(), dsn, nil, append([]string{"--load-id", id}, c.args...)...)
			if code != exitFailure || !strings.Contains(errOut, c.errText) || !strings.Contains(errOut, "--load-id "+id+": ") ||
				!strings.Contains(errOut, "the ledger's load id was used for a different input") || !strings.Contains(errOut, "DELETE FROM `batchload_ledger` WHERE load_id = '"+id+"'") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 with %q", code, errOut, c.errText)
			}
			if s.Unknown != 0 || s.Written != s.Resumed {
				t.Errorf("summary %+v: rows written by a refused rerun", s)
			}
			if after := tableStatus(t, db, "resume_mm") + tableStatus(t, db, "resume_mm2"); after != before {
				t.Errorf("the refused rerun changed the tables: %s, then %s", before, after)
			}
		})
	}
	t.Run("a run of the same id is going", func(t *testing.T) {
		v := &ledgerView{table: defaultLedgerTable, loadID: id}
		if err := v.takeLock(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		defer v.close()
		code, _, errOut := load(t, context.Background(), dsn, nil, "--load-id", id, in.path, "resume_mm")
		if code != exitFailure || !strings.Contains(errOut, "another load of the same id is running (server connection ") {
			t.Errorf("exit %d, stderr %s", code, errOut)
		}
	})
	in.checkExact(t, db, "resume_mm")
	if n := countRows(t, db, "resume_mm2"); n != 0 {
		t.Errorf("resume_mm2 has %d rows", n)
	}
	// The ledger's rows deleted, the same id loads again from the start.
	mustExec(t, db, "TRUNCATE resume_mm")
	if _, err := db.Exec("DELETE FROM batchload_ledger WHERE load_id = ?", id); err != nil {
		t.Fatal(err)
	}
	if code, s, errOut := load(t, context.Background(), dsn, nil, "--load-id", id, in.path, "resume_mm"); code != exitOK || s.Written != 10_000 || s.Resumed != 0 {
		t.Errorf("after DELETE: exit %d, summary %+v, stderr %s", code, s, errOut)
	}
	in.checkExact(t, db, "resume_mm")
}

// cancelAfter reads r and cancels after n bytes have been read.
type cancelAfter struct {
	r      *bytes.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	p = p[:min(len(p), 4096)]
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

// TestResumeRerunInterrupted: a rerun interrupted before it has read as
// far as the earlier runs committed reports only the rows it read (the
// ledger's rows beyond are no rows of its summary), every one of them
// written by the earlier run; a third run finishes, exact.
func TestResumeRerunInterrupted(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	mustExec(t, db, "DROP TABLE IF EXISTS resume_rerun", "CREATE TABLE resume_rerun "+resumeDDL)
	in := makeResumeInput(t, t.TempDir(), "rerun.csv", 100_000, true)
	id := fmt.Sprintf("rerun-%d", time.Now().UnixNano())
	args := []string{"--load-id", id, "--max-rejects", "-1", "--format", "csv", "-", "resume_rerun"}
	data := readBack(t, in.path)
	if code, s, errOut := load(t, context.Background(), dsn, bytes.NewReader(data), args...); code != exitRejects || s.Written != in.good {
		t.Fatalf("first run: exit %d, summary %+v, stderr %.1000s", code, s, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code, s, errOut := load(t, ctx, dsn, &cancelAfter{r: bytes.NewReader(data), n: len(data) / 4, cancel: cancel}, args...)
	if code != exitFailure || !strings.Contains(s.Error, "interrupted") || s.Rows == 0 || s.Rows >= 100_000 ||
		s.Written != s.Resumed || s.Unknown != 0 {
		t.Errorf("interrupted rerun: exit %d, summary %+v; want exit 1, part of the rows read, only resumed ones written; stderr %.1000s", code, s, errOut)
	}
	code, s, errOut = load(t, context.Background(), dsn, bytes.NewReader(data), args...)
	if code != exitRejects || s.Written != in.good || s.Resumed != in.good || s.Rejected != int64(len(in.want.log)) {
		t.Errorf("third run: exit %d, summary %+v, stderr %.1000s", code, s, errOut)
	}
	in.checkExact(t, db, "resume_rerun")
}

// TestResumeMyISAM: --load-id needs transactional tables; on MyISAM the
// load is refused before anything is sent, and says so.
func TestResumeMyISAM(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	mustExec(t, db, "DROP TABLE IF EXISTS resume_myisam", "CREATE TABLE resume_myisam (id INT, n INT, s VARCHAR(40)) ENGINE=MyISAM")
	path := writeFile(t, t.TempDir(), "m.csv", []byte("id,n,s\n1,1,a\n"))
	code, s, errOut := load(t, context.Background(), dsn, nil, "--load-id", "myisam", path, "resume_myisam")
	if code != exitFailure || s.Written != 0 || !strings.Contains(errOut, "--load-id needs a target table and a ledger table that roll a transaction back") {
		t.Errorf("exit %d, summary %+v, stderr %s", code, s, errOut)
	}
	if n := countRows(t, db, "resume_myisam"); n != 0 {
		t.Errorf("%d rows written", n)
	}
}
