// Structs inserts a slice of Go structs with batch.Structs: columns come from
// `db` tags (as in sqlx), an embedded struct adds its own columns,
// sql.NullString and nil pointers become NULL, and time.Time is one value.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/structs
//
// It writes into a table structs_users that it drops and creates.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/examples/internal/exmain"
)

func main() { exmain.Main("structs", run) }

// Audit is embedded in User: its fields are columns of the users table, as
// if they were User's own.
type Audit struct {
	CreatedAt time.Time `db:"created_at"` // time.Time is a driver value: one column, not a struct
	CreatedBy string    `db:"created_by"`
}

// User is one row of structs_users.
type User struct {
	ID       int64          `db:"id"`
	Email    string         `db:"email"`
	Nickname sql.NullString `db:"nickname"` // Valid=false is NULL
	Score    *float64       `db:"score"`    // nil is NULL
	Country  string         // no tag: the column is the field name in lower case, "country"
	Password string         `db:"-"` // never written
	Audit                   // embedded: created_at, created_by
}

const table = "structs_users"

func run(ctx context.Context, dsn string, out io.Writer) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("MYSQL_DSN: %w", err)
	}
	// Scan DATETIME back into time.Time, in UTC. The same cfg goes to
	// batch.DriverConfig, so that times are sized in the driver's own
	// location.
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()

	for _, q := range []string{
		"DROP TABLE IF EXISTS " + table,
		`CREATE TABLE ` + table + ` (
			id BIGINT NOT NULL PRIMARY KEY,
			email VARCHAR(100) NOT NULL UNIQUE,
			nickname VARCHAR(40) NULL,
			score DOUBLE NULL,
			country CHAR(2) NOT NULL,
			created_at DATETIME(6) NOT NULL,
			created_by VARCHAR(40) NOT NULL
		)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}

	score := 4.5
	created := time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	users := []User{
		{ID: 1, Email: "ada@example.com", Nickname: sql.NullString{String: "ada", Valid: true}, Score: &score,
			Country: "GB", Password: "secret", Audit: Audit{CreatedAt: created, CreatedBy: "import"}},
		{ID: 2, Email: "grace@example.com", Country: "US", Password: "secret",
			Audit: Audit{CreatedAt: created.Add(time.Hour), CreatedBy: "import"}},
		{ID: 3, Email: "edsger@example.com", Nickname: sql.NullString{String: "ewd", Valid: true}, Country: "NL",
			Audit: Audit{CreatedAt: created.Add(48 * time.Hour), CreatedBy: "signup"}},
	}

	// Structs reads the columns off the type once (and caches them); the
	// values are read from the slice when the call runs. A []*User works too.
	input := batch.Structs(table, users)
	fmt.Fprintf(out, "columns from the User type: %s\n", strings.Join(input.Columns(), ", "))

	res, err := batch.Insert(ctx, db, input, batch.DriverConfig(cfg))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "inserted %d rows in %d statement(s)\n\n", res.Rows, res.Chunks)

	rows, err := db.QueryContext(ctx, "SELECT id, email, nickname, score, country, created_at, created_by FROM "+table+" ORDER BY id")
	if err != nil {
		return err
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\temail\tnickname\tscore\tcountry\tcreated_at\tcreated_by")
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Email, &u.Nickname, &u.Score, &u.Country, &u.CreatedAt, &u.CreatedBy); err != nil {
			return err
		}
		nick, sc := "NULL", "NULL"
		if u.Nickname.Valid {
			nick = u.Nickname.String
		}
		if u.Score != nil {
			sc = fmt.Sprint(*u.Score)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, nick, sc, u.Country,
			u.CreatedAt.Format("2006-01-02 15:04:05.000000"), u.CreatedBy)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
