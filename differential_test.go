package batch_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/internal/testserver"
)

// TestDifferentialPaths writes the same logical rows, one column per Go type
// the package accepts, through every way into the package (Insert of Values,
// a Writer flushed after every row, a Writer closed at the end, Insert of
// Structs, and Insert of Values on the two other ways a session hands its
// arguments to the driver), each into a table of its own with the same
// schema. It reads every table back in the server's text form, with
// `col IS NULL` beside each cell, and requires the tables to be identical
// byte for byte, every cell's NULL-ness to be the one stated below and, where
// stated, the server's text to be the one given.
//
// What the server keeps (MariaDB, driver loc UTC): DATETIME(6) keeps the
// driver's UTC wall clock with the fraction truncated to microseconds; DOUBLE
// and FLOAT keep every finite value including subnormals, but a -0 reads
// back as 0 (the server keeps +0: ATAN2(col, -1) gives +pi); FLOAT is read as
// CAST(col AS DOUBLE), since the server prints a FLOAT with 6 digits, which
// can map two floats to one text.
//
// The Writer used to copy a []byte with append([]byte(nil), b...), which
// turned an empty value into nil, and the driver sends a nil []byte as NULL:
// every "not NULL, empty" cell of a []byte-like kind below catches that.

// diffRow holds one row: a field per column, of the Go type of its kind.
// The field order is the column order of the cases (diffColumns).
type diffRow struct {
	ID  int64 `db:"id"`
	Nil any   `db:"nil_any"`

	I8   int8    `db:"i8"`
	I16  int16   `db:"i16"`
	I32  int32   `db:"i32"`
	I64  int64   `db:"i64"`
	Int  int     `db:"i_int"`
	U8   uint8   `db:"u8"`
	U16  uint16  `db:"u16"`
	U32  uint32  `db:"u32"`
	U64  uint64  `db:"u64"`
	Uint uint    `db:"u_uint"`
	F32  float32 `db:"f32"`
	F64  float64 `db:"f64"`
	Bool bool    `db:"b"`

	Str   string          `db:"s_blob"`
	Text  string          `db:"s_text"`
	Bytes []byte          `db:"bytes"`
	Blob  diffBlob        `db:"named_bytes"`
	JSON  json.RawMessage `db:"raw_json"`
	Time  time.Time       `db:"dt"`

	PI8    *int8            `db:"p_i8"`
	PI16   *int16           `db:"p_i16"`
	PI32   *int32           `db:"p_i32"`
	PI64   *int64           `db:"p_i64"`
	PInt   *int             `db:"p_int"`
	PU8    *uint8           `db:"p_u8"`
	PU16   *uint16          `db:"p_u16"`
	PU32   *uint32          `db:"p_u32"`
	PU64   *uint64          `db:"p_u64"`
	PUint  *uint            `db:"p_uint"`
	PF32   *float32         `db:"p_f32"`
	PF64   *float64         `db:"p_f64"`
	PBool  *bool            `db:"p_b"`
	PStr   *string          `db:"p_s_blob"`
	PText  *string          `db:"p_s_text"`
	PBytes *[]byte          `db:"p_bytes"`
	PBlob  *diffBlob        `db:"p_named_bytes"`
	PJSON  *json.RawMessage `db:"p_raw_json"`
	PTime  *time.Time       `db:"p_dt"`
	PPByte **[]byte         `db:"pp_bytes"`

	NStr   sql.NullString   `db:"n_str"`
	NI64   sql.NullInt64    `db:"n_i64"`
	NI32   sql.NullInt32    `db:"n_i32"`
	NI16   sql.NullInt16    `db:"n_i16"`
	NByte  sql.NullByte     `db:"n_byte"`
	NF64   sql.NullFloat64  `db:"n_f64"`
	NBool  sql.NullBool     `db:"n_bool"`
	NTime  sql.NullTime     `db:"n_time"`
	NBytes sql.Null[[]byte] `db:"n_bytes"`
	PNStr  *sql.NullString  `db:"p_n_str"`

	Valuer  diffValuer  `db:"valuer"`
	PValuer *diffValuer `db:"p_valuer"`

	*diffInner // always set: its field is read through the embedded pointer
}

type diffInner struct {
	InnerBytes []byte `db:"inner_bytes"`
}

// diffBlob is a named []byte: the package must send it as its bytes.
type diffBlob []byte

// diffValuer is a driver.Valuer whose Value returns v as it is.
type diffValuer struct{ v driver.Value }

func (d diffValuer) Value() (driver.Value, error) { return d.v, nil }

