package batch_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/batchsql/batch"
)

// TestChunkTime loads with adaptive chunking, through Insert and through a
// Writer: every row lands once, and every chunk but the last has a ladder
// row count (2^a or 3*2^a) or the starting DefaultRows, so prepared
// statements stay few.
func TestChunkTime(t *testing.T) {
	const n = 30000
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i, "v"}
	}
	for _, tc := range []struct {
		name string
		load func(db *sql.DB, table string, opts ...batch.Option) (batch.Result, error)
	}{
		{"Insert", func(db *sql.DB, table string, opts ...batch.Option) (batch.Result, error) {
			return batch.Insert(context.Background(), db, batch.Values(table, []string{"id", "v"}, rows), opts...)
		}},
		{"Writer", func(db *sql.DB, table string, opts ...batch.Option) (batch.Result, error) {
			return writerLoad(context.Background(), db, table, rows, opts...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := sharedDB(t, "")
			table := newTable(t, db, "id BIGINT PRIMARY KEY, v VARCHAR(16)")
			var sizes []int64
			var last int64
			res, err := tc.load(db, table, batch.ChunkTime(20*time.Millisecond), batch.Workers(1),
				batch.OnProgress(func(p batch.Progress) { sizes = append(sizes, p.Rows-last); last = p.Rows }))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if res.Rows != n || countRows(t, db, table) != n {
				t.Fatalf("Rows = %d, table has %d; want %d", res.Rows, countRows(t, db, table), n)
			}
			ladder := func(k int64) bool {
				for k > 3 && k%2 == 0 {
					k /= 2
				}
				return k <= 3
			}
			for i, k := range sizes[:len(sizes)-1] {
				if k != batch.DefaultRows && !ladder(k) {
					t.Errorf("chunk %d has %d rows, not a shape of the ladder (all: %v)", i, k, sizes)
				}
			}
		})
	}
}
