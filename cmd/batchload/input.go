package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Input formats.
const (
	formatCSV    = "csv"
	formatTSV    = "tsv"
	formatNDJSON = "ndjson"
)

// Compressions.
const (
	compNone = ""
	compGzip = "gzip"
	compZstd = "zstd"
)

// formatExts maps a file name's extension, lower-cased, to its format.
// .txt is TSV: it is what mysqldump --tab and SELECT ... INTO OUTFILE
// usually write, in LOAD DATA's default format.
var formatExts = map[string]string{
	".csv":    formatCSV,
	".tsv":    formatTSV,
	".tab":    formatTSV,
	".txt":    formatTSV,
	".ndjson": formatNDJSON,
	".jsonl":  formatNDJSON,
}

// compExts maps a compressed file's last extension to its compression.
var compExts = map[string]string{
	".gz":   compGzip,
	".zst":  compZstd,
	".zstd": compZstd,
}

// detectFormat returns the format and compression a file name's extensions
// say, e.g. "csv", "gzip" for data.CSV.gz. Either is empty when the name
// does not say.
func detectFormat(name string) (format, comp string) {
	base := strings.ToLower(filepath.Base(name))
	ext := filepath.Ext(base)
	if c, ok := compExts[ext]; ok {
		comp = c
		base = strings.TrimSuffix(base, ext)
		ext = filepath.Ext(base)
	}
	return formatExts[ext], comp
}

// Magic numbers at the start of compressed data.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniff returns the compression the first bytes of data show.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return compGzip
	case bytes.HasPrefix(head, zstdMagic):
		return compZstd
	}
	return compNone
}

// input is an opened, decompressed input.
type input struct {
	name  string    // the file name, or "-" for stdin
	r     io.Reader // the decompressed data
	comp  string    // the compression found
	size  int64     // the size on disk (compressed), -1 when unknown
	read  *counter  // bytes read from the file (compressed), for progress
	close func() error
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n atomic.Int64
}

// Read reads from the counted reader.
func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// openInput opens the file name ("-" for stdin) and decompresses it when
// its first bytes are gzip or zstd. A name ending in .gz or .zst whose data
// is not compressed that way is an error.
func openInput(name string, stdin io.Reader) (*input, error) {
	in := &input{name: name, size: -1, close: func() error { return nil }}
	var raw io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			in.size = fi.Size()
		}
		raw, in.close = f, f.Close
	}
	in.read = &counter{r: raw}
	br := bufio.NewReaderSize(in.read, 1<<16)
	head, _ := br.Peek(4) // a short or failing peek shows up on the first read
	in.comp = sniff(head)
	if _, want := detectFormat(name); want != compNone && want != in.comp {
		in.close()
		return nil, fmt.Errorf("%s: the name says %s but the data is not %s-compressed", name, want, want)
	}
	if err := in.decompress(br); err != nil {
		in.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

// decompress sets in.r to the decompressed data of br.
func (in *input) decompress(br *bufio.Reader) error {
	switch in.comp {
	case compGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		in.r = zr
	case compZstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return err
		}
		in.r = zr
		fileClose := in.close
		in.close = func() error { zr.Close(); return fileClose() }
	default:
		in.r = br
	}
	return nil
}

// newRecordReader returns the reader of format for in. nullSet says
// whether null is a token (CSV and TSV only).
func newRecordReader(format string, r io.Reader, null string, nullSet bool) RecordReader {
	switch format {
	case formatTSV:
		return newTSVReader(r, null, nullSet)
	case formatNDJSON:
		return newNDJSONReader(r)
	}
	return newCSVReader(r, null, nullSet)
}
