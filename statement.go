package batch

import (
	"fmt"
	"strings"
	"sync"
)

// verb is the statement a batch sends.
type verb int

const (
	verbInsert verb = iota
	verbReplace
)

// statement is the fixed part of every chunk's SQL: everything but the
// number of row tuples. Identifiers are always quoted; values never appear in
// the text (they travel as parameters of a prepared statement).
type statement struct {
	verb    verb
	ignore  bool
	table   string   // as given: "name" or "schema.name"
	columns []string // as given
	update  []string // columns assigned by ON DUPLICATE KEY UPDATE, nil for none

	prefix string // "INSERT INTO `t` (`a`,`b`) VALUES "
}

// quoteIdent quotes one identifier with backticks, doubling embedded ones.
func quoteIdent(b *strings.Builder, name string) {
	b.WriteByte('`')
	b.WriteString(strings.ReplaceAll(name, "`", "``"))
	b.WriteByte('`')
}

// quoteTable quotes "name" or "schema.name". A table whose name itself
// contains a dot must be written with its schema.
func quoteTable(b *strings.Builder, table string) {
	if schema, name, ok := strings.Cut(table, "."); ok {
		quoteIdent(b, schema)
		b.WriteByte('.')
		quoteIdent(b, name)
		return
	}
	quoteIdent(b, table)
}

func checkTable(table string) error {
	if table == "" {
		return detail(ErrEmptyName, "table")
	}
	if schema, name, ok := strings.Cut(table, "."); ok && (schema == "" || name == "") {
		return detail(ErrEmptyName, "table %q", table)
	}
	return nil
}

func checkColumns(cols []string) error {
	if len(cols) == 0 {
		return ErrNoColumns
	}
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		if c == "" {
			return detail(ErrEmptyName, "column %d", i)
		}
		// MySQL column names are case-insensitive.
		lc := strings.ToLower(c)
		if seen[lc] {
			return detail(ErrDuplicateColumn, "column %q", c)
		}
		seen[lc] = true
	}
	return nil
}

func newStatement(v verb, table string, cols []string, o *options) (*statement, error) {
	if err := checkTable(table); err != nil {
		return nil, err
	}
	if err := checkColumns(cols); err != nil {
		return nil, err
	}
	s := &statement{verb: v, ignore: o.ignore, table: table, columns: cols}
	switch {
	case v == verbReplace && o.ignore:
		return nil, fmt.Errorf("%w: REPLACE cannot be combined with IGNORE", ErrOptions)
	case v == verbReplace && o.upsert != nil:
		return nil, fmt.Errorf("%w: REPLACE cannot be combined with ON DUPLICATE KEY UPDATE", ErrOptions)
	case o.ignore && o.upsert != nil:
		return nil, fmt.Errorf("%w: Ignore cannot be combined with ON DUPLICATE KEY UPDATE", ErrOptions)
	case o.upsert != nil:
		up, err := o.upsert.columns(cols)
		if err != nil {
			return nil, err
		}
		s.update = up
	}

	var b strings.Builder
	if v == verbReplace {
		b.WriteString("REPLACE ")
	} else {
		b.WriteString("INSERT ")
	}
	b.WriteString("INTO ")
	quoteTable(&b, table)
	b.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		quoteIdent(&b, c)
	}
	b.WriteString(") VALUES ")
	s.prefix = b.String()
	return s, nil
}

// ordered reports whether a later row may change what an earlier row with
// the same key wrote, so that rows sharing a key must be sent in input order.
func (s *statement) ordered() bool {
	return s.verb == verbReplace || s.ignore || s.update != nil
}

// rowAliasName names the new row in MySQL 8.0.20+'s ON DUPLICATE KEY UPDATE.
const rowAliasName = "_batch_new"

