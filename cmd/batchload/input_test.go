package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestDetectFormat(t *testing.T) {
	for _, c := range []struct{ name, format, comp string }{
		{"a.csv", formatCSV, compNone},
		{"dir.x/A.CSV", formatCSV, compNone},
		{"a.csv.gz", formatCSV, compGzip},
		{"a.tsv.zst", formatTSV, compZstd},
		{"a.tab.zstd", formatTSV, compZstd},
		{"orders.txt", formatTSV, compNone},
		{"e.ndjson", formatNDJSON, compNone},
		{"e.jsonl.gz", formatNDJSON, compGzip},
		{"e.json", "", compNone},
		{"data", "", compNone},
		{"data.gz", "", compGzip},
		{"-", "", compNone},
	} {
		f, comp := detectFormat(c.name)
		if f != c.format || comp != c.comp {
			t.Errorf("detectFormat(%q) = %q, %q; want %q, %q", c.name, f, comp, c.format, c.comp)
		}
	}
}

const sample = "id,name\n1,\"a,b\"\n2,é\n"

// compressed returns sample compressed as comp.
func compressed(t *testing.T, comp string) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch comp {
	case compGzip:
		w = gzip.NewWriter(&b)
	case compZstd:
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return []byte(sample)
	}
	if _, err := io.WriteString(w, sample); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readInput opens name (or stdin) and returns what it reads.
func readInput(t *testing.T, name string, stdin io.Reader) (*input, string) {
	t.Helper()
	in, err := openInput(name, stdin)
	if err != nil {
		t.Fatalf("openInput(%q): %v", name, err)
	}
	defer in.close()
	b, err := io.ReadAll(in.r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return in, string(b)
}

func TestOpenInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ file, comp string }{
		{"a.csv", compNone}, {"a.csv.gz", compGzip}, {"a.csv.zst", compZstd},
		{"no-extension-gzip", compGzip}, {"no-extension-zstd", compZstd},
	} {
		path := filepath.Join(dir, c.file)
		data := compressed(t, c.comp)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		in, got := readInput(t, path, nil)
		if got != sample || in.comp != c.comp || in.size != int64(len(data)) || in.read.n.Load() != int64(len(data)) {
			t.Errorf("%s: read %q (compression %q, size %d, %d bytes counted), want %q (%q, %d)",
				c.file, got, in.comp, in.size, in.read.n.Load(), sample, c.comp, len(data))
		}
		// The same through stdin.
		in, got = readInput(t, "-", bytes.NewReader(data))
		if got != sample || in.comp != c.comp || in.size != -1 {
			t.Errorf("%s on stdin: read %q (compression %q, size %d)", c.file, got, in.comp, in.size)
		}
	}
}

func TestOpenInputErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.csv.gz")
	if err := os.WriteFile(plain, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openInput(plain, nil); err == nil || !strings.Contains(err.Error(), "not gzip-compressed") {
		t.Errorf("a .gz name on plain data: %v, want an error", err)
	}
	if _, err := openInput(filepath.Join(dir, "missing.csv"), nil); !os.IsNotExist(err) {
		t.Errorf("a missing file: %v, want not-exist", err)
	}
	trunc := filepath.Join(dir, "trunc.csv.gz")
	gz := compressed(t, compGzip)
	if err := os.WriteFile(trunc, gz[:len(gz)-6], 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := openInput(trunc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	rr := newRecordReader(formatCSV, in.r, "", false)
	for {
		if _, err = rr.Next(); err != nil {
			break
		}
	}
	if err == io.EOF {
		t.Errorf("a truncated gzip file read to a clean end")
	}
}
