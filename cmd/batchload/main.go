// Command batchload loads a CSV, TSV or NDJSON file into a MySQL or MariaDB
// table through the batch library: multi-row prepared statements on
// several connections, each value sent in the form that costs least to
// send and to convert for its column's type.
//
//	batchload [flags] FILE TABLE
//
// Run batchload --help for the flags and examples.
//
// Exit status: 0 when every row was written; 3 when the load finished with
// records rejected within --max-rejects; 4 when it stopped at a reject
// beyond it; 1 on any other failure (the database, the input, an
// interruption, a --load-id rerun of another input); 2 on a command line
// that cannot work (see usage.go). With --load-id the load is exactly-once
// and resumable (ledger.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/batchsql/batch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process the default way
	}()
	os.Exit(run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Getenv))
}

// stdio is where a run reads and writes.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitRejects = 3 // finished, with rejects within the budget
	exitBudget  = 4 // stopped at a reject beyond the budget
)

// errInterrupted is the error of a load stopped by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// run is the whole command: it parses args, loads, prints the summary and
// returns the exit status. ctx is cancelled on SIGINT and SIGTERM.
func run(ctx context.Context, args []string, std stdio, getenv func(string) string) int {
	cfg, err := parseArgs(args, getenv)
	if errors.Is(err, errHelp) {
		fmt.Fprint(std.out, usageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(std.err, "batchload: %v\nUsage: batchload [flags] FILE TABLE\nRun 'batchload --help' for usage.\n", err)
		return exitUsage
	}
	start := time.Now()
	l := &loader{cfg: cfg, msg: &msgWriter{w: std.err}, report: newReporter(cfg.progress, std.err)}
	err = l.run(ctx, std.in)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", errInterrupted, err)
	}
	code := l.exitCode(err)
	if err != nil {
		fmt.Fprintf(std.err, "batchload: %v\n", err)
	}
	s := l.summary(time.Since(start), err, code)
	if cfg.summary == "json" {
		s.writeJSON(std.out)
	} else {
		s.writeText(std.err)
	}
	return code
}

// exitCode is the exit status for a load's error.
func (l *loader) exitCode(err error) int {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitFailure
	case errors.Is(err, batch.ErrTooManyRejects),
		l.cfg.maxRejects == 0 && refusesRow(err, l.cfg.mode == modeInsert):
		return exitBudget
	case err != nil:
		return exitFailure
	case l.t != nil && l.t.rejected.Load() > 0:
		return exitRejects
	}
	return exitOK
}
