package main

// Rejects: records refused, by this tool (malformed, the wrong number of
// fields, a value it would not let the server coerce; see convert.go) or
// by the server (a row refused for its own values; see batch.MaxRejects),
// are skipped and counted against one budget, --max-rejects, which the
// library keeps: a record refused here is handed to batch.Writer.Reject,
// so that it keeps its place in the writer's numbering (the writer's rows
// are the input's data records, numbered from 0, header and blank lines
// aside) and counts like a row the server refused. Over the budget, the
// load stops: exit status 4. With rejects within it, the load finishes:
// exit status 3.
// The tracker follows the records from the input to the rejects file.
// With a budget (or rejects recalled from the ledger, see ledger.go), the
// records given to the writer since the last settle are kept (their raw
// bytes too with --rejects), and every windowRows records (or windowBytes
// of raw bytes) the writer is flushed: every row so far is then written or
// rejected, its refusal given to batch.OnReject, so the rejects of the
// window can be written out, in input order, and the window dropped.
// Memory stays bounded, the reject files hold the records in the order of
// the input, and a row refused is matched to its record exactly, by its
// row.

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
	"github.com/klauspost/compress/zstd"

	"github.com/batchsql/batch"
)

// The window of records kept until they are settled (variables for the
// tests, which make them tiny).
var (
	windowRows  = 1 << 16
	windowBytes = 64 << 20
)

// maxShown is how many rejects are told on stderr, one line each.
const maxShown = 10

// entry is one data record on its way.
type entry struct {
	row      int // its row: the data record's number, from 0
	line     int
	offset   int64
	raw      []byte // the record as read (with --rejects)
	recalled error  // the server's refusal of it in an earlier run of the load (--load-id)
}

// tracker follows the records of one load (see the top of this file).
type tracker struct {
	file    string // the input, as named on the command line
	window  bool   // the records are kept until settled: rejects are possible
	keepRaw bool   // --rejects: the records' raw bytes are kept
	errOut  io.Writer
	files   *rejectFiles // nil without --rejects

	// Written by the reading goroutine only.
	rows      int     // data records read
	uncounted int     // a record read that the writer did not count (its own checks refused it), or -1
	recs      []entry // records not yet settled, in input order
	rawBytes  int
	recalled  []batch.Rejection // the earlier runs' server rejects (from the ledger) not yet met, by row
	shown     int
	emitted   int
	finished  bool

	mu       sync.Mutex    // guards refused: OnReject runs on a worker
	refused  map[int]error // row → its refusal in this run (here or by the server), not yet settled
	rejected atomic.Int64  // rejects so far: this run's, and those recalled from the ledger met
}

// newTracker returns the tracker of a load. recalled are the rejects of
// the earlier runs that the ledger holds (nil without --load-id).
func newTracker(cfg *config, errOut io.Writer, recalled []batch.Rejection) *tracker {
	window := cfg.maxRejects != 0 || len(recalled) > 0
	return &tracker{file: cfg.file, window: window, keepRaw: window && cfg.rejects != "",
		errOut: errOut, uncounted: -1, recalled: recalled, refused: map[int]error{}}
}

// read records a data record read, given to the writer next (by Write or
// Reject), and returns its row.
func (t *tracker) read(rec *Record) int {
	e := entry{row: t.rows, line: rec.Line, offset: rec.Offset}
	t.rows++
	for len(t.recalled) > 0 && t.recalled[0].Row <= e.row {
		if t.recalled[0].Row == e.row {
			e.recalled = t.recalled[0].Err
			t.rejected.Add(1)
		}
		t.recalled = t.recalled[1:]
	}
	if t.keepRaw {
		e.raw = append([]byte(nil), rec.Raw...)
		t.rawBytes += len(e.raw)
	}
	t.recs = append(t.recs, e)
	if !t.window && len(t.recs) >= 2*windowRows {
		// No rejects are possible: only the last records are kept, to
		// name the line of a row in an error.
		n := copy(t.recs, t.recs[len(t.recs)-windowRows:])
		t.recs = t.recs[:n]
	}
	return e.row
}

// notCounted records that the writer refused the last record read before
// counting it (a value it cannot send): it is not sent.
func (t *tracker) notCounted() { t.uncounted = t.rows - 1 }

// onReject is the writer's batch.OnReject: a row refused in this run, by
// the server for its values or here (Writer.Reject).
func (t *tracker) onReject(r batch.Rejection) {
	t.mu.Lock()
	t.refused[r.Row] = r.Err
	t.mu.Unlock()
	t.rejected.Add(1)
}

