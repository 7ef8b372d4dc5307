package batch_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jmoiron/sqlx"

	"github.com/batchsql/batch"
)

// These tests write structs with batch.Structs and read them back with sqlx
// (the same `db` tag mapping), comparing with go-cmp.

type tagged struct {
	ID       int64 `db:"id"`
	UserName string
	Email    string `db:"e_mail"`
	Secret   string `db:"-"`
	note     string
}

type Base struct {
	ID int64 `db:"id"`
}

type Extra struct {
	Note  *string       `db:"note"`
	Score sql.NullInt64 `db:"score"`
}

// kind is embedded unexported: its exported fields are still promoted.
type kind struct {
	Kind string `db:"kind"`
}

type embedding struct {
	Base
	*Extra
	kind
	Name string `db:"name"`
}

type withTime struct {
	ID int64     `db:"id"`
	At time.Time `db:"at"`
}

type withTimePointer struct {
	ID int64      `db:"id"`
	At *time.Time `db:"at"`
}

type withNulls struct {
	ID   int64          `db:"id"`
	Nick sql.NullString `db:"nick"`
	Seen sql.NullTime   `db:"seen"`
	Age  sql.NullInt64  `db:"age"`
}

type withPointers struct {
	ID int64    `db:"id"`
	N  *int64   `db:"n"`
	S  *string  `db:"s"`
	B  *bool    `db:"b"`
	F  *float64 `db:"f"`
	U  *uint64  `db:"u"`
}

type withValues struct {
	ID   ID              `db:"id"`
	Name Name            `db:"name"`
	Up   upper           `db:"up"`
	Data []byte          `db:"data"`
	Doc  json.RawMessage `db:"doc"`
}

type Named struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

// shadow's own Name hides Named.Name, as in Go.
type shadow struct {
	Named
	Name string `db:"name"`
}

// structCase writes items of one struct type and reads them back.
type structCase struct {
	name string
	ddl  string
	run  func(t *testing.T, db *sqlx.DB, table string)
}

// sc makes a structCase: the Rows must have wantColumns, and reading the
// table back with sqlx must give want.
func sc[T any](name, ddl string, items []T, wantColumns []string, want []T, opts ...cmp.Option) structCase {
	return structCase{name: name, ddl: ddl, run: func(t *testing.T, db *sqlx.DB, table string) {
		t.Helper()
		rows := batch.Structs(table, items)
		if d := cmp.Diff(wantColumns, rows.Columns()); d != "" {
			t.Errorf("Columns() (-want +got):\n%s", d)
		}
		if rows.Len() != len(items) {
			t.Errorf("Len() = %d, want %d", rows.Len(), len(items))
		}
		res, err := batch.Insert(context.Background(), db, rows, batch.MaxRows(2))
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		wantRes := batch.Result{Rows: int64(len(items)), RowsAffected: int64(len(items)), Chunks: (len(items) + 1) / 2,
			Written: []batch.Range{{First: 0, End: len(items)}}}
		if d := cmp.Diff(wantRes, res, ignoreTiming); d != "" {
			t.Errorf("Result (-want +got):\n%s", d)
		}
		var got []T
		if err := db.Select(&got, "SELECT * FROM `"+table+"` ORDER BY id"); err != nil {
			t.Fatalf("read back: %v", err)
		}
		if d := cmp.Diff(want, got, opts...); d != "" {
			t.Errorf("read back (-want +got):\n%s", d)
		}
	}}
}

