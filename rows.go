package batch

import (
	"bytes"
	"database/sql"
	"database/sql/driver"
	"math"
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
					return arityError(i, len(row), len(columns))
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
					return detail(ErrUnsupportedType, "row %d: nil %s", i, t)
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
	valuerType  = reflect.TypeFor[driver.Valuer]()
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
		return nil, detail(ErrUnsupportedType, "Structs needs a struct type, got %s", t)
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
				return detail(ErrUnsupportedType, "field %s of %s is a struct without driver.Valuer; tag it `db:\"-\"` or implement driver.Valuer",
					c.Field.Name, t)
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
		return nil, detail(ErrNoColumns, "%s maps no column", t)
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
				return valueRows{}, valueError(i, r.columns[j], v, err)
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
	return normalizeInto(dst, i, r.columns, func(j int) any { return r.value(i, j) }, enc, false)
}

// normalizeInto normalizes the values of input row i, value(0) to
// value(len(dst)-1), into dst: the one place where Insert's rows and a
// Writer's rows are checked. With keepBytes, a []byte is copied (a Writer
// keeps rows after Write returns); bytes.Clone keeps an empty value empty and
// nil nil, as the driver tells them apart (nil is NULL).
func normalizeInto(dst []any, i int, columns []string, value func(j int) any, enc *encoding, keepBytes bool) error {
	for j := range dst {
		v := value(j)
		nv, err := normalize(v, enc)
		if err != nil {
			return valueError(i, columns[j], v, err)
		}
		if b, ok := nv.([]byte); ok && keepBytes {
			nv = bytes.Clone(b)
		}
		dst[j] = nv
	}
	return nil
}

// valueError is the error for value v of row i, column col.
func valueError(i int, col string, v any, err error) error {
	return &ValueError{Row: i, Column: col, Type: typeName(v), Err: err}
}

// arityError is the error for row i holding got values for want columns.
func arityError(i, got, want int) error {
	return &ArityError{Row: i, Got: got, Want: want}
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}

// valueRows is rows of normalized values, cols of them per row: the
// caller's own [][]any when every value in it was already of a type the
// driver sends as is (Values input, the common case: nothing is copied), or
// one slice holding the values row after row.
type valueRows struct {
	flat []any   // when rows is nil
	rows [][]any // each of len cols
	cols int
}

// flatRows views flat, row after row, as rows of cols values.
func flatRows(flat []any, cols int) valueRows { return valueRows{flat: flat, cols: cols} }

func (v valueRows) len() int {
	if v.rows != nil {
		return len(v.rows)
	}
	return len(v.flat) / v.cols
}

// row returns the values of row i.
func (v valueRows) row(i int) []any {
	if v.rows != nil {
		return v.rows[i]
	}
	return v.flat[i*v.cols : (i+1)*v.cols]
}

// slice returns rows [i, j). Past the last row it panics, as a slice
// index would: Go would let a flat slice reach into its spare capacity,
// stale values of another row.
func (v valueRows) slice(i, j int) valueRows {
	if j > v.len() {
		panic("batch: valueRows.slice past the last row")
	}
	if v.rows != nil {
		return valueRows{rows: v.rows[i:j:j], cols: v.cols}
	}
	return valueRows{flat: v.flat[i*v.cols : j*v.cols : j*v.cols], cols: v.cols}
}

// normalize converts v to the value the driver sends unchanged, the way the
// driver's own converter would: a driver.Valuer is called (once), pointers are
// followed, integer kinds widen to int64 or uint64, floats to float64 (a
// float32 0.1 becomes 0.10000000149011612, as in the driver), byte slices
// and json.RawMessage become []byte, and a nil []byte becomes nil (both are
// sent as NULL). It refuses what the driver or the server cannot take.
func normalize(v any, enc *encoding) (any, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case driver.Valuer:
		rv := reflect.ValueOf(x)
		if rv.Kind() == reflect.Pointer && rv.IsNil() && rv.Type().Elem().Implements(valuerType) {
			// As database/sql does: a nil pointer to a value type whose Value
			// method has a value receiver is NULL, not a panic.
			return nil, nil
		}
		dv, err := x.Value()
		if err != nil {
			return nil, err
		}
		if _, ok := dv.(driver.Valuer); ok {
			return nil, ErrUnsupportedType
		}
		return normalizeReflect(dv, enc)
	}
	return normalizeReflect(v, enc)
}

// isNormal reports whether v is already normalized: of a type the driver
// sends as it is. It returns the error normalize would for such a value.
func isNormal(v any, enc *encoding) (bool, error) {
	switch x := v.(type) {
	case nil, int64, uint64, bool, string:
		return true, nil
	case float64:
		return true, checkFloat(x)
	case []byte:
		return x != nil, nil // a nil []byte is sent as NULL: normalized to nil
	case time.Time:
		return true, checkTime(x, enc)
	}
	return false, nil
}

// normalizeReflect handles the driver's own types, named types (type ID
// int64, type Name string, json.RawMessage, ...) and pointers; it never calls
// a driver.Valuer.
func normalizeReflect(v any, enc *encoding) (any, error) {
	if ok, err := isNormal(v, enc); ok || err != nil {
		return v, err
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), enc)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint(), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		return f, checkFloat(f)
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.IsNil() {
				return nil, nil
			}
			return rv.Bytes(), nil
		}
	}
	return nil, ErrUnsupportedType
}

func checkFloat(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ErrNotFinite
	}
	return nil
}

// checkTime refuses what the driver's appendDateTime refuses: a year outside
// 1..9999 once the time is moved to the driver's location. The zero time is
// sent as '0000-00-00' and is accepted.
func checkTime(t time.Time, enc *encoding) error {
	if t.IsZero() {
		return nil
	}
	if enc.locKnown {
		if y := enc.wireTime(t).Year(); y < 1 || y > 9999 {
			return ErrTimeRange
		}
		return nil
	}
	// The driver's location is not known: refuse only what is out of range
	// in every location (UTC offsets stay within a day). A time within a day
	// of the bounds is left to the driver, which refuses it before writing
	// anything if its location takes it out of range.
	if t.Before(minTime) || !t.Before(maxTime) {
		return ErrTimeRange
	}
	return nil
}

// Out of range in every location: a day beyond year 1..9999 in UTC.
var (
	minTime = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC)
)
