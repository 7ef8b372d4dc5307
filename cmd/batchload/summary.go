package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/batchsql/batch"
)

// summary is what a load did, exact even when it failed or was
// interrupted: every data record read is in exactly one of written,
// rejected, not sent and unknown. Rows are numbered from 0 in input order,
// counting data records only (not the header, nor blank lines); ranges are
// [first, end) pairs.
type summary struct {
	File     string   `json:"file"`
	Table    string   `json:"table"`
	Format   string   `json:"format"`
	Mode     string   `json:"mode"`
	DryRun   bool     `json:"dry_run"`
	Rows     int64    `json:"rows"`     // data records read
	Written  int64    `json:"written"`  // rows confirmed written (rolled back on a dry run), resumed ones included
	Resumed  int64    `json:"resumed"`  // --load-id: rows of written that earlier runs committed (passed over)
	Rejected int64    `json:"rejected"` // records refused, within --max-rejects
	NotSent  int64    `json:"not_sent"` // rows not written: never sent, or refused beyond the budget
	Unknown  int64    `json:"unknown"`  // rows sent whose outcome is unknown
	NotSentR [][2]int `json:"not_sent_ranges,omitempty"`
	UnknownR [][2]int `json:"unknown_ranges,omitempty"`
	Rejects  string   `json:"rejects_file,omitempty"` // --rejects PATH, when it holds rejects
	LoadID   string   `json:"load_id,omitempty"`
	Elapsed  float64  `json:"elapsed_s"`
	RowsPerS float64  `json:"rows_per_s"` // written per second (resumed rows aside), over the whole run
	Exit     int      `json:"exit_code"`
	Error    string   `json:"error,omitempty"`
}

// summary reads the summary off a finished load.
func (l *loader) summary(elapsed time.Duration, err error, code int) summary {
	s := summary{File: l.cfg.file, Table: l.cfg.table, Format: l.cfg.format, Mode: l.cfg.mode,
		DryRun: l.cfg.dryRun, Elapsed: elapsed.Seconds(), Exit: code}
	if err != nil {
		s.Error = err.Error()
	}
	s.LoadID = l.cfg.loadID
	t := l.t
	if t == nil {
		return s
	}
	s.Rows = int64(t.rows)
	// The writer's rows are the records read, but a last one it did not
	// count; its Result covers them, and with a ledger the rows of earlier
	// runs beyond them too (a rerun stopped before it read so far), which
	// are no rows of this run's summary.
	n := t.rows
	var lost []batch.Range
	if t.uncounted >= 0 {
		n, lost = t.uncounted, []batch.Range{{First: t.uncounted, End: t.uncounted + 1}}
	}
	r := l.res // zero when the writer was never made: no record was given to it
	s.Written, _ = count(clipRanges(r.Written, n))
	s.Rejected = int64(r.Rejects)
	if l.resumedLedger() {
		s.Resumed = l.ledger.resumed(n)
		s.Rejected -= int64(len(l.ledger.rejects) - l.ledger.rejectsBelow(n))
	}
	if s.Rejected > 0 && t.files != nil {
		s.Rejects = l.cfg.rejects
	}
	s.NotSent, s.NotSentR = count(mergeRanges(append(clipRanges(r.NotSent, n), lost...)))
	s.Unknown, s.UnknownR = count(clipRanges(r.Unknown, n))
	if s.Elapsed > 0 {
		s.RowsPerS = float64(s.Written-s.Resumed) / s.Elapsed
	}
	return s
}

// resumedLedger reports whether the library read the ledger's earlier
// runs into the Result: it does when the load's first rows are handed to
// its workers, so not when the load failed before.
func (l *loader) resumedLedger() bool {
	if l.ledger == nil || len(l.ledger.spans) == 0 {
		return false
	}
	if total := l.ledger.resumed(l.ledger.end()); total > 0 {
		return l.res.Resumed > 0
	}
	return l.res.Rejects >= len(l.ledger.rejects) // ranges of rejects only: the best guess
}

// count returns the rows in ranges, and the ranges as [first, end) pairs.
func count(ranges []batch.Range) (int64, [][2]int) {
	var n int64
	var out [][2]int
	for _, r := range ranges {
		n += int64(r.Len())
		out = append(out, [2]int{r.First, r.End})
	}
	return n, out
}

// writeJSON writes the summary as one JSON object (--summary json).
func (s summary) writeJSON(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
}

// writeText writes the summary as one line for a person.
func (s summary) writeText(w io.Writer) {
	dry := ""
	if s.DryRun {
		dry = " (dry run: rolled back)"
	}
	resumed := ""
	if s.LoadID != "" {
		resumed = fmt.Sprintf(" (%d resumed)", s.Resumed)
	}
	fmt.Fprintf(w, "batchload: %s: %d rows, %d written%s%s, %d rejected, %d not sent, %d unknown in %.2fs (%.0f rows/s)\n",
		s.Table, s.Rows, s.Written, resumed, dry, s.Rejected, s.NotSent, s.Unknown, s.Elapsed, s.RowsPerS)
}
