package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// column is one column of the target table, from information_schema.
type column struct {
	Name       string
	DataType   string // DATA_TYPE, lower case: int, varchar, decimal, ...
	ColumnType string // COLUMN_TYPE as the server writes it: "int(10) unsigned", "enum('a','B')"
	Nullable   bool
	Generated  bool // a generated (virtual or stored) column: not loadable
	Primary    bool // part of the primary key

	CharLen   int64  // CHARACTER_MAXIMUM_LENGTH (characters; bytes for binary types), 0 if none
	Scale     int    // NUMERIC_SCALE of a DECIMAL, else 0
	FSP       int    // DATETIME_PRECISION of a DATETIME, TIMESTAMP or TIME, else 0
	Collation string // COLLATION_NAME, "" for a column without one
	JSON      bool   // a JSON column: MySQL's JSON type, or MariaDB's LONGTEXT CHECK (json_valid(c))
}

// Unsigned reports an UNSIGNED numeric column.
func (c column) Unsigned() bool { return strings.Contains(strings.ToLower(c.ColumnType), "unsigned") }

// tableInfo is what the tool knows of the target table.
type tableInfo struct {
	Name    string   // as given on the command line
	Columns []column // in table order
}

// errNoDatabase: an unqualified table on a DSN that names no database.
var errNoDatabase = errors.New("the DSN names no database: write the table as db.table or add /db to the DSN")

// readTable reads the columns of table ("name" or "schema.name") from
// information_schema.
func readTable(ctx context.Context, db *sql.DB, table string) (*tableInfo, error) {
	var schema any // nil: the connection's database
	name := table
	if s, n, ok := strings.Cut(table, "."); ok {
		schema, name = s, n
	}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
			COALESCE(GENERATION_EXPRESSION, ''), COLUMN_KEY, COALESCE(CHARACTER_MAXIMUM_LENGTH, 0),
			COALESCE(NUMERIC_SCALE, 0), COALESCE(DATETIME_PRECISION, 0), COALESCE(COLLATION_NAME, '')
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
		ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", table, err)
	}
	defer rows.Close()
	t := &tableInfo{Name: table}
	for rows.Next() {
		var c column
		var nullable, gen, key string
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &nullable, &gen, &key, &c.CharLen, &c.Scale, &c.FSP, &c.Collation); err != nil {
			return nil, err
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Nullable, c.Generated, c.Primary = nullable == "YES", gen != "", key == "PRI"
		c.JSON = c.DataType == "json"
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(t.Columns) == 0 {
		return nil, noTable(ctx, db, table, schema == nil)
	}
	t.markMariaDBJSON(ctx, db, schema, name)
	return t, nil
}

// markMariaDBJSON marks MariaDB's JSON columns, which information_schema
// shows as LONGTEXT with a column CHECK (json_valid(`c`)), so that an
// NDJSON string goes into them as the JSON string it is. Only the LONGTEXT
// columns are looked at; MySQL, whose JSON type says so itself and whose
// CHECK_CONSTRAINTS has no TABLE_NAME, fails the query harmlessly.
func (t *tableInfo) markMariaDBJSON(ctx context.Context, db *sql.DB, schema any, name string) {
	if !slices.ContainsFunc(t.Columns, func(c column) bool { return c.DataType == "longtext" }) {
		return
	}
	rows, err := db.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`, schema, name)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var clause string
		if rows.Scan(&clause) != nil {
			return
		}
		for i, c := range t.Columns {
			if c.DataType == "longtext" && clause == "json_valid(`"+strings.ReplaceAll(c.Name, "`", "``")+"`)" {
				t.Columns[i].JSON = true
			}
		}
	}
}

// noTable explains why a table has no columns: no database, or no table.
func noTable(ctx context.Context, db *sql.DB, table string, unqualified bool) error {
	if unqualified {
		var current sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&current); err == nil && !current.Valid {
			return fmt.Errorf("table %s: %w", table, errNoDatabase)
		}
	}
	return fmt.Errorf("table %s not found (or no privilege on it)", table)
}

// loadable returns the columns that can be loaded (not generated), in
// table order.
func (t *tableInfo) loadable() []column {
	var cols []column
	for _, c := range t.Columns {
		if !c.Generated {
			cols = append(cols, c)
		}
	}
	return cols
}

// resolve maps the input's column names (a header, --columns or NDJSON
// keys) to the table's columns, case-insensitively as MySQL does. Names
// the table lacks, generated columns and a name given twice are errors,
// all reported at once; what names means is said by what ("the header").
func (t *tableInfo) resolve(names []string, what string) ([]column, error) {
	byName := make(map[string]column, len(t.Columns))
	for _, c := range t.Columns {
		byName[strings.ToLower(c.Name)] = c
	}
	var cols []column
	var unknown, generated, twice []string
	seen := map[string]bool{}
	for _, n := range names {
		c, ok := byName[strings.ToLower(n)]
		switch {
		case !ok:
			unknown = append(unknown, fmt.Sprintf("%q", n))
		case c.Generated:
			generated = append(generated, c.Name)
		case seen[strings.ToLower(n)]:
			twice = append(twice, c.Name)
		}
		seen[strings.ToLower(n)] = true
		cols = append(cols, c)
	}
	var errs []error
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("%s names columns that table %s does not have: %s (its columns: %s)",
			what, t.Name, strings.Join(unknown, ", "), strings.Join(t.names(), ", ")))
	}
	if len(generated) > 0 {
		errs = append(errs, fmt.Errorf("%s names generated columns, which cannot be loaded: %s", what, strings.Join(generated, ", ")))
	}
	if len(twice) > 0 {
		errs = append(errs, fmt.Errorf("%s names a column twice: %s", what, strings.Join(twice, ", ")))
	}
	return cols, errors.Join(errs...)
}

// names returns the table's column names in order.
func (t *tableInfo) names() []string {
	var ns []string
	for _, c := range t.Columns {
		ns = append(ns, c.Name)
	}
	return ns
}

// primaryKey returns the primary key columns among cols; all of the key
// must be there for an upsert (see (*loader).modeOptions).
func (t *tableInfo) primaryKey(cols []column) (key []string, missing []string) {
	for _, c := range t.Columns {
		if !c.Primary {
			continue
		}
		if slices.ContainsFunc(cols, func(l column) bool { return l.Name == c.Name }) {
			key = append(key, c.Name)
		} else {
			missing = append(missing, c.Name)
		}
	}
	return key, missing
}
