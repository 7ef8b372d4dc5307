package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const testDSN = "root@tcp(127.0.0.1:1)/test"

// env returns a getenv with MYSQL_DSN set to dsn.
func env(dsn string) func(string) string {
	return func(k string) string {
		if k == "MYSQL_DSN" {
			return dsn
		}
		return ""
	}
}

func TestParseArgs(t *testing.T) {
	c, err := parseArgs([]string{"data.csv.gz", "--mode", "upsert", "db.t", "--workers=4", "--summary", "json", "--null", ""}, env(testDSN))
	if err != nil {
		t.Fatal(err)
	}
	want := &config{file: "data.csv.gz", table: "db.t", dsn: testDSN, format: formatCSV, header: true, null: "", nullSet: true,
		mode: modeUpsert, workers: 4, progress: "auto", summary: "json"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}

	for _, c := range []struct {
		args []string
		want func(*config) bool
	}{
		{[]string{"x.tsv", "t"}, func(c *config) bool { return c.format == formatTSV && c.null == `\N` && c.nullSet && c.header }},
		{[]string{"x.csv", "t"}, func(c *config) bool { return !c.nullSet }},
		{[]string{"--columns", "a, b", "x.csv", "t"}, func(c *config) bool { return !c.header && reflect.DeepEqual(c.columns, []string{"a", "b"}) }},
		{[]string{"--format", "ndjson", "-", "t"}, func(c *config) bool { return c.file == "-" && !c.header }},
		{[]string{"--", "-x.csv", "t"}, func(c *config) bool { return c.file == "-x.csv" }},
		{[]string{"--dsn", "u@tcp(h:1)/d", "x.jsonl", "t"}, func(c *config) bool { return c.dsn == "u@tcp(h:1)/d" && c.format == formatNDJSON }},
		{[]string{"--header=false", "x.txt", "t", "--dry-run"}, func(c *config) bool { return !c.header && c.dryRun }},
		{[]string{"--max-rejects", "-1", "--rejects", filepath.Join(t.TempDir(), "r.csv"), "x.csv", "t"},
			func(c *config) bool { return c.maxRejects == -1 && strings.HasSuffix(c.rejects, "r.csv") }},
		{[]string{"--max-rejects", "5", "x.csv", "t"}, func(c *config) bool { return c.maxRejects == 5 }},
	} {
		got, err := parseArgs(c.args, env(testDSN))
		if err != nil || !c.want(got) {
			t.Errorf("%q: %+v, %v", c.args, got, err)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		dsn  string
		want string
	}{
		{[]string{"x.csv"}, testDSN, "want FILE and TABLE"},
		{[]string{"x.csv", "t", "u"}, testDSN, "want FILE and TABLE"},
		{[]string{"x.csv", "t"}, "", "no DSN"},
		{[]string{"x.csv", "t"}, "not a dsn", "DSN does not parse"},
		{[]string{"x.json", "t"}, testDSN, "cannot tell the format"},
		{[]string{"-", "t"}, testDSN, "--format csv|tsv|ndjson is needed"},
		{[]string{"--format", "xml", "x.csv", "t"}, testDSN, `--format "xml"`},
		{[]string{"--mode", "merge", "x.csv", "t"}, testDSN, `--mode "merge"`},
		{[]string{"--workers", "0", "x.csv", "t"}, testDSN, "--workers 0"},
		{[]string{"--progress", "fancy", "x.csv", "t"}, testDSN, `--progress "fancy"`},
		{[]string{"--summary", "xml", "x.csv", "t"}, testDSN, `--summary "xml"`},
		{[]string{"--columns", "a,,b", "x.csv", "t"}, testDSN, "empty column name"},
		{[]string{"--header", "--columns", "a", "x.csv", "t"}, testDSN, "--columns names the columns of an input without a header"},
		{[]string{"--null", "x", "x.ndjson", "t"}, testDSN, "--null does not apply to ndjson"},
		{[]string{"--header=false", "x.ndjson", "t"}, testDSN, "--header does not apply to ndjson"},
		{[]string{"--nope", "x.csv", "t"}, testDSN, "flag provided but not defined: -nope"},
		{[]string{"--workers", "many", "x.csv", "t"}, testDSN, `invalid value "many"`},
		{[]string{"--max-rejects", "-2", "x.csv", "t"}, testDSN, "--max-rejects -2"},
		{[]string{"--rejects", "-", "x.csv", "t"}, testDSN, `--rejects "-": want a file path`},
		{[]string{"--rejects", "/no/such/dir/r.csv", "x.csv", "t"}, testDSN, "does not exist"},
		{[]string{"--rejects", "x.csv", "x.csv", "t"}, testDSN, "would overwrite the input file"},
		{[]string{"--rejects", "x", "x.log", "t", "--format", "csv"}, testDSN, "would overwrite the input file"},
		{[]string{"--load-id", "a b", "x.csv", "t"}, testDSN, "--load-id \"a b\""},
		{[]string{"--load-id", "nightly-2024-01-01", "--dry-run", "x.csv", "t"}, testDSN, "a --dry-run commits nothing"},
		{[]string{"--ledger-table", "l", "x.csv", "t"}, testDSN, "--ledger-table is the ledger of --load-id"},
		{[]string{"--load-id", "x", "--ledger-table", "T", "x.csv", "t"}, testDSN, "is the table loaded"},
		{[]string{"--load-id", "x", "--ledger-table", "db.", "x.csv", "t"}, testDSN, "--ledger-table \"db.\""},
		{[]string{"--load-id", strings.Repeat("x", 192), "x.csv", "t"}, testDSN, "want 1 to 191 printable"},
	} {
		_, err := parseArgs(c.args, env(c.dsn))
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
}

// runMain runs the command in-process, with stdin and the environment
// given, and returns its exit status, stdout and stderr.
func runMain(ctx context.Context, stdin io.Reader, getenv func(string) string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(ctx, args, stdio{in: stdin, out: &out, err: &errOut}, getenv)
	return code, out.String(), errOut.String()
}

// TestUsageText: --help tells every flag, every exit status and the
// formats, in lines that fit a terminal of 80 columns.
func TestUsageText(t *testing.T) {
	var columns string
	newFlagSet(&config{}, &columns, env("")).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(usageText, "\n  --"+f.Name+" ") {
			t.Errorf("--help does not tell --%s", f.Name)
		}
	})
	for _, want := range []string{"--help", "\n  0  ", "\n  1  ", "\n  2  ", "\n  3  ", "\n  4  ", "\n  csv ", "\n  tsv ", "\n  ndjson ", "$MYSQL_DSN"} {
		if !strings.Contains(usageText, want) {
			t.Errorf("--help does not tell %q", want)
		}
	}
	for i, l := range strings.Split(usageText, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("--help line %d is %d characters: %q", i+1, n, l)
		}
	}
}

func TestUsageExits(t *testing.T) {
	code, out, _ := runMain(context.Background(), nil, env(""), "--help")
	if code != exitOK || !strings.Contains(out, "Usage:\n  batchload [flags] FILE TABLE") || !strings.Contains(out, "Examples:") {
		t.Errorf("--help: exit %d, output %q", code, out)
	}
	code, out, errOut := runMain(context.Background(), nil, env(testDSN), "--mode", "merge", "x.csv", "t")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "Run 'batchload --help' for usage.") {
		t.Errorf("bad flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A server that cannot be reached is a failure (1), not a usage error,
	// and the JSON summary still comes out.
	code, out, _ = runMain(context.Background(), strings.NewReader("a\n1\n"), env(testDSN), "--format", "csv", "--summary", "json", "-", "t")
	if code != exitFailure || !strings.Contains(out, `"exit_code":1`) {
		t.Errorf("no server: exit %d, summary %q", code, out)
	}
}
