package main

import (
	"fmt"
	"io"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// barRefresh is how often the bar is moved and drawn.
const barRefresh = 200 * time.Millisecond

// barReporter draws a progress bar: the share of the input file read (of
// its size on disk, so compressed files too), rows written, rows/s and the
// time left. On stdin, whose size is unknown, it shows rows and rows/s.
type barReporter struct {
	out io.Writer
}

func (r *barReporter) start(l *loader) func() {
	start := time.Now()
	p := mpb.New(mpb.WithOutput(r.out), mpb.WithAutoRefresh(), mpb.WithRefreshRate(barRefresh), mpb.WithWidth(60))
	total := max(l.in.size, 0)
	rows := decor.Any(func(decor.Statistics) string {
		s := take(l, start)
		if s.RowsRejected > 0 {
			return fmt.Sprintf("%d rows  %d rejected  %.0f rows/s", s.RowsWritten, s.RowsRejected, s.RowsPerSec)
		}
		return fmt.Sprintf("%d rows  %.0f rows/s", s.RowsWritten, s.RowsPerSec)
	})
	var opts []mpb.BarOption
	if total > 0 {
		opts = append(opts,
			mpb.PrependDecorators(decor.Name("batchload "), decor.Percentage(decor.WC{W: 5})),
			mpb.AppendDecorators(rows, decor.Name("  ETA "), decor.OnComplete(decor.NewAverageETA(decor.ET_STYLE_GO, start, nil), "done")))
	} else {
		opts = append(opts, mpb.PrependDecorators(decor.Name("batchload ")), mpb.AppendDecorators(rows))
	}
	bar := p.AddBar(total, opts...)
	l.msg.set(p) // messages print above the bar

	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(barRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// The reader runs ahead of the writer: the bar is full
				// only when the load is.
				bar.SetCurrent(min(l.in.read.n.Load(), max(total-1, 0)))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		l.msg.set(r.out)
		finishBar(bar, l, total)
		p.Wait()
	}
}

// finishBar completes the bar when the whole input was read, and aborts it
// (leaving it on screen) otherwise.
func finishBar(bar *mpb.Bar, l *loader, total int64) {
	read := l.in.read.n.Load()
	switch {
	case total == 0:
		bar.SetTotal(-1, true)
	case read >= total:
		bar.SetCurrent(total)
	default:
		bar.SetCurrent(read)
		bar.Abort(false)
	}
}
