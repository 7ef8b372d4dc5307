package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// converter turns a field into the value sent for one column: the Go value
// that costs least to send and for the server to convert, and that says
// exactly what the input says.
//
// Nothing is coerced. A value the server would refuse is sent as the
// string it is, and the server (in the strict sql_mode the library insists
// on) refuses it: the row becomes a reject with the server's own error. A
// value the server would take but change without an error, even in strict
// mode, is refused here instead, with an error naming the column: a
// fraction into an integer column (rounded), more decimals than a DECIMAL
// keeps (rounded), a number that underflows to 0, a time of day into a
// DATE or more fractional seconds than the column keeps (dropped), trailing
// spaces beyond a CHAR or VARCHAR's length (cut), a value that is not one
// of an ENUM's or a SET's (an index, or padded). A text that is not a
// number at all is refused here too for a numeric column: the server takes
// some (" 1" into an INT is 1) and refuses the others with "Data
// truncated", where this names the column and the value.
type converter func(Field) (any, error)

// converterFor returns the converter for a column.
func converterFor(c column) converter {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return integerConverter(c)
	case "year":
		return yearConverter(c)
	case "bit":
		return toBit
	case "float", "double", "real", "double precision":
		return floatConverter(c)
	case "decimal", "numeric", "dec", "fixed":
		return decimalConverter(c)
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint",
		"multilinestring", "multipolygon", "geometrycollection", "vector":
		return toBytes
	case "char", "varchar":
		return charConverter(c)
	case "enum", "set":
		return memberConverter(c)
	case "date":
		return dateConverter(c)
	case "datetime", "timestamp", "time":
		return fractionConverter(c)
	}
	if c.JSON || c.DataType == "json" {
		return toJSON
	}
	// Other character types and any type this tool does not know: text.
	return toText
}

// valueError is a field refused by the tool for its column (see converter).
type valueError struct {
	col string
	msg string
}

func (e *valueError) Error() string { return "column " + e.col + ": " + e.msg }

// refuse returns a *valueError for column c: the field's text, quoted, and
// what is wrong with it.
func refuse(c column, f Field, format string, args ...any) error {
	return &valueError{col: c.Name, msg: fmt.Sprintf("%s %s", quoteValue(f.Text), fmt.Sprintf(format, args...))}
}

// quoteValue quotes a value for a message, cut to 60 bytes.
func quoteValue(s string) string {
	if len(s) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// toText sends the field's text.
func toText(f Field) (any, error) {
	if f.Kind == Null {
		return nil, nil
	}
	return f.Text, nil
}

// checkedText sends the field's text (toText) once check, which sees only
// fields that are not NULL, lets it through.
func checkedText(check func(Field) error) converter {
	return func(f Field) (any, error) {
		if f.Kind != Null {
			if err := check(f); err != nil {
				return nil, err
			}
		}
		return toText(f)
	}
}

// numberField is the converter of a numeric column that sends NULL as NULL, a
// JSON true or false as 1 or 0, and hands any other field to text.
func numberField(text converter) converter {
	return func(f Field) (any, error) {
		switch f.Kind {
		case Null:
			return nil, nil
		case Bool:
			return boolInt(f), nil
		}
		return text(f)
	}
}

// boolInt is 1 for a JSON true and 0 for false.
func boolInt(f Field) int64 {
	if f.Text == "true" {
		return 1
	}
	return 0
}

// integerConverter sends an integer as int64 (uint64 for UNSIGNED above
// int64's range). A number written otherwise ("1.0", "1e3") is sent as the
// integer it is; a fraction, or a text that is not a number, is refused.
// A number outside 64 bits goes as its text, for the server to refuse as
// out of range. JSON true and false are 1 and 0.
func integerConverter(c column) converter {
	unsigned := c.Unsigned()
	return numberField(func(f Field) (any, error) {
		if v, ok := parseInteger(f.Text, unsigned); ok {
			return v, nil
		}
		d, ok := parseNumber(f.Text)
		switch {
		case !ok:
			return nil, refuse(c, f, "is not an integer")
		case d.scale() > 0:
			return nil, refuse(c, f, "is not a whole number: %s would round it", strings.ToUpper(c.ColumnType))
		}
		if digits, ok := d.integerDigits(); ok {
			if v, ok := parseInteger(digits, unsigned); ok {
				return v, nil
			}
		}
		return f.Text, nil // out of range: the server refuses it
	})
}

// parseInteger parses a base-10 integer with an optional sign: int64, or
// uint64 above int64's range when unsigned.
func parseInteger(s string, unsigned bool) (any, bool) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, true
	}
	if unsigned {
		if v, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 64); err == nil {
			return v, true
		}
	}
	return nil, false
}

// yearConverter sends a YEAR as its text, so that the server reads a one-
// or two-digit year as text ('0' is 2000, where the number 0 is 0000), as
// LOAD DATA does. Only an integer literal is taken.
func yearConverter(c column) converter {
	return numberField(func(f Field) (any, error) {
		if _, ok := parseInteger(f.Text, false); !ok {
			return nil, refuse(c, f, "is not a year")
		}
		return f.Text, nil
	})
}

