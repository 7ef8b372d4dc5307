package main

import (
	"strings"
	"testing"
	"time"

	"github.com/batchsql/batch/examples/internal/extest"
)

func TestMain(m *testing.M) { extest.Main(m) }

func TestStructs(t *testing.T) {
	dsn := extest.DSN(t)
	out := extest.Run(t, run, dsn)
	for _, want := range []string{
		// Password (db:"-") is not a column; Audit's fields are.
		"columns from the User type: id, email, nickname, score, country, created_at, created_by\n",
		"inserted 3 rows in 1 statement(s)",
		"2   grace@example.com   NULL      NULL   US       2025-03-14 16:09:26.535000  import",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	db := extest.Open(t, dsn+"?parseTime=true")
	var created time.Time
	var nick, by string
	var score float64
	if err := db.QueryRow("SELECT created_at, nickname, created_by, score FROM structs_users WHERE id = 1").Scan(&created, &nick, &by, &score); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC); !created.Equal(want) || nick != "ada" || by != "import" || score != 4.5 {
		t.Errorf("row 1 = %v, %q, %q, %v; want %v, ada, import, 4.5", created, nick, by, score, want)
	}
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM structs_users WHERE nickname IS NULL"); got != 1 {
		t.Errorf("%d rows with a NULL nickname, want 1", got)
	}
	if got := extest.Int(t, db, "SELECT COUNT(*) FROM structs_users WHERE score IS NULL"); got != 2 {
		t.Errorf("%d rows with a NULL score, want 2", got)
	}
}