// due reports whether the window is full: time to flush and settle.
func (t *tracker) due() bool {
	return t.window && (len(t.recs) >= windowRows || t.rawBytes >= windowBytes)
}

// settle writes out the rejects of the window, in input order, and drops
// it. Every row given to the writer must be settled (after a Flush, or
// Close): its refusal, if any, is known.
func (t *tracker) settle() error {
	if !t.window {
		return nil
	}
	var err error
	for _, e := range t.recs {
		t.mu.Lock()
		cause, ok := t.refused[e.row]
		delete(t.refused, e.row)
		t.mu.Unlock()
		var note string
		if !ok && e.recalled != nil {
			cause, note = e.recalled, " (by an earlier run of the load: recalled from the ledger)"
		}
		if cause != nil && err == nil {
			err = t.emit(e, cause, note)
		}
	}
	t.recs, t.rawBytes = t.recs[:0], 0
	return err
}

// emit reports one reject: a line on stderr (the first maxShown), and its
// record and log line in the reject files.
func (t *tracker) emit(e entry, cause error, note string) error {
	t.emitted++
	if t.shown < maxShown {
		t.shown++
		fmt.Fprintf(t.errOut, "batchload: %s: line %d (byte %d): rejected: %v%s\n", t.file, e.line, e.offset, cause, note)
	}
	if t.files == nil {
		return nil
	}
	return t.files.add(e, cause)
}

// finish settles the rest after the writer's Close and closes the reject
// files.
func (t *tracker) finish() error {
	if t.finished {
		return nil
	}
	t.finished = true
	err := t.settle()
	if t.emitted > t.shown {
		where := ""
		if t.files != nil {
			where = ": see " + t.files.logPath
		}
		fmt.Fprintf(t.errOut, "batchload: %d more rejects not shown%s\n", t.emitted-t.shown, where)
	}
	if t.files != nil {
		if cerr := t.files.close(); err == nil {
			err = cerr
		}
	}
	return err
}

// locate returns the entry of a row, if it is still kept.
func (t *tracker) locate(row int) (entry, bool) {
	i := sort.Search(len(t.recs), func(i int) bool { return t.recs[i].row >= row })
	if i < len(t.recs) && t.recs[i].row == row {
		return t.recs[i], true
	}
	return entry{}, false
}

