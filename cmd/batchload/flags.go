package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// config is the command line, parsed and checked.
type config struct {
	file, table string

	dsn        string
	format     string // csv, tsv or ndjson: the flag, else from the name
	header     bool
	columns    []string
	null       string
	nullSet    bool // null is a token (CSV: only with --null)
	mode       string
	workers    int // 0: the library's default
	maxRejects int
	rejects    string
	loadID     string // "" without --load-id
	ledger     string // --ledger-table; "" without --load-id
	dryRun     bool
	progress   string // auto, bar, json or none
	summary    string // "" (a line of text on stderr) or json
}

// Load modes.
const (
	modeInsert  = "insert"
	modeReplace = "replace"
	modeIgnore  = "ignore"
	modeUpsert  = "upsert"
)

// usageError is a command line that cannot work, whatever the input and
// the database hold: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp is returned by parseArgs for --help: print the usage, exit 0.
var errHelp = flag.ErrHelp

// parseArgs parses the arguments (without the program name). getenv reads
// the environment ($MYSQL_DSN).
func parseArgs(args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	var columns string
	fs := newFlagSet(c, &columns, getenv)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["columns"] {
		if c.columns, err = splitColumns(columns); err != nil {
			return nil, err
		}
	}
	if len(pos) != 2 {
		return nil, usagef("want FILE and TABLE, got %d argument(s)", len(pos))
	}
	c.file, c.table = pos[0], pos[1]
	return c, c.check(set)
}