// dval is one value of a case and what its cell must hold.
type dval[T any] struct {
	v    T
	null bool    // the cell must be NULL
	text *string // the server's text of the cell, when stated
}

// dNull is a value whose cell must be NULL.
func dNull[T any](v T) dval[T] { return dval[T]{v: v, null: true} }

// dIs is a value whose cell must not be NULL and must read back as text.
func dIs[T any](v T, text string) dval[T] { return dval[T]{v: v, text: &text} }

// diffCol is one column: a value kind, its column type and the values it
// cycles through over the rows.
type diffCol struct {
	kind    string // the sub-test's name
	column  string
	sqlType string
	n       int
	set     func(r *diffRow, i int) // stores value i%n in r's field
	get     func(r *diffRow) any    // the field, as Values gets it
	null    func(i int) bool        // must row i's cell be NULL
	text    func(i int) *string     // row i's text, when stated
}

// read is the expression the column is read back with.
func (c diffCol) read() string {
	if strings.HasPrefix(c.sqlType, "FLOAT") {
		// The server prints a FLOAT with 6 digits (0.1 and the next
		// float32 both print 0.1); as a DOUBLE it prints every bit.
		return "CAST(`" + c.column + "` AS DOUBLE)"
	}
	return "`" + c.column + "`"
}

func dcol[T any](kind, column, sqlType string, field func(*diffRow) *T, vals ...dval[T]) diffCol {
	return diffCol{
		kind: kind, column: column, sqlType: sqlType, n: len(vals),
		set:  func(r *diffRow, i int) { *field(r) = vals[i%len(vals)].v },
		get:  func(r *diffRow) any { return *field(r) },
		null: func(i int) bool { return vals[i%len(vals)].null },
		text: func(i int) *string { return vals[i%len(vals)].text },
	}
}

// dptr is the column of pointers to vals: a nil pointer (NULL) first, then
// a pointer to each value, whose cell must be what the value's is.
func dptr[T any](kind, column, sqlType string, field func(*diffRow) **T, vals ...dval[T]) diffCol {
	ps := []dval[*T]{dNull[*T](nil)}
	for _, v := range vals {
		p := new(T)
		*p = v.v
		ps = append(ps, dval[*T]{v: p, null: v.null, text: v.text})
	}
	return dcol(kind, column, sqlType, field, ps...)
}

// diffLong is the length of the long values: sent as COM_STMT_SEND_LONG_DATA
// in every statement shape (checked in the test).
const diffLong = 2 << 20