// mergeRanges sorts ranges and joins those that touch.
func mergeRanges(rs []batch.Range) []batch.Range {
	sort.Slice(rs, func(i, j int) bool { return rs[i].First < rs[j].First })
	var out []batch.Range
	for _, r := range rs {
		if n := len(out); n > 0 && r.First <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// clipRanges returns the parts of sorted ranges below n.
func clipRanges(rs []batch.Range, n int) []batch.Range {
	var out []batch.Range
	for _, r := range rs {
		if r.First >= n {
			break
		}
		out = append(out, batch.Range{First: r.First, End: min(r.End, n)})
	}
	return out
}

// rejectError is a record refused with the budget spent: the load stopped.
type rejectError struct {
	file   string
	line   int // -1 when no longer known
	offset int64
	cause  error // why the record was refused
	budget int
	err    error // the library's error, wrapping batch.ErrTooManyRejects
}

func (e *rejectError) Error() string {
	where := e.file
	if e.line >= 0 {
		where = fmt.Sprintf("%s: line %d (byte %d)", e.file, e.line, e.offset)
	}
	return fmt.Sprintf("%s: %v: stopped: more than %d rejects (--max-rejects %d)", where, e.cause, e.budget, e.budget)
}

func (e *rejectError) Unwrap() []error { return []error{e.err, e.cause} }

// overBudget returns err, the library's error for a row refused beyond
// the budget (batch.ErrTooManyRejects), as a *rejectError naming the
// record when it is still known; cause is the refusal, nil for the
// server's (read from err). Other errors are returned as they are.
func (t *tracker) overBudget(err error, cause error, budget int) error {
	var ce *batch.ChunkError
	if !errors.Is(err, batch.ErrTooManyRejects) || !errors.As(err, &ce) {
		return err
	}
	if cause == nil {
		var me *mysql.MySQLError
		if !errors.As(ce.Err, &me) {
			return err
		}
		cause = me
	}
	e := &rejectError{file: t.file, line: -1, cause: cause, budget: budget, err: err}
	if loc, ok := t.locate(ce.Row); ok && ce.Row >= 0 {
		e.line, e.offset = loc.line, loc.offset
	}
	return e
}

// refusesRow reports whether err is the server refusing a row for its own
// values, as batch.MaxRejects lists them: with the default budget of 0 the
// library stops at such a row with a plain *batch.ChunkError, which this
// tool reports as over the budget (exit status 4) like any other.
func refusesRow(err error, dupIsRow bool) bool {
	var ce *batch.ChunkError
	var me *mysql.MySQLError
	if !errors.As(err, &ce) || !errors.As(ce.Err, &me) {
		return false
	}
	switch me.Number {
	case 1048, 1264, 1265, 1292, 1366, 1406, 1452, 1644, 3819, 4025:
		return true
	case 1062:
		return dupIsRow
	}
	return false
}

// rejectFiles are --rejects PATH, the refused records exactly as read, and
// PATH.log, one JSON object a line for each.
type rejectFiles struct {
	file          string // the input, as named on the command line
	path, logPath string
	header        []byte // the input's header record, written before the first reject
	started       bool

	data   *os.File
	dataW  *bufio.Writer
	zw     io.WriteCloser // the compressor for a .gz or .zst PATH, else nil
	log    *os.File
	logW   *bufio.Writer
	logEnc *json.Encoder
}

// rejectLine is one line of PATH.log.
type rejectLine struct {
	File     string  `json:"file"`
	Line     int     `json:"line"`
	Offset   int64   `json:"offset"`
	Row      int     `json:"row"`
	Code     *uint16 `json:"code"`     // the server's error number; null for a record refused here
	SQLState *string `json:"sqlstate"` // the server's SQLSTATE; null for a record refused here
	Message  string  `json:"message"`
	Source   string  `json:"source"` // "server" or "batchload"
}

// createRejects creates (or truncates) PATH and PATH.log. header is the
// input's header record, nil for none. A PATH ending in .gz or .zst is
// compressed so.
func createRejects(path, file string, header []byte) (*rejectFiles, error) {
	r := &rejectFiles{file: file, path: path, logPath: path + ".log", header: header}
	var err error
	if r.data, err = os.Create(path); err != nil {
		return nil, err
	}
	if r.log, err = os.Create(r.logPath); err != nil {
		r.data.Close()
		return nil, err
	}
	r.dataW = bufio.NewWriterSize(r.data, 1<<16)
	switch _, comp := detectFormat(path); comp {
	case compGzip:
		r.zw = gzip.NewWriter(r.dataW)
	case compZstd:
		if r.zw, err = zstd.NewWriter(r.dataW); err != nil {
			r.data.Close()
			r.log.Close()
			return nil, err
		}
	}
	r.logW = bufio.NewWriterSize(r.log, 1<<16)
	r.logEnc = json.NewEncoder(r.logW)
	r.logEnc.SetEscapeHTML(false)
	return r, nil
}

// out is where the records go: the compressor, or the buffered file.
func (r *rejectFiles) out() io.Writer {
	if r.zw != nil {
		return r.zw
	}
	return r.dataW
}

// add writes a reject: its record (after the header, the first time) and
// its log line.
func (r *rejectFiles) add(e entry, cause error) error {
	if !r.started {
		r.started = true
		if _, err := r.out().Write(r.header); err != nil {
			return fmt.Errorf("--rejects %s: %w", r.path, err)
		}
	}
	if _, err := r.out().Write(e.raw); err != nil {
		return fmt.Errorf("--rejects %s: %w", r.path, err)
	}
	l := rejectLine{File: r.file, Line: e.line, Offset: e.offset, Row: e.row, Message: cause.Error(), Source: "batchload"}
	var me *mysql.MySQLError
	if errors.As(cause, &me) {
		state := strings.TrimRight(string(me.SQLState[:]), "\x00")
		l.Code, l.SQLState, l.Message, l.Source = &me.Number, &state, me.Message, "server"
	}
	if err := r.logEnc.Encode(l); err != nil {
		return fmt.Errorf("--rejects %s: %w", r.logPath, err)
	}
	return nil
}

// close flushes and closes both files.
func (r *rejectFiles) close() error {
	var errs []error
	if r.zw != nil {
		errs = append(errs, r.zw.Close())
	}
	errs = append(errs, r.dataW.Flush(), r.data.Close(), r.logW.Flush(), r.log.Close())
	return errors.Join(errs...)
}