// newFlagSet defines the flags into c (--columns into columns, to be
// split). Their help is usageText.
func newFlagSet(c *config, columns *string, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("batchload", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller
	fs.StringVar(&c.dsn, "dsn", getenv("MYSQL_DSN"), "")
	fs.StringVar(&c.format, "format", "", "")
	fs.BoolVar(&c.header, "header", true, "")
	fs.StringVar(columns, "columns", "", "")
	fs.StringVar(&c.null, "null", "", "")
	fs.StringVar(&c.mode, "mode", modeInsert, "")
	fs.IntVar(&c.workers, "workers", 0, "")
	fs.IntVar(&c.maxRejects, "max-rejects", 0, "")
	fs.StringVar(&c.rejects, "rejects", "", "")
	fs.StringVar(&c.loadID, "load-id", "", "")
	fs.StringVar(&c.ledger, "ledger-table", "", "") // defaultLedgerTable with --load-id
	fs.BoolVar(&c.dryRun, "dry-run", false, "")
	fs.StringVar(&c.progress, "progress", "auto", "")
	fs.StringVar(&c.summary, "summary", "", "")
	return fs
}

// parseInterspersed parses flags anywhere among the arguments (the flag
// package alone stops at the first argument that is not a flag) and returns
// the others in order. Everything after "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// splitColumns splits --columns a,b,c.
func splitColumns(s string) ([]string, error) {
	var cols []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			return nil, usagef("--columns %q: empty column name", s)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// check validates the flags against each other; set holds the flags given.
func (c *config) check(set map[string]bool) error {
	checks := []func(map[string]bool) error{c.checkInput, c.checkColumns, c.checkLoad, c.checkOutput, c.checkRejects, c.checkResume}
	for _, check := range checks {
		if err := check(set); err != nil {
			return err
		}
	}
	return nil
}

// checkInput settles the format and the null token.
func (c *config) checkInput(set map[string]bool) error {
	if c.dsn == "" {
		return usagef("no DSN: give --dsn or set MYSQL_DSN (e.g. 'user:password@tcp(127.0.0.1:3306)/db')")
	}
	if _, err := mysql.ParseDSN(c.dsn); err != nil {
		return usagef("the DSN does not parse: %v", err)
	}
	if c.format == "" {
		if c.file == "-" {
			return usagef("reading stdin: --format csv|tsv|ndjson is needed")
		}
		if c.format, _ = detectFormat(c.file); c.format == "" {
			return usagef("cannot tell the format of %q from its name: give --format csv|tsv|ndjson", c.file)
		}
	}
	switch c.format {
	case formatCSV:
		c.nullSet = set["null"]
	case formatTSV:
		if c.nullSet = true; !set["null"] {
			c.null = `\N`
		}
	case formatNDJSON:
		for _, f := range []string{"header", "null"} {
			if set[f] {
				return usagef("--%s does not apply to ndjson (keys name the columns; JSON null is NULL)", f)
			}
		}
		c.header = false
	default:
		return usagef("--format %q: want csv, tsv or ndjson", c.format)
	}
	return nil
}

// checkColumns settles --header against --columns: --columns alone means
// the input has no header.
func (c *config) checkColumns(set map[string]bool) error {
	if c.columns == nil || c.format == formatNDJSON {
		return nil
	}
	if set["header"] && c.header {
		return usagef("--columns names the columns of an input without a header; with --header the first record names them")
	}
	c.header = false
	return nil
}

// checkLoad checks the mode and the workers.
func (c *config) checkLoad(set map[string]bool) error {
	switch c.mode {
	case modeInsert, modeReplace, modeIgnore, modeUpsert:
	default:
		return usagef("--mode %q: want insert, replace, ignore or upsert", c.mode)
	}
	if c.workers < 0 || set["workers"] && c.workers == 0 {
		return usagef("--workers %d: want 1 or more", c.workers)
	}
	if c.table == "" {
		return usagef("empty TABLE")
	}
	return nil
}

// checkOutput checks --progress and --summary.
func (c *config) checkOutput(map[string]bool) error {
	switch c.progress {
	case "auto", "bar", "json", "none":
	default:
		return usagef("--progress %q: want auto, bar, json or none", c.progress)
	}
	if c.summary != "" && c.summary != "json" {
		return usagef("--summary %q: the one summary format is json", c.summary)
	}
	return nil
}

// checkRejects validates --max-rejects and --rejects.
func (c *config) checkRejects(set map[string]bool) error {
	if c.maxRejects < -1 {
		return usagef("--max-rejects %d: want -1 (no limit), 0 (the default: stop at the first) or a positive count", c.maxRejects)
	}
	if set["rejects"] {
		return c.checkRejectsPath()
	}
	return nil
}

// checkRejectsPath checks that --rejects names a file that can be created
// and is neither the input nor stdout.
func (c *config) checkRejectsPath() error {
	p := c.rejects
	switch {
	case p == "" || p == "-":
		return usagef("--rejects %q: want a file path", p)
	case c.file != "-" && (sameFile(p, c.file) || sameFile(p+".log", c.file)):
		return usagef("--rejects %q would overwrite the input file", p)
	}
	dir := filepath.Dir(p)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef("--rejects %q: directory %q does not exist", p, dir)
	}
	return nil
}

// sameFile reports whether two paths name the same file (when both exist)
// or the same path.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// checkResume validates --load-id and --ledger-table (see ledger.go).
func (c *config) checkResume(set map[string]bool) error {
	if set["ledger-table"] && !set["load-id"] {
		return usagef("--ledger-table is the ledger of --load-id, which is not given")
	}
	if !set["load-id"] {
		return nil
	}
	if err := checkLoadID(c.loadID); err != nil {
		return err
	}
	if !set["ledger-table"] {
		c.ledger = defaultLedgerTable
	}
	if schema, name, ok := strings.Cut(c.ledger, "."); c.ledger == "" || ok && (schema == "" || name == "") {
		return usagef("--ledger-table %q: want name or db.name", c.ledger)
	}
	if strings.EqualFold(c.ledger, c.table) {
		return usagef("--ledger-table %q is the table loaded", c.ledger)
	}
	if c.dryRun {
		return usagef("--load-id records what a load commits; a --dry-run commits nothing")
	}
	return nil
}