// toBit sends a BIT: base-10 digits as the number they are (uint64), any
// other text as its bytes, which the server reads as a binary string (as
// SELECT ... INTO OUTFILE writes BIT values).
var toBit = numberField(func(f Field) (any, error) {
	if v, err := strconv.ParseUint(f.Text, 10, 64); err == nil {
		return v, nil
	}
	return []byte(f.Text), nil
})

// decimalConverter sends DECIMAL text as it is, which the server converts
// exactly (a float64 would round it). A text that is not a number, or that
// has more significant decimals than the column's scale, is refused.
func decimalConverter(c column) converter {
	return numberField(func(f Field) (any, error) {
		d, ok := parseNumber(f.Text)
		switch {
		case !ok:
			return nil, refuse(c, f, "is not a number")
		case d.scale() > c.Scale:
			return nil, refuse(c, f, "has %d decimal places and %s keeps %d: the server would round it",
				d.scale(), strings.ToUpper(c.ColumnType), c.Scale)
		}
		return f.Text, nil
	})
}

// floatConverter sends a float64 when the text parses to a finite float
// that formats back to the same text (trailing fractional zeros aside), so
// that nothing the input says is lost on the way; any other number goes as
// its text, for the server to convert (or, out of range, refuse). A text
// that is not a number, or a number too small for the column that the
// server would store as 0, is refused.
func floatConverter(c column) converter {
	bits := 64
	if c.DataType == "float" {
		bits = 32
	}
	return numberField(func(f Field) (any, error) {
		d, ok := parseNumber(f.Text)
		if !ok {
			return nil, refuse(c, f, "is not a number")
		}
		v, err := strconv.ParseFloat(f.Text, bits)
		switch {
		case err != nil || math.IsInf(v, 0):
			return f.Text, nil // out of range: the server refuses it
		case v == 0 && !d.zero():
			return nil, refuse(c, f, "is too small for %s: the server would store 0", strings.ToUpper(c.ColumnType))
		}
		if v, err = strconv.ParseFloat(f.Text, 64); err == nil && roundTrips(f.Text, v) {
			return v, nil
		}
		return f.Text, nil
	})
}

// roundTrips reports whether v, formatted, is the text s, ignoring trailing
// zeros after a decimal point ("1.50" is 1.5).
func roundTrips(s string, v float64) bool {
	if strings.IndexByte(s, '.') >= 0 && strings.IndexAny(s, "eE") < 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	var buf [32]byte
	return s == string(strconv.AppendFloat(buf[:0], v, 'f', -1, 64)) ||
		s == string(strconv.AppendFloat(buf[:0], v, 'g', -1, 64))
}

// number is a decimal literal: [+-] digits [. digits] [e [+-] digits], or
// [+-] . digits [...], as the server parses numbers from text, without
// white space, hexadecimal or a thousands separator.
type number struct {
	neg    bool   // a leading minus
	digits string // the integer and fraction digits, without the point
	frac   int    // how many of digits are after the point
	exp    int64  // the exponent (clamped far beyond any column's range)
}

