package main

// Real data for the end-to-end test: Debian's unicode-data package's
// UnicodeData.txt, turned by the test into CSV, TSV and NDJSON files of one
// table, whose checksum after each load is compared with the checksum of
// the rows the files were made from. The character column holds every
// control character (quotes, commas, CR, LF, tab, NUL, backslash, Ctrl-Z),
// so the files exercise every quoting and escape rule on real text.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// unicodeDataPath is where Debian's unicode-data package puts the file.
const unicodeDataPath = "/usr/share/unicode/UnicodeData.txt"

// ucdDDL is the table the files are loaded into.
const ucdDDL = `(
	code INT UNSIGNED NOT NULL PRIMARY KEY,
	ch VARCHAR(1) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
	name VARCHAR(255) NOT NULL,
	category CHAR(2) NOT NULL,
	combining SMALLINT UNSIGNED NOT NULL,
	bidi VARCHAR(3) NOT NULL,
	decomposition VARCHAR(255) NULL,
	decimal_digit TINYINT NULL,
	digit TINYINT NULL,
	numeric_text VARCHAR(32) NULL,
	numeric_value DOUBLE NULL,
	numeric_dec DECIMAL(30,10) NULL,
	mirrored BOOL NOT NULL,
	old_name VARCHAR(255) NULL,
	upper_code INT UNSIGNED NULL,
	lower_code INT UNSIGNED NULL,
	title_code INT UNSIGNED NULL,
	line VARBINARY(512) NOT NULL
)`

// ucdColumns are the table's columns, in order.
var ucdColumns = []string{"code", "ch", "name", "category", "combining", "bidi", "decomposition", "decimal_digit",
	"digit", "numeric_text", "numeric_value", "numeric_dec", "mirrored", "old_name", "upper_code", "lower_code",
	"title_code", "line"}

// Columns whose values need a canonical form to compare.
const (
	colNumericValue = 10
	colNumericDec   = 11
)

// ucdRow is one row: a value per column, nil for NULL, in the canonical
// text the checksum uses (what database/sql scans from the table).
type ucdRow []*string

// unicodeRows reads UnicodeData.txt into rows. It skips the test when the
// file is absent, unless CI is "true", where the file must be there.
func unicodeRows(t *testing.T) []ucdRow {
	t.Helper()
	data, err := os.ReadFile(unicodeDataPath)
	if os.IsNotExist(err) && os.Getenv("CI") != "true" {
		t.Skipf("%s is absent: apt-get install unicode-data", unicodeDataPath)
	}
	if err != nil {
		t.Fatalf("%v: this test needs Debian's unicode-data package (apt-get install unicode-data), and does not skip with CI=true", err)
	}
	var rows []ucdRow
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		row, err := ucdRowOf(sc.Text())
		if err != nil {
			t.Fatalf("%s: %q: %v", unicodeDataPath, sc.Text(), err)
		}
		rows = append(rows, row)
	}
	if len(rows) < 30000 {
		t.Fatalf("%s has %d lines; want the full file", unicodeDataPath, len(rows))
	}
	return rows
}

// ucdRowOf turns one line of UnicodeData.txt (15 fields separated by ';')
// into a row.
func ucdRowOf(line string) (ucdRow, error) {
	f := strings.Split(line, ";")
	if len(f) != 15 {
		return nil, fmt.Errorf("%d fields", len(f))
	}
	code, err := strconv.ParseUint(f[0], 16, 32)
	if err != nil {
		return nil, err
	}
	var ch *string
	if r := rune(code); utf8.ValidRune(r) {
		ch = ptr(string(r))
	}
	mirrored := "0"
	if f[9] == "Y" {
		mirrored = "1"
	}
	value, dec := numeric(f[8])
	return ucdRow{ptr(strconv.FormatUint(code, 10)), ch, ptr(f[1]), ptr(f[2]), ptr(f[3]), ptr(f[4]), orNull(f[5]),
		orNull(f[6]), orNull(f[7]), orNull(f[8]), value, dec, ptr(mirrored), orNull(f[10]),
		hexCode(f[12]), hexCode(f[13]), hexCode(f[14]), ptr(line)}, nil
}

func ptr(s string) *string { return &s }

// orNull is nil for an empty field.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// hexCode is a code point field in decimal, nil if empty.
func hexCode(s string) *string {
	if s == "" {
		return nil
	}
	v, _ := strconv.ParseUint(s, 16, 32)
	return ptr(strconv.FormatUint(v, 10))
}