// suffix is the text after the row tuples.
//
// Ignore is written as ON DUPLICATE KEY UPDATE of the first column to
// itself, not INSERT IGNORE: IGNORE also turns value errors into warnings,
// so MySQL and MariaDB store a too-long string truncated, an out-of-range
// number clipped, a NULL in a NOT NULL column as the type's zero, even in
// strict mode. The no-op update skips a row whose key exists and nothing
// else: a bad value is refused (and rejected with MaxRejects).
func (s *statement) suffix(alias bool) string {
	if s.ignore {
		var b strings.Builder
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
		quoteIdent(&b, s.columns[0])
		b.WriteByte('=')
		quoteIdent(&b, s.columns[0])
		return b.String()
	}
	if s.update == nil {
		return ""
	}
	var b strings.Builder
	if alias {
		b.WriteString(" AS " + rowAliasName)
	}
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	for i, c := range s.update {
		if i > 0 {
			b.WriteByte(',')
		}
		quoteIdent(&b, c)
		if alias {
			b.WriteString("=" + rowAliasName + ".")
			quoteIdent(&b, c)
		} else {
			b.WriteString("=VALUES(")
			quoteIdent(&b, c)
			b.WriteByte(')')
		}
	}
	return b.String()
}

// text is the SQL for k rows.
func (s *statement) text(k int, alias bool) string {
	var b strings.Builder
	b.Grow(s.textLen(k, alias))
	b.WriteString(s.prefix)
	tuple := "(" + strings.Repeat("?,", len(s.columns)-1) + "?)"
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
	}
	b.WriteString(s.suffix(alias))
	return b.String()
}

// textLen is len(s.text(k, alias)) without building it: each tuple is
// "(?,...,?)" of 2*cols+1 bytes, and tuples are separated by commas.
func (s *statement) textLen(k int, alias bool) int {
	return len(s.prefix) + k*(2*len(s.columns)+2) - 1 + len(s.suffix(alias))
}

// maxRowsForPrepare is the most rows whose PREPARE payload fits in packet.
func (s *statement) maxRowsForPrepare(packet int, alias bool) int {
	fixed := prepareSize(len(s.prefix) - 1 + len(s.suffix(alias))) // 1 + prefix + suffix - 1 (one comma fewer than tuples)
	per := 2*len(s.columns) + 2
	if packet < fixed+per {
		return 0
	}
	return (packet - fixed) / per
}

// upsert is the ON DUPLICATE KEY UPDATE option.
type upsert struct {
	named  []string // update these
	except []string // or every inserted column but these (the key)
}

func (u *upsert) columns(cols []string) ([]string, error) {
	in := make(map[string]bool, len(cols))
	for _, c := range cols {
		in[strings.ToLower(c)] = true
	}
	if u.except == nil {
		if len(u.named) == 0 {
			return nil, fmt.Errorf("%w: ON DUPLICATE KEY UPDATE names no column", ErrOptions)
		}
		for _, c := range u.named {
			if !in[strings.ToLower(c)] {
				return nil, fmt.Errorf("%w: ON DUPLICATE KEY UPDATE column %q is not inserted", ErrOptions, c)
			}
		}
		return u.named, nil
	}
	key := make(map[string]bool, len(u.except))
	for _, c := range u.except {
		if !in[strings.ToLower(c)] {
			return nil, fmt.Errorf("%w: key column %q is not inserted", ErrOptions, c)
		}
		key[strings.ToLower(c)] = true
	}
	var up []string
	for _, c := range cols {
		if !key[strings.ToLower(c)] {
			up = append(up, c)
		}
	}
	if len(up) == 0 {
		return nil, fmt.Errorf("%w: every inserted column is in the key; nothing to update (use Ignore)", ErrOptions)
	}
	return up, nil
}

// textCache holds a statement's SQL per shape (rows, alias), each built once
// per load. Safe for concurrent use.
type textCache struct {
	st *statement
	mu sync.Mutex
	m  map[int]string
}

func newTextCache(st *statement) *textCache { return &textCache{st: st, m: map[int]string{}} }

// text returns the SQL for a statement of k rows.
func (t *textCache) text(k int, alias bool) string {
	key := k * 2
	if alias {
		key++
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[key]
	if !ok {
		s = t.st.text(k, alias)
		t.m[key] = s
	}
	return s
}
