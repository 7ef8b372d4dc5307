package main

// The tests here run the command as a process: the test binary itself,
// which runs main instead of the tests when asCommand is set (see
// TestMain), so that exit statuses and signals go through main as they do
// for a user.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// asCommand, set to 1 in the environment, makes the test binary run main.
const asCommand = "BATCHLOAD_TEST_AS_COMMAND"

// command returns the command run as a process, on dsn ($MYSQL_DSN).
func command(ctx context.Context, dsn string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), asCommand+"=1", "MYSQL_DSN="+dsn)
	return cmd
}

// runCommand runs the command as a process and returns its exit status,
// stdout and stderr.
func runCommand(t *testing.T, dsn string, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := command(ctx, dsn, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errorsAs(err, &ee) {
		t.Fatalf("batchload %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func errorsAs(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// TestExitCodes runs the command as a process for each exit status.
func TestExitCodes(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.csv", []byte("id,n\n1,1\n2,2\n"))
	twoBad := writeFile(t, dir, "bad.csv", []byte("id,n\n1,1\n2,x\n3,3\n4,99999999999\n5,5\n"))
	for i, c := range []struct {
		name    string
		args    []string
		dsn     string
		code    int
		errText string
		written int64 // -1: no summary (a usage error)
	}{
		{"every row written", []string{good}, dsn, exitOK, "", 2},
		{"no such table", []string{good, "nosuch"}, dsn, exitFailure, "table nosuch not found", 0},
		{"no server", []string{good}, "root@tcp(127.0.0.1:1)/test?timeout=2s", exitFailure, "connect", 0},
		{"a wrong header", []string{writeFile(t, dir, "hdr.csv", []byte("id,nope\n1,1\n"))}, dsn, exitFailure, `does not have: "nope"`, 0},
		{"a bad flag", []string{"--mode", "merge", good}, dsn, exitUsage, `--mode "merge"`, -1},
		{"no arguments", nil, dsn, exitUsage, "want FILE and TABLE, got 0", -1},
		{"rejects within the budget", []string{"--max-rejects", "2", twoBad}, dsn, exitRejects, "rejected: column n", 3},
		{"a reject beyond the budget", []string{"--max-rejects", "1", "--workers", "1", twoBad}, dsn, exitBudget, "stopped: more than 1 rejects", -2},
		{"a reject with the default budget of 0", []string{twoBad}, dsn, exitBudget, "stopped: more than 0 rejects", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			table := "exitcodes"
			smallTable(t, db, table)
			args := append([]string{"--summary", "json", "--progress", "none"}, c.args...)
			if len(c.args) > 0 && !strings.HasPrefix(c.name, "no such") {
				args = append(args, table)
			}
			code, out, errOut := runCommand(t, c.dsn, nil, args...)
			if code != c.code || !strings.Contains(errOut, c.errText) {
				t.Errorf("case %d: exit %d, stderr %q; want exit %d with %q", i, code, errOut, c.code, c.errText)
			}
			if c.written == -1 {
				if out != "" {
					t.Errorf("a usage error printed a summary: %q", out)
				}
				return
			}
			var s summary
			if err := json.Unmarshal([]byte(out), &s); err != nil || s.Exit != code {
				t.Fatalf("summary %q (%v), exit %d", out, err, code)
			}
			if c.written >= 0 && s.Written != c.written || countRows(t, db, table) != s.Written {
				t.Errorf("summary %+v, want %d written, and the table to hold them", s, c.written)
			}
		})
	}
}

// TestSignals interrupts a load from a pipe with SIGINT, then SIGTERM: the
// command stops cleanly, exits 1 and prints an exact summary, which the
// table agrees with.
func TestSignals(t *testing.T) {
	dsn := serverDSN(t)
	db := openDB(t, dsn)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			smallTable(t, db, "signalled")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := command(ctx, dsn, "--summary", "json", "--progress", "none", "--format", "csv", "--columns", "id,n,s", "-", "signalled")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			const total = 20_000_000
			var fed atomic.Int64
			go func() { // rows until the command stops reading
				n, _ := io.Copy(stdin, &genReader{n: total})
				fed.Store(n)
				stdin.Close()
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			deadline := time.Now().Add(time.Minute)
			for countRows(t, db, "signalled") < 5000 {
				if time.Now().After(deadline) {
					t.Fatalf("no rows written after a minute; stderr %q", errOut.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("still running a minute after %v", sig)
			}
			code := cmd.ProcessState.ExitCode()
			var s summary
			if err := json.Unmarshal(out.Bytes(), &s); err != nil {
				t.Fatalf("summary %q: %v; stderr %q", out.String(), err, errOut.String())
			}
			n := countRows(t, db, "signalled")
			t.Logf("%v: exit %d, summary %+v; table %d rows", sig, code, s, n)
			if code != exitFailure || s.Exit != code || !strings.Contains(s.Error, "interrupted") || !strings.Contains(errOut.String(), "interrupted") {
				t.Errorf("exit %d, summary error %q, stderr %q; want exit 1, interrupted", code, s.Error, errOut.String())
			}
			if s.Rows != s.Written+s.Rejected+s.NotSent+s.Unknown || s.Rows == 0 || s.Rows >= total {
				t.Errorf("summary not exact, or the load did not stop half way: %+v", s)
			}
			if n < s.Written || n > s.Written+s.Unknown {
				t.Errorf("table has %d rows; the summary says %d written, %d unknown", n, s.Written, s.Unknown)
			}
		})
	}
}
