package main

import (
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

// reporter shows a load's progress while it runs.
type reporter interface {
	// start begins reporting on l, whose writer now exists, and returns
	// the function that stops it (and waits until it has stopped).
	start(l *loader) (stop func())
}

// msgWriter is where the messages of a running load go (stderr), switched
// to the bar while one is drawn, which prints them above itself.
type msgWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (m *msgWriter) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w.Write(b)
}

// set makes w the destination.
func (m *msgWriter) set(w io.Writer) {
	m.mu.Lock()
	m.w = w
	m.mu.Unlock()
}

// noReporter reports nothing.
type noReporter struct{}

func (noReporter) start(*loader) func() { return func() {} }

// progressEvery is the interval of --progress json (a variable for tests).
var progressEvery = time.Second

// newReporter returns the reporter --progress asks for, writing to out
// (stderr). auto is a bar on a terminal and nothing elsewhere.
func newReporter(mode string, out io.Writer) reporter {
	if mode == "auto" {
		mode = "none"
		if isTerminal(out) {
			mode = "bar"
		}
	}
	switch mode {
	case "json":
		return &jsonReporter{out: out, every: progressEvery}
	case "bar":
		return &barReporter{out: out}
	}
	return noReporter{}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// snapshot is the progress of a load at one moment, as a JSON line shows it.
type snapshot struct {
	Elapsed      float64 `json:"elapsed_s"`
	RowsRead     int64   `json:"rows_read"`     // data records read
	RowsWritten  int64   `json:"rows_written"`  // confirmed by the server
	RowsRejected int64   `json:"rows_rejected"` // within --max-rejects
	RowsPerSec   float64 `json:"rows_per_s"`    // written per second so far
	InputBytes   int64   `json:"input_bytes"`   // of the file as stored (compressed or not)
	InputSize    int64   `json:"input_size,omitempty"`
}

// take returns l's progress since start.
func take(l *loader, start time.Time) snapshot {
	el := time.Since(start).Seconds()
	s := snapshot{Elapsed: el, RowsRead: l.rows.Load(), RowsWritten: l.written.Load(), InputBytes: l.in.read.n.Load()}
	s.RowsWritten = min(s.RowsWritten, s.RowsRead) // a resumed load's count holds the rows an earlier run committed, read or not yet
	if l.t != nil {
		s.RowsRejected = l.t.rejected.Load()
	}
	if l.in.size > 0 {
		s.InputSize = l.in.size
	}
	if el > 0 {
		s.RowsPerSec = float64(s.RowsWritten) / el
	}
	return s
}

// jsonReporter writes one JSON object a line, every interval.
type jsonReporter struct {
	out   io.Writer
	every time.Duration
}

func (r *jsonReporter) start(l *loader) func() {
	start := time.Now()
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(r.every)
		defer t.Stop()
		enc := json.NewEncoder(r.out)
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = enc.Encode(take(l, start))
			}
		}
	}()
	return func() { close(done); <-stopped }
}