// numeric returns a numeric value ("1/2", "1000000") as the shortest
// float64 text, and as decimal text when DECIMAL(30,10) holds it exactly
// (nil otherwise, and both nil for none).
func numeric(s string) (value, dec *string) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, nil
	}
	f, _ := r.Float64()
	value = ptr(strconv.FormatFloat(f, 'g', -1, 64))
	text := strings.TrimRight(strings.TrimRight(r.FloatString(10), "0"), ".")
	if back, _ := new(big.Rat).SetString(text); back.Cmp(r) == 0 {
		dec = &text
	}
	return value, dec
}

// canonical is the form in which checksum compares a value of column col:
// a DOUBLE as its shortest text, a DECIMAL as a rational ("0.5000000000"
// from the table and "0.5" from a file are both 1/2).
func canonical(col int, s string) string {
	switch col {
	case colNumericValue:
		f, _ := strconv.ParseFloat(s, 64)
		return strconv.FormatFloat(f, 'g', -1, 64)
	case colNumericDec:
		r, _ := new(big.Rat).SetString(s)
		return r.RatString()
	}
	return s
}

// checksum hashes rows, in order: each value in its canonical form,
// length-prefixed, NULL apart.
func checksum(rows []ucdRow) string {
	h := sha256.New()
	var n [8]byte
	for _, row := range rows {
		for i, v := range row {
			if v == nil {
				h.Write([]byte{0})
				continue
			}
			c := canonical(i, *v)
			binary.BigEndian.PutUint64(n[:], uint64(len(c)))
			h.Write([]byte{1})
			h.Write(n[:])
			h.Write([]byte(c))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tableChecksum reads table in code order and hashes it as checksum does.
// The query has an argument, so it is prepared and the values come in the
// binary protocol: a DOUBLE arrives as the float64 it is.
func tableChecksum(t *testing.T, db *sql.DB, table string) (string, int) {
	t.Helper()
	rows, err := db.Query("SELECT * FROM "+table+" WHERE code >= ? ORDER BY code", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var all []ucdRow
	vals := make([]sql.NullString, len(ucdColumns))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := make(ucdRow, len(vals))
		for i, v := range vals {
			if v.Valid {
				row[i] = ptr(v.String)
			}
		}
		all = append(all, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return checksum(all), len(all)
}

// writeCSV writes rows as CSV with a header, a BOM and CRLF; NULL is an
// empty unquoted field (load with an empty --null token), and a field is quoted when
// it holds a comma, a quote, a CR or an LF.
func writeCSV(rows []ucdRow) []byte {
	var b bytes.Buffer
	b.WriteString("\xEF\xBB\xBF" + strings.Join(ucdColumns, ",") + "\r\n")
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte(',')
			}
			switch {
			case v == nil:
			case strings.ContainsAny(*v, ",\"\r\n") || *v == "":
				b.WriteString(`"` + strings.ReplaceAll(*v, `"`, `""`) + `"`)
			default:
				b.WriteString(*v)
			}
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// tsvEscaper escapes a field as SELECT ... INTO OUTFILE does (a backslash
// before a real tab or LF, \0 for NUL) and as mysql --batch does (\r, \b,
// \Z), so the reader sees both styles.
var tsvEscaper = strings.NewReplacer(`\`, `\\`, "\t", "\\\t", "\n", "\\\n", "\x00", `\0`, "\r", `\r`, "\b", `\b`, "\x1a", `\Z`)

// writeTSV writes rows as LOAD DATA's default format with a header; NULL
// is \N.
func writeTSV(rows []ucdRow) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join(ucdColumns, "\t") + "\n")
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			if v == nil {
				b.WriteString(`\N`)
			} else {
				b.WriteString(tsvEscaper.Replace(*v))
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// jsonNumbers are the columns written as JSON numbers.
var jsonNumbers = map[int]bool{0: true, 4: true, 7: true, 8: true, 10: true, 11: true, 14: true, 15: true, 16: true}

// writeNDJSON writes rows as NDJSON. Even rows list their keys in table
// order with explicit nulls; odd rows list them backwards and leave NULLs
// out. mirrored is a JSON boolean.
func writeNDJSON(rows []ucdRow) []byte {
	var b bytes.Buffer
	for n, row := range rows {
		b.WriteByte('{')
		first := true
		for k := range row {
			i := k
			if n%2 == 1 {
				i = len(row) - 1 - k
			}
			v := row[i]
			if v == nil && n%2 == 1 {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			key, _ := json.Marshal(ucdColumns[i])
			b.Write(key)
			b.WriteByte(':')
			b.WriteString(jsonValue(i, v))
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// jsonValue is the JSON text of column i's value v.
func jsonValue(i int, v *string) string {
	switch {
	case v == nil:
		return "null"
	case i == 12:
		return map[string]string{"0": "false", "1": "true"}[*v]
	case jsonNumbers[i]:
		return *v
	}
	s, _ := json.Marshal(*v)
	return string(s)
}