func diffColumns() []diffCol {
	nz32, nz64 := float32(math.Copysign(0, -1)), math.Copysign(0, -1)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	long := make([]byte, diffLong)
	for i := range long {
		long[i] = byte(i*7 + i>>8)
	}
	longStr := strings.Repeat("long\x00\xff😀", diffLong/10+1)
	invalid := "\xff\xfe\x80 invalid \xc3\x28 utf-8 \xed\xa0\x80"
	emoji := "emoji 😀🎉 clef 𝄞 han 漢字"
	nasty := "quote ' \" ` back\\slash \\' nul\x00 crlf\r\n ctrl-z \x1a"
	doc := `{"a":[1,"x"],"b":null}`
	nanos := time.Date(2024, 7, 15, 13, 45, 30, 123456789, time.UTC)
	kolkataNanos := time.Date(2024, 3, 10, 2, 30, 0, 999999999, kolkata) // 2024-03-09 21:00 UTC
	nyMidnight := time.Date(2024, 1, 1, 0, 0, 0, 0, newYork)             // 05:00 UTC
	utcMidnight := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)           // sent as '2024-01-01'
	subnormal32 := math.Float32frombits(0x007fffff)                      // the largest float32 subnormal
	subnormal64 := math.Float64frombits(0x000fffffffffffff)              // the largest float64 subnormal
	var nilBytes *[]byte

	i8 := []dval[int8]{dIs[int8](math.MinInt8, "-128"), dIs[int8](-1, "-1"), dIs[int8](0, "0"), dIs[int8](math.MaxInt8, "127")}
	i16 := []dval[int16]{dIs[int16](math.MinInt16, "-32768"), dIs[int16](math.MaxInt16, "32767")}
	i32 := []dval[int32]{dIs[int32](math.MinInt32, "-2147483648"), dIs[int32](math.MaxInt32, "2147483647")}
	i64 := []dval[int64]{dIs[int64](math.MinInt64, "-9223372036854775808"), dIs[int64](math.MaxInt64, "9223372036854775807"), dIs[int64](0, "0")}
	ints := []dval[int]{dIs(math.MinInt, strconv.Itoa(math.MinInt)), dIs(math.MaxInt, strconv.Itoa(math.MaxInt))}
	u8 := []dval[uint8]{dIs[uint8](0, "0"), dIs[uint8](math.MaxUint8, "255")}
	u16 := []dval[uint16]{dIs[uint16](0, "0"), dIs[uint16](math.MaxUint16, "65535")}
	u32 := []dval[uint32]{dIs[uint32](0, "0"), dIs[uint32](math.MaxUint32, "4294967295")}
	u64 := []dval[uint64]{dIs[uint64](0, "0"), dIs[uint64](1<<63, "9223372036854775808"), dIs[uint64](math.MaxUint64, "18446744073709551615")}
	uints := []dval[uint]{dIs[uint](0, "0"), dIs[uint](math.MaxUint, strconv.FormatUint(math.MaxUint, 10))}
	f32 := []dval[float32]{
		dIs[float32](0.1, "0.10000000149011612"), // the float32 nearest 0.1, exactly
		dIs(nz32, "0"),
		dIs[float32](math.MaxFloat32, "3.4028234663852886e+38"),
		dIs[float32](-math.MaxFloat32, "-3.4028234663852886e+38"),
		dIs[float32](math.SmallestNonzeroFloat32, "1.401298464324817e-45"),
		dIs(subnormal32, "1.1754942106924411e-38"),
		dIs[float32](16777217, "1.6777216e+07"), // not a float32: rounds to even, 2^24
	}
	f64 := []dval[float64]{
		dIs(0.1, "0.1"),
		dIs(nz64, "0"),
		dIs(math.MaxFloat64, "1.7976931348623157e+308"),
		dIs(-math.MaxFloat64, "-1.7976931348623157e+308"),
		dIs(math.SmallestNonzeroFloat64, "5e-324"),
		dIs(subnormal64, "2.225073858507201e-308"),
		dIs(1.0/3, "0.3333333333333333"),
	}
	bools := []dval[bool]{dIs(true, "1"), dIs(false, "0")}
	strs := []dval[string]{dIs("", ""), dIs("plain", "plain"), dIs(invalid, invalid), dIs("nul\x00inside", "nul\x00inside"), dIs(longStr, longStr)}
	texts := []dval[string]{dIs("", ""), dIs(emoji, emoji), dIs(nasty, nasty)}
	bytes := []dval[[]byte]{dNull([]byte(nil)), dIs([]byte{}, ""), dIs(all, string(all)), dIs(long, string(long)), dIs([]byte{0}, "\x00")}
	blobs := []dval[diffBlob]{dNull(diffBlob(nil)), dIs(diffBlob{}, ""), dIs(diffBlob{0xff, 0, 'x'}, "\xff\x00x")}
	raws := []dval[json.RawMessage]{dNull(json.RawMessage(nil)), dIs(json.RawMessage{}, ""), dIs(json.RawMessage(doc), doc), dIs(json.RawMessage("null"), "null")}
	times := []dval[time.Time]{
		dIs(time.Time{}, "0000-00-00 00:00:00.000000"),
		dIs(kolkataNanos, "2024-03-09 21:00:00.999999"),
		dIs(nanos, "2024-07-15 13:45:30.123456"),
		dIs(nyMidnight, "2024-01-01 05:00:00.000000"),
		dIs(utcMidnight, "2024-01-01 00:00:00.000000"),
		dIs(time.Date(2024, 2, 29, 23, 59, 59, 1500, time.UTC), "2024-02-29 23:59:59.000001"),
	}

	return []diffCol{
		dcol("nil", "nil_any", "VARBINARY(16)", func(r *diffRow) *any { return &r.Nil }, dNull[any](nil)),

		dcol("int8", "i8", "TINYINT", func(r *diffRow) *int8 { return &r.I8 }, i8...),
		dcol("int16", "i16", "SMALLINT", func(r *diffRow) *int16 { return &r.I16 }, i16...),
		dcol("int32", "i32", "INT", func(r *diffRow) *int32 { return &r.I32 }, i32...),
		dcol("int64", "i64", "BIGINT", func(r *diffRow) *int64 { return &r.I64 }, i64...),
		dcol("int", "i_int", "BIGINT", func(r *diffRow) *int { return &r.Int }, ints...),
		dcol("uint8", "u8", "TINYINT UNSIGNED", func(r *diffRow) *uint8 { return &r.U8 }, u8...),
		dcol("uint16", "u16", "SMALLINT UNSIGNED", func(r *diffRow) *uint16 { return &r.U16 }, u16...),
		dcol("uint32", "u32", "INT UNSIGNED", func(r *diffRow) *uint32 { return &r.U32 }, u32...),
		dcol("uint64", "u64", "BIGINT UNSIGNED", func(r *diffRow) *uint64 { return &r.U64 }, u64...),
		dcol("uint", "u_uint", "BIGINT UNSIGNED", func(r *diffRow) *uint { return &r.Uint }, uints...),
		dcol("float32", "f32", "FLOAT", func(r *diffRow) *float32 { return &r.F32 }, f32...),
		dcol("float64", "f64", "DOUBLE", func(r *diffRow) *float64 { return &r.F64 }, f64...),
		dcol("bool", "b", "BOOL", func(r *diffRow) *bool { return &r.Bool }, bools...),
		dcol("string in LONGBLOB", "s_blob", "LONGBLOB", func(r *diffRow) *string { return &r.Str }, strs...),
		dcol("string in utf8mb4 TEXT", "s_text", "TEXT CHARACTER SET utf8mb4", func(r *diffRow) *string { return &r.Text }, texts...),
		dcol("[]byte", "bytes", "LONGBLOB", func(r *diffRow) *[]byte { return &r.Bytes }, bytes...),
		dcol("named []byte", "named_bytes", "BLOB", func(r *diffRow) *diffBlob { return &r.Blob }, blobs...),
		dcol("json.RawMessage", "raw_json", "BLOB", func(r *diffRow) *json.RawMessage { return &r.JSON }, raws...),
		dcol("time.Time", "dt", "DATETIME(6)", func(r *diffRow) *time.Time { return &r.Time }, times...),

		dptr("*int8", "p_i8", "TINYINT", func(r *diffRow) **int8 { return &r.PI8 }, i8...),
		dptr("*int16", "p_i16", "SMALLINT", func(r *diffRow) **int16 { return &r.PI16 }, i16...),
		dptr("*int32", "p_i32", "INT", func(r *diffRow) **int32 { return &r.PI32 }, i32...),
		dptr("*int64", "p_i64", "BIGINT", func(r *diffRow) **int64 { return &r.PI64 }, i64...),
		dptr("*int", "p_int", "BIGINT", func(r *diffRow) **int { return &r.PInt }, ints...),
		dptr("*uint8", "p_u8", "TINYINT UNSIGNED", func(r *diffRow) **uint8 { return &r.PU8 }, u8...),
		dptr("*uint16", "p_u16", "SMALLINT UNSIGNED", func(r *diffRow) **uint16 { return &r.PU16 }, u16...),
		dptr("*uint32", "p_u32", "INT UNSIGNED", func(r *diffRow) **uint32 { return &r.PU32 }, u32...),
		dptr("*uint64", "p_u64", "BIGINT UNSIGNED", func(r *diffRow) **uint64 { return &r.PU64 }, u64...),
		dptr("*uint", "p_uint", "BIGINT UNSIGNED", func(r *diffRow) **uint { return &r.PUint }, uints...),
		dptr("*float32", "p_f32", "FLOAT", func(r *diffRow) **float32 { return &r.PF32 }, f32...),
		dptr("*float64", "p_f64", "DOUBLE", func(r *diffRow) **float64 { return &r.PF64 }, f64...),
		dptr("*bool", "p_b", "BOOL", func(r *diffRow) **bool { return &r.PBool }, bools...),
		dptr("*string in LONGBLOB", "p_s_blob", "LONGBLOB", func(r *diffRow) **string { return &r.PStr }, strs...),
		dptr("*string in utf8mb4 TEXT", "p_s_text", "TEXT CHARACTER SET utf8mb4", func(r *diffRow) **string { return &r.PText }, texts...),
		// A pointer to a nil []byte is NULL, a pointer to an empty one is not.
		dptr("*[]byte", "p_bytes", "LONGBLOB", func(r *diffRow) **[]byte { return &r.PBytes }, bytes...),
		dptr("*named []byte", "p_named_bytes", "BLOB", func(r *diffRow) **diffBlob { return &r.PBlob }, blobs...),
		dptr("*json.RawMessage", "p_raw_json", "BLOB", func(r *diffRow) **json.RawMessage { return &r.PJSON }, raws...),
		dptr("*time.Time", "p_dt", "DATETIME(6)", func(r *diffRow) **time.Time { return &r.PTime }, times...),
		dcol("**[]byte", "pp_bytes", "BLOB", func(r *diffRow) ***[]byte { return &r.PPByte },
			dNull[**[]byte](nil), dNull(&nilBytes), dNull(ref(ref([]byte(nil)))), dIs(ref(ref([]byte{})), ""), dIs(ref(ref([]byte("pp"))), "pp")),

		dcol("sql.NullString", "n_str", "TEXT CHARACTER SET utf8mb4", func(r *diffRow) *sql.NullString { return &r.NStr },
			dIs(sql.NullString{String: "", Valid: true}, ""), dIs(sql.NullString{String: emoji, Valid: true}, emoji), dNull(sql.NullString{String: "ignored"})),
		dcol("sql.NullInt64", "n_i64", "BIGINT", func(r *diffRow) *sql.NullInt64 { return &r.NI64 },
			dIs(sql.NullInt64{Int64: math.MinInt64, Valid: true}, "-9223372036854775808"), dIs(sql.NullInt64{Valid: true}, "0"), dNull(sql.NullInt64{Int64: 7})),
		dcol("sql.NullInt32", "n_i32", "INT", func(r *diffRow) *sql.NullInt32 { return &r.NI32 },
			dIs(sql.NullInt32{Int32: math.MaxInt32, Valid: true}, "2147483647"), dNull(sql.NullInt32{Int32: 7})),
		dcol("sql.NullInt16", "n_i16", "SMALLINT", func(r *diffRow) *sql.NullInt16 { return &r.NI16 },
			dIs(sql.NullInt16{Int16: math.MinInt16, Valid: true}, "-32768"), dNull(sql.NullInt16{Int16: 7})),
		dcol("sql.NullByte", "n_byte", "TINYINT UNSIGNED", func(r *diffRow) *sql.NullByte { return &r.NByte },
			dIs(sql.NullByte{Byte: 255, Valid: true}, "255"), dIs(sql.NullByte{Valid: true}, "0"), dNull(sql.NullByte{Byte: 7})),
		dcol("sql.NullFloat64", "n_f64", "DOUBLE", func(r *diffRow) *sql.NullFloat64 { return &r.NF64 },
			dIs(sql.NullFloat64{Float64: math.SmallestNonzeroFloat64, Valid: true}, "5e-324"), dIs(sql.NullFloat64{Float64: nz64, Valid: true}, "0"), dNull(sql.NullFloat64{Float64: 7})),
		dcol("sql.NullBool", "n_bool", "BOOL", func(r *diffRow) *sql.NullBool { return &r.NBool },
			dIs(sql.NullBool{Valid: true}, "0"), dIs(sql.NullBool{Bool: true, Valid: true}, "1"), dNull(sql.NullBool{Bool: true})),
		dcol("sql.NullTime", "n_time", "DATETIME(6)", func(r *diffRow) *sql.NullTime { return &r.NTime },
			dIs(sql.NullTime{Valid: true}, "0000-00-00 00:00:00.000000"), dIs(sql.NullTime{Time: kolkataNanos, Valid: true}, "2024-03-09 21:00:00.999999"), dNull(sql.NullTime{Time: nanos})),
		// sql.Null[[]byte] valid with a nil V is a nil []byte: NULL.
		dcol("sql.Null[[]byte]", "n_bytes", "BLOB", func(r *diffRow) *sql.Null[[]byte] { return &r.NBytes },
			dIs(sql.Null[[]byte]{V: []byte{}, Valid: true}, ""), dNull(sql.Null[[]byte]{Valid: true}), dIs(sql.Null[[]byte]{V: all, Valid: true}, string(all)), dNull(sql.Null[[]byte]{V: []byte{}})),
		dptr("*sql.NullString", "p_n_str", "TEXT CHARACTER SET utf8mb4", func(r *diffRow) **sql.NullString { return &r.PNStr },
			dIs(sql.NullString{Valid: true}, ""), dNull(sql.NullString{String: "ignored"})),

		dcol("driver.Valuer", "valuer", "BLOB", func(r *diffRow) *diffValuer { return &r.Valuer },
			dIs(diffValuer{[]byte{}}, ""), dNull(diffValuer{nil}), dNull(diffValuer{[]byte(nil)}), dIs(diffValuer{[]byte("v")}, "v"), dIs(diffValuer{""}, ""), dIs(diffValuer{int64(-1)}, "-1")),
		// A nil pointer to a Valuer with a value receiver is NULL, as in
		// database/sql.
		dptr("*driver.Valuer", "p_valuer", "BLOB", func(r *diffRow) **diffValuer { return &r.PValuer },
			dIs(diffValuer{[]byte{}}, ""), dNull(diffValuer{nil})),

		dcol("[]byte in an embedded *struct", "inner_bytes", "BLOB", func(r *diffRow) *[]byte { return &r.InnerBytes }, bytes[:3]...),
	}
}