// parseNumber parses a decimal literal.
func parseNumber(s string) (number, bool) {
	var n number
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		n.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := s[start:i]
	var fracDigits string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracDigits = s[fs:i]
	}
	if intDigits == "" && fracDigits == "" {
		return n, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			if n.exp < 1<<40 {
				n.exp = n.exp*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == es {
			return n, false
		}
		if neg {
			n.exp = -n.exp
		}
	}
	if i != len(s) {
		return n, false
	}
	n.digits, n.frac = intDigits+fracDigits, len(fracDigits)
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// zero reports whether the number is 0.
func (n number) zero() bool { return strings.Trim(n.digits, "0") == "" }

// scale is the number of significant decimals: those after the point once
// the exponent is applied, trailing zeros aside; 0 for an integer.
func (n number) scale() int {
	if n.zero() {
		return 0
	}
	trimmed := strings.TrimRight(n.digits, "0")
	s := int64(n.frac) - int64(len(n.digits)-len(trimmed)) - n.exp
	return int(min(max(s, 0), math.MaxInt32))
}

// integerDigits returns a whole number's digits, signed, when it has at
// most 20 of them (more is out of any integer column's range).
func (n number) integerDigits() (string, bool) {
	d := strings.TrimLeft(n.digits, "0")
	shift := n.exp - int64(n.frac) // > 0: zeros to add; < 0: zero digits to drop
	switch {
	case d == "":
		return "0", true
	case shift < 0:
		d = d[:len(d)-int(-shift)] // the dropped digits are zeros: scale() == 0
	case shift > 20:
		return "", false
	default:
		d += strings.Repeat("0", int(shift))
	}
	if len(d) > 20 {
		return "", false
	}
	if n.neg {
		d = "-" + d
	}
	return d, true
}

// dateConverter sends a DATE as its text, for the server to parse; a date
// with a time of day other than midnight, which a DATE column would drop,
// is refused.
func dateConverter(c column) converter {
	return checkedText(func(f Field) error {
		s := f.Text
		if len(s) > 10 && (s[10] == ' ' || s[10] == 'T') && strings.Count(s[:10], "-") == 2 &&
			strings.Trim(s[11:], "0123456789:.") == "" {
			if strings.Trim(s[11:], "0:.") != "" {
				return refuse(c, f, "has a time of day, which a DATE column would drop")
			}
		}
		return nil
	})
}

// fractionConverter sends a DATETIME, TIMESTAMP or TIME as its text, for
// the server to parse; one with more fractional seconds than the column
// keeps, which the server would drop, is refused.
func fractionConverter(c column) converter {
	return checkedText(func(f Field) error {
		s := f.Text
		if dot := strings.LastIndexByte(s, '.'); dot >= 0 && strings.IndexByte(s[:dot], ':') >= 0 {
			frac := s[dot+1:]
			if len(frac) > c.FSP && strings.Trim(frac, "0123456789") == "" && strings.Trim(frac[c.FSP:], "0") != "" {
				return refuse(c, f, "has %d fractional digits and %s keeps %d: the server would drop the rest",
					len(frac), strings.ToUpper(c.ColumnType), c.FSP)
			}
		}
		return nil
	})
}

// charConverter sends a CHAR or VARCHAR as its text. A text longer than
// the column only by trailing spaces, which the server would cut without
// an error, is refused; one longer than that goes, for the server to
// refuse.
func charConverter(c column) converter {
	return checkedText(func(f Field) error {
		s := f.Text
		if c.CharLen > 0 && int64(len(s)) > c.CharLen {
			if n := utf8.RuneCountInString(s); int64(n) > c.CharLen &&
				int64(utf8.RuneCountInString(strings.TrimRight(s, " "))) <= c.CharLen {
				return refuse(c, f, "is %d characters with its trailing spaces and %s holds %d: the server would cut them",
					n, strings.ToUpper(c.ColumnType), c.CharLen)
			}
		}
		return nil
	})
}

// memberConverter sends an ENUM or SET value as its text when it is one of
// the column's values (each element of a SET, comma-separated; a SET may be
// empty), as written or, under a case-insensitive collation, in another
// case. Anything else is refused: the server would store an index's value,
// or a padded value's, or refuse it (1265).
func memberConverter(c column) converter {
	members := parseMembers(c.ColumnType)
	fold := !strings.HasSuffix(c.Collation, "_bin") && strings.Contains(c.Collation, "_ci")
	isMember := func(s string) bool {
		for _, m := range members {
			if s == m || fold && strings.EqualFold(s, m) {
				return true
			}
		}
		return false
	}
	set := c.DataType == "set"
	return func(f Field) (any, error) {
		if f.Kind == Null {
			return nil, nil
		}
		s := f.Text
		if set {
			if s == "" {
				return s, nil
			}
			elems := strings.Split(s, ",")
			for _, e := range elems {
				switch {
				case isMember(e):
				case len(elems) == 1:
					return nil, refuse(c, f, "is not one of %s", c.ColumnType)
				default:
					return nil, refuse(c, f, "has %s, which is not one of %s", quoteValue(e), c.ColumnType)
				}
			}
			return s, nil
		}
		if !isMember(s) {
			return nil, refuse(c, f, "is not one of %s", c.ColumnType)
		}
		return s, nil
	}
}

// parseMembers returns the values of an ENUM or SET from its COLUMN_TYPE,
// as in enum('a','b'): each value in single quotes, in which a quote
// and a backslash are written twice.
func parseMembers(columnType string) []string {
	open := strings.IndexByte(columnType, '(')
	if open < 0 {
		return nil
	}
	s := columnType[open+1:]
	var members []string
	var cur []byte
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case !in && ch == '\'':
			in, cur = true, cur[:0]
		case !in:
			// a comma or the closing parenthesis
		case ch == '\'' && i+1 < len(s) && s[i+1] == '\'':
			cur = append(cur, '\'')
			i++
		case ch == '\'':
			in = false
			members = append(members, string(cur))
		case ch == '\\' && i+1 < len(s):
			cur = append(cur, s[i+1])
			i++
		default:
			cur = append(cur, ch)
		}
	}
	return members
}

// toBytes sends binary data as []byte. A JSON true or false is its text.
func toBytes(f Field) (any, error) {
	if f.Kind == Null {
		return nil, nil
	}
	return []byte(f.Text), nil
}

// toJSON sends JSON text. A CSV or TSV field is taken as JSON text already;
// an NDJSON value is sent as the JSON it is, so a JSON string keeps its
// quotes.
func toJSON(f Field) (any, error) {
	if f.Kind != String {
		return toText(f)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(f.Text) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n"), nil
}
