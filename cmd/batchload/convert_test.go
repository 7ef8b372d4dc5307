package main

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestConverters(t *testing.T) {
	col := func(dataType, columnType string) column {
		return column{Name: "c", DataType: dataType, ColumnType: columnType}
	}
	intCol, uintCol := col("int", "int(11)"), col("bigint", "bigint(20) unsigned")
	dbl, flt := col("double", "double"), col("float", "float")
	dec := column{Name: "c", DataType: "decimal", ColumnType: "decimal(10,2)", Scale: 2}
	dt3 := column{Name: "c", DataType: "datetime", ColumnType: "datetime(3)", FSP: 3}
	vc := column{Name: "c", DataType: "varchar", ColumnType: "varchar(3)", CharLen: 3, Collation: "utf8mb4_general_ci"}
	enum := column{Name: "c", DataType: "enum", ColumnType: "enum('a','B','it''s','x\\\\y')", Collation: "utf8mb4_general_ci"}
	enumBin := enum
	enumBin.Collation = "utf8mb4_bin"
	set := column{Name: "c", DataType: "set", ColumnType: "set('x','y')", Collation: "utf8mb4_general_ci"}
	json := column{Name: "c", DataType: "longtext", ColumnType: "longtext", JSON: true}
	for _, c := range []struct {
		col  column
		f    Field
		want any // for a refusal: the error's text, from "refused: "
	}{
		{intCol, Field{Text: "42"}, int64(42)},
		{intCol, Field{Text: "-9223372036854775808"}, int64(math.MinInt64)},
		{intCol, Field{Text: "+7"}, int64(7)},
		{intCol, Field{Text: "9223372036854775808"}, "9223372036854775808"}, // out of range: the server refuses
		{intCol, Field{Text: "1.0"}, int64(1)},                              // a whole number, written otherwise
		{intCol, Field{Text: "-1.50e1"}, int64(-15)},
		{intCol, Field{Text: "1e3"}, int64(1000)},
		{intCol, Field{Text: "0.000"}, int64(0)},
		{intCol, Field{Text: "1e30"}, "1e30"}, // out of range: the server refuses
		{intCol, Field{Text: "1.0", Kind: Number}, int64(1)},
		{intCol, Field{Text: "1.5"}, `refused: column c: "1.5" is not a whole number: INT(11) would round it`},
		{intCol, Field{Text: "1e-1"}, `refused: column c: "1e-1" is not a whole number`},
		{intCol, Field{Text: "12abc"}, `refused: column c: "12abc" is not an integer`},
		{intCol, Field{Text: ""}, `refused: column c: "" is not an integer`}, // not NULL, not 0
		{intCol, Field{Text: " 1"}, `refused: column c: " 1" is not an integer`},
		{intCol, Field{Text: "0x1F"}, `refused: column c: "0x1F" is not an integer`},
		{intCol, Field{Kind: Null}, nil},
		{intCol, Field{Text: "true", Kind: Bool}, int64(1)},
		{intCol, Field{Text: "false", Kind: Bool}, int64(0)},
		{uintCol, Field{Text: "18446744073709551615"}, uint64(math.MaxUint64)},
		{uintCol, Field{Text: "-1"}, int64(-1)}, // sent as is: the server refuses
		{col("bit", "bit(8)"), Field{Text: "5"}, uint64(5)},
		{col("bit", "bit(8)"), Field{Text: "\x01"}, []byte{1}}, // INTO OUTFILE writes a BIT's bytes
		{col("year", "year(4)"), Field{Text: "2024"}, "2024"},
		{col("year", "year(4)"), Field{Text: "0"}, "0"}, // the text '0' is 2000, the number 0 is 0000
		{col("year", "year(4)"), Field{Text: "2024.5"}, `refused: column c: "2024.5" is not a year`},
		{dbl, Field{Text: "0.1"}, 0.1},
		{dbl, Field{Text: "1.50"}, 1.5},
		{dbl, Field{Text: "100"}, 100.0},
		{dbl, Field{Text: "-0"}, math.Copysign(0, -1)},
		{dbl, Field{Text: "1e+21"}, 1e21},
		{dbl, Field{Text: "1e21"}, "1e21"}, // formats as 1e+21: sent as text, which the server converts alike
		{dbl, Field{Text: "1000000000000000000000"}, 1e21},
		{dbl, Field{Text: "0.1000000000000000000001"}, "0.1000000000000000000001"}, // would round
		{dbl, Field{Text: "1.5E3"}, "1.5E3"},
		{dbl, Field{Text: "1e400"}, "1e400"},   // out of range: the server refuses
		{dbl, Field{Text: "0e-400"}, "0e-400"}, // zero: sent as text, which the server converts alike
		{dbl, Field{Text: "1e-400"}, `refused: column c: "1e-400" is too small for DOUBLE: the server would store 0`},
		{flt, Field{Text: "1e-50"}, `refused: column c: "1e-50" is too small for FLOAT`},
		{flt, Field{Text: "1e39"}, "1e39"}, // out of FLOAT's range: the server refuses
		{dbl, Field{Text: "NaN"}, `refused: column c: "NaN" is not a number`},
		{dbl, Field{Text: "Inf"}, `refused: column c: "Inf" is not a number`},
		{dbl, Field{Text: "0x1p-2"}, `refused: column c: "0x1p-2" is not a number`},
		{dbl, Field{Text: "1_000"}, `refused: column c: "1_000" is not a number`},
		{dbl, Field{Text: " 1.5"}, `refused: column c: " 1.5" is not a number`},
		{dbl, Field{Text: "abc"}, `refused: column c: "abc" is not a number`},
		{dec, Field{Text: "12345678901234567890.123"}, `refused: column c: "12345678901234567890.123" has 3 decimal places and DECIMAL(10,2) keeps 2`},
		{dec, Field{Text: "12345678901234567890.12"}, "12345678901234567890.12"}, // too large: the server refuses
		{dec, Field{Text: "1.500"}, "1.500"},
		{dec, Field{Text: "1.5e-1"}, "1.5e-1"},
		{dec, Field{Text: "1.5e-3"}, `refused: column c: "1.5e-3" has 4 decimal places`},
		{dec, Field{Text: ".5"}, ".5"},
		{dec, Field{Text: "1,5"}, `refused: column c: "1,5" is not a number`},
		{dec, Field{Text: "1.5", Kind: Number}, "1.5"},
		{dec, Field{Kind: Null}, nil},
		{col("date", "date"), Field{Text: "2024-01-02"}, "2024-01-02"},
		{col("date", "date"), Field{Text: "2024-01-02 00:00:00.000"}, "2024-01-02 00:00:00.000"},
		{col("date", "date"), Field{Text: "2024-01-02 03:04:05"}, `refused: column c: "2024-01-02 03:04:05" has a time of day, which a DATE column would drop`},
		{col("date", "date"), Field{Text: "2024-02-30"}, "2024-02-30"}, // the server refuses
		{col("datetime", "datetime"), Field{Text: "2024-01-02 03:04:05"}, "2024-01-02 03:04:05"},
		{col("datetime", "datetime"), Field{Text: "2024-01-02 03:04:05.000"}, "2024-01-02 03:04:05.000"},
		{col("datetime", "datetime"), Field{Text: "2024-01-02 03:04:05.7"}, `refused: column c: "2024-01-02 03:04:05.7" has 1 fractional digits and DATETIME keeps 0`},
		{dt3, Field{Text: "2024-01-02 03:04:05.123"}, "2024-01-02 03:04:05.123"},
		{dt3, Field{Text: "2024-01-02 03:04:05.1234"}, `refused: column c: "2024-01-02 03:04:05.1234" has 4 fractional digits and DATETIME(3) keeps 3`},
		{col("time", "time"), Field{Text: "10:00:00.6"}, `refused: column c: "10:00:00.6" has 1 fractional digits and TIME keeps 0`},
		{vc, Field{Text: "007"}, "007"},
		{vc, Field{Text: "é😀日"}, "é😀日"}, // 3 characters in 9 bytes
		{vc, Field{Text: "abc  "}, `refused: column c: "abc  " is 5 characters with its trailing spaces and VARCHAR(3) holds 3`},
		{vc, Field{Text: "abcd"}, "abcd"}, // too long: the server refuses
		{vc, Field{Text: "true", Kind: Bool}, "true"},
		{enum, Field{Text: "a"}, "a"},
		{enum, Field{Text: "b"}, "b"}, // case-insensitive collation
		{enum, Field{Text: "it's"}, "it's"},
		{enum, Field{Text: `x\y`}, `x\y`},
		{enum, Field{Text: "1"}, `refused: column c: "1" is not one of enum('a','B','it''s','x\\y')`},
		{enum, Field{Text: "a "}, `refused: column c: "a " is not one of`},
		{enum, Field{Text: ""}, `refused: column c: "" is not one of`},
		{enumBin, Field{Text: "b"}, `refused: column c: "b" is not one of`},
		{set, Field{Text: "x,Y"}, "x,Y"},
		{set, Field{Text: ""}, ""},
		{set, Field{Text: "x,,y"}, `refused: column c: "x,,y" has "", which is not one of set('x','y')`},
		{set, Field{Text: "z"}, `refused: column c: "z" is not one of set('x','y')`},
		{col("varbinary", "varbinary(4)"), Field{Text: "\x00\xff"}, []byte{0, 0xff}},
		{col("blob", "blob"), Field{Kind: Null}, nil},
		{col("json", "json"), Field{Text: `{"a":1}`, Kind: JSON}, `{"a":1}`},
		{col("json", "json"), Field{Text: `a"<b>`, Kind: String}, `"a\"<b>"`},
		{json, Field{Text: `a"<b>`, Kind: String}, `"a\"<b>"`}, // MariaDB's JSON
		{col("json", "json"), Field{Text: `[1]`}, `[1]`},       // CSV: JSON text already
		{col("json", "json"), Field{Text: "1.0", Kind: Number}, "1.0"},
		{col("longtext", "longtext"), Field{Text: `a`, Kind: String}, "a"},
		{col("mystery", "mystery"), Field{Text: "x"}, "x"},
	} {
		got, err := converterFor(c.col)(c.f)
		if want, ok := c.want.(string); ok && strings.HasPrefix(want, "refused: ") {
			if err == nil || !strings.HasPrefix(err.Error(), strings.TrimPrefix(want, "refused: ")) {
				t.Errorf("%s %q: got %#v, %v; want the error %q", c.col.ColumnType, c.f.Text, got, err, want)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) || got != nil && reflect.TypeOf(got) != reflect.TypeOf(c.want) {
			t.Errorf("%s %+v: got %#v, %v; want %#v", c.col.ColumnType, c.f, got, err, c.want)
		}
		if f, ok := got.(float64); ok && math.Signbit(f) != math.Signbit(c.want.(float64)) {
			t.Errorf("%s %q: sign of zero lost", c.col.ColumnType, c.f.Text)
		}
	}
}

func TestParseMembers(t *testing.T) {
	got := parseMembers(`enum('a','it''s','c,d','x\\y','')`)
	if want := []string{"a", "it's", "c,d", `x\y`, ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