// dcell is one cell as read back.
type dcell struct {
	Null bool    // `col` IS NULL, read on its own
	Text *[]byte // the column as the server returns it in text form; nil for NULL
}

// diffText compares cell texts whole, and prints long ones by length and
// hash (a 2 MiB value would drown the diff).
var diffText = cmp.Transformer("text", func(b []byte) string {
	if len(b) <= 64 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%d bytes, sha256 %x, starting %q", len(b), sha256.Sum256(b), b[:32])
})

// diffShow describes a text for a message.
func diffShow(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%d bytes starting %q", len(s), s[:32])
}

// diffDump reads table back in id order: per column, per row, a cell. The
// query has no argument, so the server answers in the text protocol and a
// cell holds the exact bytes of its text form.
func diffDump(t *testing.T, db *sql.DB, table string, cols []diffCol, n int) [][]dcell {
	t.Helper()
	sel := []string{"id"}
	for _, c := range cols {
		sel = append(sel, c.read(), "`"+c.column+"` IS NULL")
	}
	rows := readQuery(t, db, "SELECT "+strings.Join(sel, ", ")+" FROM `"+table+"` ORDER BY id")
	defer rows.Close()
	out := make([][]dcell, len(cols))
	raw := make([]sql.RawBytes, len(sel))
	dest := make([]any, len(sel))
	for i := range raw {
		dest[i] = &raw[i]
	}
	for i := 0; rows.Next(); i++ {
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		if got := string(raw[0]); got != strconv.Itoa(i) {
			t.Fatalf("%s: row %d has id %s", table, i, got)
		}
		for j := range cols {
			var c dcell
			if v := raw[1+2*j]; v != nil {
				b := append([]byte{}, v...) // non-nil even when empty
				c.Text = &b
			}
			switch isNull := string(raw[2+2*j]); isNull {
			case "0", "1":
				c.Null = isNull == "1"
			default:
				t.Fatalf("%s: %s IS NULL = %q", table, cols[j].column, isNull)
			}
			out[j] = append(out[j], c)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	if len(out[0]) != n {
		t.Fatalf("%s has %d rows, want %d", table, len(out[0]), n)
	}
	return out
}

// diffLongData counts the COM_STMT_SEND_LONG_DATA (0x18) commands written
// on the connections it dials.
type diffLongData struct{ n atomic.Int64 }

func (d *diffLongData) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	lc := &diffConn{Conn: c}
	lc.out.onPacket = func(seq byte, head []byte, n int) {
		if seq == 0 && n > 0 && head[0] == 0x18 { // a command's first packet
			d.n.Add(1)
		}
	}
	return lc, nil
}

type diffConn struct {
	net.Conn
	mu  sync.Mutex
	out packetParser // client to server
}

func (c *diffConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.feed(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// diffLongCells counts the values of rows that are strings or byte slices
// (behind any pointers) of at least min bytes.
func diffLongCells(rows [][]any, min int) int {
	n := 0
	for _, row := range rows {
		for _, v := range row {
			rv := reflect.ValueOf(v)
			for rv.IsValid() && rv.Kind() == reflect.Pointer && !rv.IsNil() {
				rv = rv.Elem()
			}
			if rv.IsValid() && (rv.Kind() == reflect.String || rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8) && rv.Len() >= min {
				n++
			}
		}
	}
	return n
}

func TestDifferentialPaths(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newDiffEnv(t, ctx)
	paths := e.paths()

	dumps := make([][][]dcell, len(paths))
	for p, path := range paths {
		t.Run("write/"+path.name, func(t *testing.T) { dumps[p] = e.write(t, path) })
	}
	for j, c := range e.cols {
		t.Run(c.kind, func(t *testing.T) { e.compare(t, j, paths, dumps) })
	}
	t.Run("Writer empty []byte into NOT NULL LONGBLOB with Flush", func(t *testing.T) { diffWriterEmptyBytes(t, ctx, e.db) })
}

// diffEnv is the setting of TestDifferentialPaths: the pools, the columns,
// and the rows, as structs (items) and as values.
type diffEnv struct {
	ctx context.Context
	// counter counts the long-data commands on the connections of db and
	// db1; db1 is limited to one connection: one worker, no connection to
	// spare, so the session passes its arguments through the driver
	// statement's ExecContext instead of its Exec (session.run).
	counter  *diffLongData
	db, db1  *sql.DB
	cols     []diffCol
	n        int // rows
	items    []diffRow
	values   [][]any
	names    []string // the columns
	defs     []string // their definitions
	wantLong int      // long values in the rows: each must go as long data
}

func newDiffEnv(t *testing.T, ctx context.Context) *diffEnv {
	t.Helper()
	e := &diffEnv{ctx: ctx, counter: &diffLongData{}, cols: diffColumns()}
	connector, cfg := dialedConnector(t, testserver.Shared(t), e.counter.dial)
	e.db = openConnector(t, connector)
	e.db1 = openConnector(t, connector)
	e.db1.SetMaxOpenConns(1)

	for _, c := range e.cols {
		e.n = max(e.n, c.n)
	}
	e.n += 2 // the shorter cycles come round again
	e.items = make([]diffRow, e.n)
	e.values = make([][]any, e.n)
	e.names = []string{"id"}
	e.defs = []string{"id BIGINT PRIMARY KEY"}
	for _, c := range e.cols {
		e.names = append(e.names, c.column)
		e.defs = append(e.defs, "`"+c.column+"` "+c.sqlType)
	}
	for i := range e.items {
		r := &e.items[i]
		r.ID = int64(i)
		r.diffInner = &diffInner{}
		e.values[i] = []any{r.ID}
		for _, c := range e.cols {
			c.set(r, i)
			e.values[i] = append(e.values[i], c.get(r))
		}
	}

	// Every long value must go as long data whatever the statement: the
	// driver's threshold is highest for a one-row statement.
	serverPacket := queryInt(t, e.db, "SELECT @@max_allowed_packet")
	threshold := max(cfg.MaxAllowedPacket/(len(e.names)+1), 64)
	if diffLong < threshold || diffLong+1024 > serverPacket {
		t.Fatalf("long values of %d bytes: want them over the driver's one-row long-data threshold %d (maxAllowedPacket %d, %d placeholders) and under the server's max_allowed_packet %d",
			diffLong, threshold, cfg.MaxAllowedPacket, len(e.names), serverPacket)
	}
	if e.wantLong = diffLongCells(e.values, threshold); e.wantLong == 0 {
		t.Fatal("no long value in the rows")
	}
	return e
}

// diffPath is one way into the package.
type diffPath struct {
	name  string
	write func(t *testing.T, table string) (batch.Result, error)
	// chunks is the statements the path must take; 0: any number.
	chunks int
}

func (e *diffEnv) paths() []diffPath {
	ctx := e.ctx
	return []diffPath{
		{"Insert Values", func(t *testing.T, table string) (batch.Result, error) {
			return batch.Insert(ctx, e.db, batch.Values(table, e.names, e.values))
		}, 0},
		{"Writer Flush after each Write", func(t *testing.T, table string) (batch.Result, error) {
			return e.writeRows(t, table, true)
		}, e.n},
		{"Writer Close without Flush", func(t *testing.T, table string) (batch.Result, error) {
			return e.writeRows(t, table, false)
		}, 0},
		{"Insert Structs", func(t *testing.T, table string) (batch.Result, error) {
			rows := batch.Structs(table, e.items)
			if d := cmp.Diff(e.names, rows.Columns()); d != "" {
				t.Fatalf("Structs columns (-cases +struct):\n%s", d)
			}
			return batch.Insert(ctx, e.db, rows)
		}, 0},
		// The two other ways a session passes arguments (session.go run):
		// the driver statement's ExecContext, and database/sql's *sql.Stmt
		// on a caller-owned handle.
		{"Insert Values on a pool of one", func(t *testing.T, table string) (batch.Result, error) {
			return batch.Insert(ctx, e.db1, batch.Values(table, e.names, e.values))
		}, 0},
		{"Insert Values on a sql.Conn", func(t *testing.T, table string) (batch.Result, error) {
			conn, err := e.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			return batch.Insert(ctx, conn, batch.Values(table, e.names, e.values))
		}, 0},
	}
}

// writeRows writes the rows through a Writer on table, flushing after each
// row if flush is set.
func (e *diffEnv) writeRows(t *testing.T, table string, flush bool) (batch.Result, error) {
	t.Helper()
	w, err := batch.NewWriter(e.db, table, e.names)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(e.ctx) // after a failure; then ErrClosed
	for i, row := range e.values {
		if err := w.Write(e.ctx, row...); err != nil {
			t.Fatalf("Write row %d: %v", i, err)
		}
		if flush {
			if err := w.Flush(e.ctx); err != nil {
				t.Fatalf("Flush after row %d: %v", i, err)
			}
		}
	}
	return w.Close(e.ctx)
}

// write writes the rows by path into a table of its own and reads it back.
func (e *diffEnv) write(t *testing.T, path diffPath) [][]dcell {
	table := newTable(t, e.db, strings.Join(e.defs, ", "))
	before := e.counter.n.Load()
	res, err := path.write(t, table)
	if err != nil {
		t.Fatalf("write: %v (Result %+v)", err, res)
	}
	n := e.n
	if res.Rows != int64(n) || res.RowsAffected != int64(n) || path.chunks > 0 && res.Chunks != path.chunks {
		t.Errorf("Result.Rows = %d, RowsAffected = %d, Chunks = %d; want %d, %d and %d (0: any)",
			res.Rows, res.RowsAffected, res.Chunks, n, n, path.chunks)
	}
	got := e.counter.n.Load() - before
	if got < int64(e.wantLong) {
		t.Errorf("%d long-data commands sent, want at least %d (one per long value)", got, e.wantLong)
	}
	t.Logf("%d rows in %d statements, %d long-data commands for %d long values", res.Rows, res.Chunks, got, e.wantLong)
	return diffDump(t, e.db, table, e.cols, n)
}

// compare checks column j as every path stored it: each cell's NULL-ness
// and, where stated, its text, and the same bytes as the first path's.
func (e *diffEnv) compare(t *testing.T, j int, paths []diffPath, dumps [][][]dcell) {
	c := e.cols[j]
	for p, path := range paths {
		if dumps[p] == nil {
			t.Errorf("%s: nothing read back (its write failed)", path.name)
			continue
		}
		got := dumps[p][j]
		for i, cell := range got {
			switch want := c.text(i); {
			case cell.Null != c.null(i):
				t.Errorf("%s, row %d: %s IS NULL = %v, want %v (value %s)", path.name, i, c.column, cell.Null, c.null(i), diffValue(e.values[i][j+1]))
			case (cell.Text == nil) != cell.Null:
				t.Errorf("%s, row %d: IS NULL = %v, but the cell reads as nil = %v", path.name, i, cell.Null, cell.Text == nil)
			case !cell.Null && want != nil && string(*cell.Text) != *want:
				t.Errorf("%s, row %d: the server returns %s, want %s (value %s)", path.name, i, diffShow(string(*cell.Text)), diffShow(*want), diffValue(e.values[i][j+1]))
			}
		}
		if p > 0 && dumps[0] != nil {
			if d := cmp.Diff(dumps[0][j], got, diffText); d != "" {
				t.Errorf("%[1]s stored other bytes than %[2]s (-%[2]s +%[1]s):\n%[3]s", path.name, paths[0].name, d)
			}
		}
	}
}

// diffWriterEmptyBytes is the bug report: Writer, []byte{} into a NOT NULL
// LONGBLOB, Flush after every Write. A nil slice would be sent as NULL and
// refused.
func diffWriterEmptyBytes(t *testing.T, ctx context.Context, db *sql.DB) {
	table := newTable(t, db, "id BIGINT PRIMARY KEY, v LONGBLOB NOT NULL")
	w, err := batch.NewWriter(db, table, []string{"id", "v"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	const rows = 3
	for i := range rows {
		if err := w.Write(ctx, i, []byte{}); err != nil {
			t.Fatalf("Write row %d: %v", i, err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("Flush after row %d: %v", i, err)
		}
	}
	res, err := w.Close(ctx)
	if err != nil || res.Rows != rows || res.Chunks != rows {
		t.Fatalf("Close: Rows = %d, Chunks = %d, err = %v; want %d, %d, nil", res.Rows, res.Chunks, err, rows, rows)
	}
	got := diffDump(t, db, table, []diffCol{{column: "v", sqlType: "LONGBLOB"}}, rows)[0]
	empty := []byte{}
	want := []dcell{{Text: &empty}, {Text: &empty}, {Text: &empty}}
	if d := cmp.Diff(want, got, diffText); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
}

// diffValue describes a Go value for a message: pointers followed, long
// texts shortened.
func diffValue(v any) string {
	rv := reflect.ValueOf(v)
	prefix := ""
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return prefix + fmt.Sprintf("(%s)(nil)", rv.Type())
		}
		prefix += "&"
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return "nil"
	}
	if (rv.Kind() == reflect.String || rv.Kind() == reflect.Slice) && rv.Len() > 64 {
		return prefix + fmt.Sprintf("%s of length %d", rv.Type(), rv.Len())
	}
	return prefix + fmt.Sprintf("%#v", rv.Interface())
}
