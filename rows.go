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
// copy, and reads it only during the call it is given to (the caller must
// not change it meanwhile); since it is a slice it can be checked before
// anything is sent and replayed after a failure. Values of the types the
// driver sends as they are (int64, uint64, float64, bool, string, []byte,
// time.Time, nil) are sent from the caller's rows without being copied. The
// zero Rows has no table and is refused.
type Rows struct {
	table   string
	columns []string
	n       int
	// value returns the value of column j in row i, as the caller wrote it.
	value func(i, j int) any
	// values is the caller's [][]any (Values): read in place where every
	// value of it is already normalized.
	values [][]any
	err    error
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
		values:  values,
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

// normalized checks every value of r and returns them normalized. Each
// driver.Valuer is called exactly once, here; the result is both sized and
// sent. Rows from Values are not copied unless some value needs converting:
// the returned rows are then the caller's own, read in place, except the rows
// holding such a value, which get a normalized copy.
func (r Rows) normalized(enc *encoding) (valueRows, error) {
	if r.err != nil {
		return valueRows{}, r.err
	}
	cols := len(r.columns)
	if r.values == nil {
		flat := make([]any, r.n*cols)
		for i := 0; i < r.n; i++ {
			if err := r.normalizeRow(flat[i*cols:(i+1)*cols], i, enc); err != nil {
				return valueRows{}, err
			}
		}
		return flatRows(flat, cols), nil
	}
	out := valueRows{rows: r.values, cols: cols}
	var copied []any // backing of the rows that needed converting
	for i, row := range r.values {
		for j, v := range row {
			ok, err := isNormal(v, enc)
			if err != nil {
				return valueRows{}, r.valueError(i, j, v, err)
			}
			if ok {
				continue
			}
			if copied == nil {
				// From here on out differs from the caller's slice.
				out.rows = append([][]any(nil), r.values...)
				copied = make([]any, 0, (r.n-i)*cols)
			}
			k := len(copied)
			copied = copied[:k+cols]
			out.rows[i] = copied[k : k+cols : k+cols]
			if err := r.normalizeRow(out.rows[i], i, enc); err != nil {
				return valueRows{}, err
			}
			break
		}
	}
	return out, nil
}

// normalizeRow normalizes row i of r into dst.
func (r Rows) normalizeRow(dst []any, i int, enc *encoding) error {
	for j := range dst {
		v := r.value(i, j)
		nv, err := normalize(v, enc)
		if err != nil {
			return r.valueError(i, j, v, err)
		}
		dst[j] = nv
	}
	return nil
}

func (r Rows) valueError(i, j int, v any, err error) error {
	return &ValueError{Row: i, Column: r.columns[j], Type: typeName(v), Err: err}
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