func TestStructsRoundTrip(t *testing.T) {
	sdb, _ := sharedDB(t, "parseTime=true")
	db := sqlx.NewDb(sdb, "mysql") // a *sqlx.DB is a pool too
	at := time.Date(2024, 2, 29, 12, 34, 56, 789000000, time.UTC)
	cases := []structCase{
		sc("db tags, lower-case names, db:\"-\", unexported fields",
			"id BIGINT PRIMARY KEY, username TEXT, e_mail TEXT",
			[]tagged{{1, "Ann", "a@x", "s3cret", "n"}, {2, "", "", "", ""}, {3, "Bob", "b@x", "x", "y"}},
			[]string{"id", "username", "e_mail"},
			[]tagged{{1, "Ann", "a@x", "", ""}, {2, "", "", "", ""}, {3, "Bob", "b@x", "", ""}},
			cmpopts.IgnoreUnexported(tagged{})),
		// A nil embedded pointer gives NULL for its fields; sqlx allocates
		// it when reading back.
		sc("embedded value, pointer (nil too) and unexported structs",
			"id BIGINT PRIMARY KEY, note TEXT, score BIGINT, kind TEXT, name TEXT",
			[]embedding{
				{Base{1}, &Extra{ref("n1"), sql.NullInt64{Int64: 5, Valid: true}}, kind{"k1"}, "a"},
				{Base{2}, nil, kind{"k2"}, "b"},
				{Base{3}, &Extra{}, kind{}, ""},
			},
			[]string{"id", "note", "score", "kind", "name"},
			[]embedding{
				{Base{1}, &Extra{ref("n1"), sql.NullInt64{Int64: 5, Valid: true}}, kind{"k1"}, "a"},
				{Base{2}, &Extra{}, kind{"k2"}, "b"},
				{Base{3}, &Extra{}, kind{}, ""},
			},
			cmp.AllowUnexported(embedding{})),
		sc("time.Time field is one column",
			"id BIGINT PRIMARY KEY, at DATETIME(6)",
			[]withTime{{1, at}, {2, time.Time{}}},
			[]string{"id", "at"},
			[]withTime{{1, at}, {2, time.Time{}}}),
		sc("*time.Time field is one column, nil is NULL",
			"id BIGINT PRIMARY KEY, at DATETIME(6)",
			[]withTimePointer{{1, &at}, {2, nil}},
			[]string{"id", "at"},
			[]withTimePointer{{1, &at}, {2, nil}}),
		sc("sql.Null* fields are one column each",
			"id BIGINT PRIMARY KEY, nick TEXT, seen DATETIME(6), age BIGINT",
			[]withNulls{
				{1, sql.NullString{String: "nick", Valid: true}, sql.NullTime{Time: at, Valid: true}, sql.NullInt64{Int64: 42, Valid: true}},
				{2, sql.NullString{}, sql.NullTime{}, sql.NullInt64{}},
				{3, sql.NullString{String: "", Valid: true}, sql.NullTime{Time: time.Time{}, Valid: true}, sql.NullInt64{Valid: true}},
			},
			[]string{"id", "nick", "seen", "age"},
			[]withNulls{
				{1, sql.NullString{String: "nick", Valid: true}, sql.NullTime{Time: at, Valid: true}, sql.NullInt64{Int64: 42, Valid: true}},
				{2, sql.NullString{}, sql.NullTime{}, sql.NullInt64{}},
				{3, sql.NullString{String: "", Valid: true}, sql.NullTime{Time: time.Time{}, Valid: true}, sql.NullInt64{Valid: true}},
			}),
		sc("pointer fields, nil is NULL",
			"id BIGINT PRIMARY KEY, n BIGINT, s TEXT, b BOOL, f DOUBLE, u BIGINT UNSIGNED",
			[]withPointers{{1, ref(int64(-1)), ref("s"), ref(false), ref(2.5), ref(uint64(1 << 63))}, {2, nil, nil, nil, nil, nil}},
			[]string{"id", "n", "s", "b", "f", "u"},
			[]withPointers{{1, ref(int64(-1)), ref("s"), ref(false), ref(2.5), ref(uint64(1 << 63))}, {2, nil, nil, nil, nil, nil}}),
		sc("slice of pointers",
			"id BIGINT PRIMARY KEY, n BIGINT, s TEXT, b BOOL, f DOUBLE, u BIGINT UNSIGNED",
			[]*withPointers{{ID: 1, S: ref("one")}, {ID: 2, N: ref(int64(2))}, {ID: 3}},
			[]string{"id", "n", "s", "b", "f", "u"},
			[]*withPointers{{ID: 1, S: ref("one")}, {ID: 2, N: ref(int64(2))}, {ID: 3}}),
		sc("named types, driver.Valuer, []byte and json.RawMessage fields",
			"id BIGINT PRIMARY KEY, name TEXT, up TEXT, data BLOB, doc JSON",
			[]withValues{{1, "n", "shout", []byte{0, 1, 0xff}, json.RawMessage(`{"a":[1,"x"]}`)}, {2, "", "", []byte{}, json.RawMessage(`[]`)}, {3, "", "", nil, json.RawMessage(`null`)}},
			[]string{"id", "name", "up", "data", "doc"},
			// (A NULL doc could not be read back into a json.RawMessage.)
			[]withValues{{1, "n", "SHOUT", []byte{0, 1, 0xff}, json.RawMessage(`{"a":[1,"x"]}`)}, {2, "", "", []byte{}, json.RawMessage(`[]`)}, {3, "", "", nil, json.RawMessage(`null`)}},
			byteSlices),
		sc("a shallower field hides an embedded one of the same name",
			"id BIGINT PRIMARY KEY, name TEXT",
			[]shadow{{Named{1, "inner"}, "outer"}},
			[]string{"id", "name"},
			[]shadow{{Named{1, ""}, "outer"}}),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, sdb, tc.ddl)
			tc.run(t, db, table)
		})
	}
}

