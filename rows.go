package batch

import (
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx/reflectx"
)

// Rows is the input of Insert and Replace: a table, its columns and the rows
// to write, built by Values or Structs. It holds the caller's slice, not a
// copy, and reads it only during the call it is given to; since it is a slice
// it can be checked before anything is sent and replayed after a failure. The
// zero Rows has no table and is refused.
type Rows struct {
	table   string
	columns []string
	n       int
	// value returns the value of column j in row i, as the caller wrote it.
	value func(i, j int) any
	err   error
}

// Len is the number of rows.
func (r Rows) Len() int { return r.n }

// Columns returns the column names, in the order the values are given.
func (r Rows) Columns() []string { return r.columns }

// Values makes Rows from a slice of rows, each a slice holding one value per
// column, in the order of columns. Values may be of any type the driver
// accepts: nil, integers, floats, bool, string, []byte, time.Time,
// json.RawMessage, pointers to these (nil is NULL), and driver.Valuer
// implementations (sql.NullString, ...). table is "name" or "schema.name".
func Values(table string, columns []string, values [][]any) Rows {
	return Rows{
		table:   table,
		columns: columns,
		n:       len(values),
		value: func(i, j int) any {
			return values[i][j]
		},
		err: func() error {
			for i, row := range values {
				if len(row) != len(columns) {
					return &ArityError{Row: i, Got: len(row), Want: len(columns)}
				}
			}
			return nil
		}(),
	}
}

// Structs makes Rows from a slice of structs (or pointers to structs). The
// columns and their names follow sqlx: the `db` tag names a column, an
// untagged exported field maps to its name in lower case, `db:"-"` skips a
// field, and embedded structs are flattened. A field whose type implements
// driver.Valuer or sql.Scanner (time.Time, sql.NullString, ...) is one value,
// never split into its fields; a nil pointer, or a field inside a nil embedded
// pointer, is NULL. Any other struct-typed field is refused (tag it `db:"-"`
// or give it a driver.Valuer). A nil element of a slice of pointers is
// refused too.
func Structs[T any](table string, items []T) Rows {
	t := reflect.TypeFor[T]()
	m, err := structMapping(t)
	if err != nil {
		return Rows{table: table, n: len(items), err: err}
	}
	return Rows{
		table:   table,
		columns: m.columns,
		n:       len(items),
		value: func(i, j int) any {
			return m.value(reflect.ValueOf(&items[i]).Elem(), j)
		},
		err: func() error {
			if t.Kind() != reflect.Pointer {
				return nil
			}
			for i := range items {
				if reflect.ValueOf(items[i]).IsNil() {
					return fmt.Errorf("batch: row %d: nil %s: %w", i, t, ErrUnsupportedType)
				}
			}
			return nil
		}(),
	}
}

// structMap is the column list of one struct type.
type structMap struct {
	columns []string
	paths   [][]int // field index path of each column
}

var (
	mapper      = reflectx.NewMapperFunc("db", strings.ToLower) // sqlx's default mapping
	structMaps  sync.Map                                        // reflect.Type -> *structMap or error
	scannerType = reflect.TypeFor[sql.Scanner]()
	timeType    = reflect.TypeFor[time.Time]()
)

// isLeaf reports whether a field of type t is one value: anything but a
// struct, or a struct that knows how to be a value.
func isLeaf(t reflect.Type) bool {
	if reflectx.Deref(t) == timeType {
		return true // the driver sends time.Time as a value of its own
	}
	for _, tt := range []reflect.Type{t, reflect.PointerTo(t)} {
		if tt.Implements(valuerType) || tt.Implements(scannerType) {
			return true
		}
	}
	return reflectx.Deref(t).Kind() != reflect.Struct
}

func structMapping(t reflect.Type) (*structMap, error) {
	if v, ok := structMaps.Load(t); ok {
		if err, ok := v.(error); ok {
			return nil, err
		}
		return v.(*structMap), nil
	}
	m, err := buildStructMap(t)
	if err != nil {
		structMaps.Store(t, err)
		return nil, err
	}
	structMaps.Store(t, m)
	return m, nil
}

func buildStructMap(t reflect.Type) (*structMap, error) {
	if reflectx.Deref(t).Kind() != reflect.Struct {
		return nil, fmt.Errorf("batch: Structs needs a struct type, got %s: %w", t, ErrUnsupportedType)
	}
	tm := mapper.TypeMap(reflectx.Deref(t))
	m := &structMap{}
	depth := map[string]int{}
	var walk func(fi *reflectx.FieldInfo, d int) error
	walk = func(fi *reflectx.FieldInfo, d int) error {
		for _, c := range fi.Children {
			if c == nil {
				continue // skipped field: unexported or db:"-"
			}
			ft := c.Field.Type
			switch {
			case c.Embedded && !isLeaf(ft):
				if err := walk(c, d+1); err != nil {
					return err
				}
				continue
			case !isLeaf(ft):
				return fmt.Errorf("batch: field %s of %s is a struct without driver.Valuer; tag it `db:\"-\"` or implement driver.Valuer: %w",
					c.Field.Name, t, ErrUnsupportedType)
			}
			// A shallower field hides a deeper one of the same name, as in Go.
			if prev, ok := depth[c.Path]; ok && prev <= d {
				continue
			}
			if _, ok := depth[c.Path]; ok {
				for i, name := range m.columns {
					if name == c.Path {
						m.paths[i] = c.Index
					}
				}
			} else {
				m.columns = append(m.columns, c.Path)
				m.paths = append(m.paths, c.Index)
			}
			depth[c.Path] = d
		}
		return nil
	}
	if err := walk(tm.Tree, 0); err != nil {
		return nil, err
	}
	if len(m.columns) == 0 {
		return nil, fmt.Errorf("batch: %s maps no column: %w", t, ErrNoColumns)
	}
	return m, nil
}

// value reads column j of the struct v (or pointer to struct); a nil pointer
// on the way is NULL.
func (m *structMap) value(v reflect.Value, j int) any {
	for _, i := range m.paths[j] {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v.Interface()
}

// flatten checks every value of r and returns them normalized, row after row
// (row i, column j at i*len(columns)+j). Each driver.Valuer is called exactly
// once, here; the result is both sized and sent.
func (r Rows) flatten(enc *encoding) ([]any, error) {
	if r.err != nil {
		return nil, r.err
	}
	cols := len(r.columns)
	vals := make([]any, r.n*cols)
	for i := 0; i < r.n; i++ {
		for j := 0; j < cols; j++ {
			v := r.value(i, j)
			nv, err := normalize(v, enc)
			if err != nil {
				return nil, &ValueError{Row: i, Column: r.columns[j], Type: typeName(v), Err: err}
			}
			vals[i*cols+j] = nv
		}
	}
	return vals, nil
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
