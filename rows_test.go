package batch

import (
	"database/sql"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNormalizedInPlace checks that Values input is read in place where it
// is already normalized, that only rows holding a value to convert are
// copied, and that the caller's slice is never written.
func TestNormalizedInPlace(t *testing.T) {
	enc := defaultEncoding()
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	in := [][]any{
		{int64(1), "a", when, []byte("x")},
		{2, "b", nil, []byte(nil)}, // int and nil []byte are converted
		{int64(3), sql.NullString{String: "c", Valid: true}, 1.5, true},
		{uint64(4), "d", nil, []byte{}},
	}
	orig := [][]any{
		{int64(1), "a", when, []byte("x")},
		{2, "b", nil, []byte(nil)},
		{int64(3), sql.NullString{String: "c", Valid: true}, 1.5, true},
		{uint64(4), "d", nil, []byte{}},
	}
	rows := Values("t", []string{"a", "b", "c", "d"}, in)
	got, err := rows.normalized(&enc)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{
		{int64(1), "a", when, []byte("x")},
		{int64(2), "b", nil, nil},
		{int64(3), "c", 1.5, true},
		{uint64(4), "d", nil, []byte{}},
	}
	var all [][]any
	for i := range got.len() {
		all = append(all, got.row(i))
	}
	if d := cmp.Diff(want, all); d != "" {
		t.Errorf("normalized rows (-want +got):\n%s", d)
	}
	for i, shared := range []bool{true, false, false, true} {
		if same := &got.row(i)[0] == &in[i][0]; same != shared {
			t.Errorf("row %d read in place = %v, want %v", i, same, shared)
		}
	}
	if d := cmp.Diff(orig, in); d != "" {
		t.Errorf("caller's rows changed (-before +after):\n%s", d)
	}
}

// TestNormalizedErrors checks that a bad value anywhere, before or after a
// row that was copied, is reported with its row and column.
func TestNormalizedErrors(t *testing.T) {
	enc := defaultEncoding()
	for _, tc := range []struct {
		name string
		in   [][]any
		row  int
		col  string
		err  error
	}{
		{"NaN in place", [][]any{{int64(1), math.NaN()}}, 0, "b", ErrNotFinite},
		{"after a copied row", [][]any{{1, 2.0}, {int64(2), math.Inf(1)}}, 1, "b", ErrNotFinite},
		{"in a copied row", [][]any{{int64(1), 2.0}, {int32(2), struct{}{}}}, 1, "b", ErrUnsupportedType},
		{"time out of range", [][]any{{int64(1), time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC)}}, 0, "b", ErrTimeRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Values("t", []string{"a", "b"}, tc.in).normalized(&enc)
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValueError", err)
			}
			if ve.Row != tc.row || ve.Column != tc.col || !errors.Is(err, tc.err) {
				t.Errorf("got row %d column %q err %v, want row %d column %q %v", ve.Row, ve.Column, err, tc.row, tc.col, tc.err)
			}
		})
	}
}