// TestStructsInSqlxTx writes structs through a *sqlx.Tx, a caller-owned
// locHandle: nothing is visible before Commit.
func TestStructsInSqlxTx(t *testing.T) {
	sdb, _ := sharedDB(t, "")
	db := sqlx.NewDb(sdb, "mysql")
	table := newTable(t, sdb, "id BIGINT PRIMARY KEY, username TEXT, e_mail TEXT")
	tx, err := db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	items := make([]tagged, 10)
	for i := range items {
		items[i] = tagged{ID: int64(i), UserName: strings.Repeat("u", i)}
	}
	res, err := batch.Insert(context.Background(), tx, batch.Structs(table, items), batch.MaxRows(3))
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if res.Rows != 10 || res.Chunks != 4 {
		t.Errorf("Result.Rows = %d, Chunks = %d; want 10 and 4", res.Rows, res.Chunks)
	}
	if n := countRows(t, sdb, table); n != 0 {
		t.Errorf("%d rows visible outside the transaction before Commit, want 0", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []tagged
	if err := db.Select(&got, "SELECT * FROM `"+table+"` ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(items, got, cmpopts.IgnoreUnexported(tagged{})); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
}

type nested struct {
	ID    int64 `db:"id"`
	Inner Named `db:"inner"` // not embedded, no driver.Valuer
}

type unmapped struct {
	a      int
	Hidden string `db:"-"`
}

type withMap struct {
	ID    int64          `db:"id"`
	Attrs map[string]int `db:"attrs"`
}

// TestStructsRefused checks what Structs refuses, before anything is sent.
func TestStructsRefused(t *testing.T) {
	db, _ := sharedDB(t, "")
	const n = 3
	cases := []struct {
		name    string
		rows    func(table string) batch.Rows
		wantIs  error
		wantRow int // for a *ValueError; -1 when the error is not one
	}{
		{"nested struct field without Valuer", func(table string) batch.Rows {
			return batch.Structs(table, []nested{{1, Named{1, "SECRET-nested"}}, {2, Named{}}, {3, Named{}}})
		}, batch.ErrUnsupportedType, -1},
		{"no mapped field", func(table string) batch.Rows {
			return batch.Structs(table, []unmapped{{1, "SECRET-unmapped"}, {}, {}})
		}, batch.ErrNoColumns, -1},
		{"nil element in a slice of pointers", func(table string) batch.Rows {
			return batch.Structs(table, []*tagged{{ID: 1, UserName: "SECRET-nil"}, nil, {ID: 3}})
		}, batch.ErrUnsupportedType, -1},
		{"not a struct", func(table string) batch.Rows {
			return batch.Structs(table, []int{1, 2, 3})
		}, batch.ErrUnsupportedType, -1},
		{"map field", func(table string) batch.Rows {
			// A nil map is still a map: refused like any other.
			return batch.Structs(table, []withMap{{1, map[string]int{"SECRET-map": 1}}, {2, nil}, {3, nil}})
		}, batch.ErrUnsupportedType, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, db, "id BIGINT PRIMARY KEY, attrs TEXT")
			res, err := batch.Insert(context.Background(), db, tc.rows(table))
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("Insert error = %v, want %v", err, tc.wantIs)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error text %q holds a row value", err)
			}
			if row := valueErrorRow(err); row != tc.wantRow {
				t.Errorf("ValueError row = %d, want %d (-1: no ValueError)", row, tc.wantRow)
			}
			wantNothingSent(t, res, n, ignoreTiming, db, table)
		})
	}
}

// valueErrorRow is the Row of the *batch.ValueError in err, or -1.
func valueErrorRow(err error) int {
	var ve *batch.ValueError
	if errors.As(err, &ve) {
		return ve.Row
	}
	return -1
}
