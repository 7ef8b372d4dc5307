package bench

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// These tests need no server and run in well under a second: they are what
// `go test ./bench/...` runs in CI.

func TestGeneratorDeterministic(t *testing.T) {
	a := build("narrow", "t", "", narrowColumns, 0, 200, narrowRow)
	b := build("narrow", "t", "", narrowColumns, 0, 200, narrowRow)
	if !reflect.DeepEqual(a.rows, b.rows) || !reflect.DeepEqual(a.structs, b.structs) {
		t.Fatal("two builds of the same workload differ")
	}
	row := make([]any, len(narrowColumns))
	for _, i := range []int{0, 7, 199} {
		narrowRow(row, i)
		if !reflect.DeepEqual(row, a.rows[i]) {
			t.Errorf("row %d generated on the fly = %v, built = %v", i, row, a.rows[i])
		}
	}
}

// TestStructsMatchRows checks that the model structs GORM and sqlx load hold
// the same values, in column order, as the rows the library loads.
func TestStructsMatchRows(t *testing.T) {
	tests := []struct {
		name string
		w    *workload
	}{
		{"narrow", build("narrow", "t", "", narrowColumns, 0, 50, narrowRow)},
		{"skewed", build("skewed", "t", "", narrowColumns, 0, 200, skewedRow)},
		{"wide", build("wide", "t", "", wideColumns, 0, 20, wideRow)},
		{"manycols", build("manycols", "t", "", manyColumns, 0, 20, manyRow)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv := reflect.ValueOf(tt.w.structs).Elem()
			st := sv.Type().Elem()
			if st.NumField() != len(tt.w.columns) {
				t.Fatalf("%s has %d fields, want %d columns", st, st.NumField(), len(tt.w.columns))
			}
			for j, col := range tt.w.columns {
				f := st.Field(j)
				if got := f.Tag.Get("db"); got != col {
					t.Errorf("field %s has db tag %q, want %q", f.Name, got, col)
				}
				if got := f.Tag.Get("gorm"); !strings.HasPrefix(got, "column:"+col) {
					t.Errorf("field %s has gorm tag %q, want column:%s", f.Name, got, col)
				}
			}
			for i, row := range tt.w.rows {
				for j, v := range row {
					if got := sv.Index(i).Field(j).Interface(); !reflect.DeepEqual(got, v) {
						t.Fatalf("row %d column %s: struct has %v, row has %v", i, tt.w.columns[j], got, v)
					}
				}
			}
		})
	}
}

func TestPayloadSizes(t *testing.T) {
	n := 20_000
	narrow := build("narrow", "t", "", narrowColumns, 0, n, narrowRow)
	if avg := float64(narrow.payload) / float64(n); avg < 185 || avg > 195 {
		t.Errorf("narrow rows average %.1f payload bytes, want ~190", avg)
	}
	skewed := build("skewed", "t", "", narrowColumns, 0, 1000, skewedRow)
	big := 0
	for _, row := range skewed.rows {
		if len(row[7].(string)) == skewedBig {
			big++
		}
	}
	if big != 10 {
		t.Errorf("%d of 1000 skewed rows have a 4 MiB note, want 10", big)
	}
	wide := build("wide", "t", "", wideColumns, 0, 1000, wideRow)
	// 1000 wide rows in one COM_STMT_EXECUTE: header, NULL bitmap, types,
	// then each value (8 for the id, lenenc length + bytes for the others).
	exec := 10 + (3000+7)/8 + 1 + 2*3000
	for _, row := range wide.rows {
		exec += 8 + 1 + len(row[1].(string)) + 3 + len(row[2].([]byte))
	}
	if exec <= 16*mib {
		t.Errorf("1000 wide rows make a %d-byte EXECUTE; the workload needs it over 16 MiB", exec)
	}
	if ld := 64 * mib / (1000*len(wideColumns) + 1); widePayload >= ld {
		t.Errorf("wide payload %d would go as long data (threshold %d)", widePayload, ld)
	}
	if got := len(manyColumns) * batchSize; got <= 65535 {
		t.Errorf("1000 many-column rows use %d placeholders, want over 65,535", got)
	}
}

func TestTSV(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	rows := [][]any{
		{int64(-3), 1.25, ts, "plain", []byte("a\tb\nc\\d\x00e"), nil},
		{int64(1 << 40), 1e21, ts.Add(1500 * time.Microsecond), "", []byte{}, "x"},
	}
	want := "-3\t1.25\t2024-05-06 07:08:09\tplain\ta\\tb\\nc\\\\d\\0e\t\\N\n" +
		"1099511627776\t1e+21\t2024-05-06 07:08:09.0015\t\t\tx\n"
	got, err := io.ReadAll(newTSVReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("TSV:\n got %q\nwant %q", got, want)
	}
	// Many rows: the reader must hand out every byte across refills.
	w := build("narrow", "t", "", narrowColumns, 0, 3000, narrowRow)
	var all []byte
	for _, row := range w.rows {
		all, _ = appendTSVRow(all, row)
	}
	got, err = io.ReadAll(io.LimitReader(newTSVReader(w.rows), int64(len(all))+1))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(all) {
		t.Errorf("streamed TSV differs from the rows encoded at once (%d vs %d bytes)", len(got), len(all))
	}
}

func TestSQL(t *testing.T) {
	if got, want := insertSQL("t", []string{"a", "b"}, 2), "INSERT INTO `t` (`a`,`b`) VALUES (?,?),(?,?)"; got != want {
		t.Errorf("insertSQL = %q, want %q", got, want)
	}
	got := loadDataSQL("r1", "t", []string{"a", "b"})
	want := "LOAD DATA LOCAL INFILE 'Reader::r1' INTO TABLE `t` CHARACTER SET utf8mb4 " +
		`FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (` + "`a`,`b`)"
	if got != want {
		t.Errorf("loadDataSQL =\n %s\nwant\n %s", got, want)
	}
}
