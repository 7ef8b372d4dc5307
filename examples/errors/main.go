// Errors shows the errors a load can return and how to read them with
// errors.As and errors.Is: a value that cannot be sent (ValueError), a row
// larger than the connection allows (RowTooLargeError), a statement the
// server refuses (ChunkError), and a statement whose outcome is unknown
// (UnknownOutcomeError), produced for real by a deadline that passes while
// the statement waits for another transaction's lock.
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/errors
//
// It writes into a table errors_payments that it drops and creates. It
// allocates one string as large as the server's max_allowed_packet (16 MiB
// on MariaDB, 64 MiB on MySQL 8), and skips that part above 64 MiB.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/batchsql/batch"
	"github.com/batchsql/batch/examples/internal/exmain"
)

func main() { exmain.Main("errors", run) }

const table = "errors_payments"

var columns = []string{"ref", "amount", "memo"}

func run(ctx context.Context, dsn string, out io.Writer) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("MYSQL_DSN: %w", err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	// The table's only unique key the rows supply, ref, may be NULL. That
	// matters for part 4.
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + table,
		`CREATE TABLE ` + table + ` (
			id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
			ref VARCHAR(20) NULL UNIQUE,
			amount DOUBLE NOT NULL,
			memo LONGTEXT NULL
		) ENGINE=InnoDB`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	opts := []batch.Option{batch.DriverConfig(cfg)}

	// 1. A value MySQL cannot store. Every value is checked before anything
	// is sent, so nothing is written.
	res, err := batch.Insert(ctx, db, batch.Values(table, columns, [][]any{
		{"R-1", 10.0, nil},
		{"R-2", math.NaN(), nil},
	}), opts...)
	fmt.Fprintf(out, "1. NaN:       %s\n", describe(err))
	fmt.Fprintf(out, "              errors.Is(err, batch.ErrNotFinite) = %v; written %d, not sent: rows %s\n",
		errors.Is(err, batch.ErrNotFinite), res.Rows, ranges(res.NotSent))

	// 2. A row that no statement can carry: a memo one byte larger than
	// the server's max_allowed_packet. Lowering MaxBytes never causes this
	// (one row may always use the whole packet); only the connection's real
	// limits do: the server's max_allowed_packet, the driver's
	// maxAllowedPacket (DSN parameter, or mysql.Config.MaxAllowedPacket
	// given to DriverConfig), compression.
	var maxPacket int
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return err
	}
	if maxPacket <= 64<<20 {
		res, err = batch.Insert(ctx, db, batch.Values(table, columns, [][]any{
			{"R-1", 10.0, "fine"},
			{"R-2", 20.0, strings.Repeat("x", maxPacket+1)},
		}), opts...)
		fmt.Fprintf(out, "2. too large: %s\n", describe(err))
		fmt.Fprintf(out, "              written %d, not sent: rows %s\n", res.Rows, ranges(res.NotSent))
	} else {
		fmt.Fprintf(out, "2. too large: skipped (max_allowed_packet is %d bytes)\n", maxPacket)
	}

	// 3. A statement the server refuses: a duplicate ref in a plain INSERT.
	// Resending cannot help, so it is not resent.
	res, err = batch.Insert(ctx, db, batch.Values(table, columns, [][]any{
		{"R-7", 1.0, nil},
		{"R-7", 2.0, nil},
	}), opts...)
	var mysqlErr *mysql.MySQLError
	fmt.Fprintf(out, "3. duplicate: %s\n", describe(err))
	fmt.Fprintf(out, "              errors.As(err, &mysqlErr) && mysqlErr.Number == 1062: %v; written %d, not sent: rows %s\n",
		errors.As(err, &mysqlErr) && mysqlErr.Number == 1062, res.Rows, ranges(res.NotSent))

	// 4. An unknown outcome. Another transaction has inserted ref R-0003
	// and not committed: our INSERT of R-0000..R-0009 waits for its lock.
	// Our deadline passes while the statement is at the server. The package
	// gives it a second of grace, then gives up on the reply. Was the
	// statement applied? It cannot tell: it is still waiting, and it may
	// run later. With a NOT NULL unique key covered by the inserted columns
	// the package would look the rows up or resend safely; ref may be NULL
	// (two NULL refs never collide), so it reports the rows as Unknown.
	blocker, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer blocker.Close()
	if _, err := blocker.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	if _, err := blocker.ExecContext(ctx, "INSERT INTO "+table+" (ref, amount) VALUES ('R-0003', 0)"); err != nil {
		return err
	}
	var rows [][]any
	for i := 0; i < 10; i++ {
		rows = append(rows, []any{fmt.Sprintf("R-%04d", i), float64(i), "paid"})
	}
	// Give up as soon as the statement is seen waiting for the lock, as a
	// deadline would (a fixed timeout would race with a slow machine).
	deadline, cancel := context.WithCancelCause(ctx)
	go func() {
		defer cancel(context.DeadlineExceeded)
		for deadline.Err() == nil {
			var waiting int
			err := db.QueryRowContext(deadline, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO `"+table+"`%'").Scan(&waiting)
			if err == nil && waiting > 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// CommitEvery(1): the statement commits on its own, so once given up on
	// it may still be applied. (In a transaction of several chunks, the
	// default, it could not commit without our COMMIT: the rows would be
	// "not sent".)
	res, err = batch.Insert(deadline, db, batch.Values(table, columns, rows), append(opts, batch.CommitEvery(1))...)
	cancel(nil)
	fmt.Fprintf(out, "4. lock wait: %s\n", describe(err))
	fmt.Fprintf(out, "              errors.Is(err, context.DeadlineExceeded) = %v; written %d, unknown: rows %s, not sent: rows %s\n",
		errors.Is(err, context.DeadlineExceeded), res.Rows, ranges(res.Unknown), ranges(res.NotSent))

	// The other transaction rolls back; the lock is released, and the
	// statement nobody waits for any more runs. Settle the unknown rows the
	// only way there is: look them up by key.
	if _, err := blocker.ExecContext(ctx, "ROLLBACK"); err != nil {
		return err
	}
	found, err := settle(ctx, db, rows, res.Unknown)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "              after the other transaction rolled back: %d of the %d unknown rows are in the table\n",
		found, len(rows))
	fmt.Fprintln(out, "              (reading Unknown as \"not written\" and sending them again would have failed or written them twice)")
	return nil
}

// describe says what err is, with errors.As for each of the package's error
// types. Error texts never contain row values (a server's message may).
func describe(err error) string {
	var (
		ve  *batch.ValueError
		tl  *batch.RowTooLargeError
		uo  *batch.UnknownOutcomeError
		re  *batch.RetryError
		ce  *batch.ChunkError
		ar  *batch.ArityError
		me  *mysql.MySQLError
		msg string
	)
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &ve):
		// Nothing was sent. Row and Column say where; Err is the sentinel
		// (ErrNotFinite, ErrTimeRange, ErrUnsupportedType) or the error of
		// a driver.Valuer.
		return fmt.Sprintf("ValueError: row %d, column %q (%s): %v", ve.Row, ve.Column, ve.Type, ve.Err)
	case errors.As(err, &ar):
		return fmt.Sprintf("ArityError: row %d has %d values, want %d", ar.Row, ar.Got, ar.Want)
	case errors.As(err, &tl):
		// Nothing was sent. Size is the packet the row alone would need,
		// Limit what the connection takes: raise max_allowed_packet on the
		// server (and maxAllowedPacket in the DSN), or make the row smaller.
		return fmt.Sprintf("RowTooLargeError: row %d needs %d bytes, the limit is %d", tl.Row, tl.Size, tl.Limit)
	case errors.As(err, &uo):
		// Checked before RetryError, which may wrap it. The rows of
		// Range may or may not be in the table: look them up by
		// key before sending them again. Several uncertain statements are
		// joined in err; Result.Unknown lists every such row.
		msg = fmt.Sprintf("UnknownOutcomeError: rows %d..%d may or may not be written (cause: %v)", uo.Range.First, uo.Range.End-1, uo.Err)
		var re *batch.RetryError
		if errors.As(err, &re) {
			msg += fmt.Sprintf(", after %d attempts", re.Attempts)
		}
		return msg
	case errors.As(err, &re):
		// The package resent a statement until its retry budget (Retry)
		// ran out, or stopped because the server restarted twice while it
		// ran (QueryOfDeath). The fields are what a "server has gone away"
		// report needs. None of its rows were written.
		return fmt.Sprintf("RetryError: rows %d..%d, %d attempts in %v, server restarted %v, query of death %v, wait_timeout %ds, max_allowed_packet %d: %v",
			re.Range.First, re.Range.End-1, re.Attempts, re.Elapsed, re.ServerRestarted, re.QueryOfDeath,
			re.WaitTimeout, re.MaxAllowedPacket, re.Err)
	case errors.As(err, &ce):
		// The server refused the statement (duplicate key, bad value,
		// missing table, ...): none of its rows are written, and sending it
		// again cannot help. The server's own error is inside.
		msg = fmt.Sprintf("ChunkError: the server refused rows %d..%d", ce.Range.First, ce.Range.End-1)
		if errors.As(err, &me) {
			msg += fmt.Sprintf(" with error %d", me.Number)
		}
		return msg
	}
	// Anything else: a cancelled context, a connection that could not be
	// opened, ErrNotStrict, ErrOptions, ...
	return err.Error()
}

// ranges formats row ranges as "0..2999, 4000..4999".
func ranges(rs []batch.Range) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d..%d", r.First, r.End-1))
	}
	if parts == nil {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// settle counts how many rows of the unknown ranges are in the table, by
// their unique ref.
func settle(ctx context.Context, db *sql.DB, rows [][]any, unknown []batch.Range) (int, error) {
	var refs []any
	for _, r := range unknown {
		for _, row := range rows[r.First:r.End] {
			refs = append(refs, row[0])
		}
	}
	if len(refs) == 0 {
		return 0, nil
	}
	query := "SELECT COUNT(*) FROM " + table + " WHERE ref IN (?" + strings.Repeat(",?", len(refs)-1) + ")"
	// The orphaned statement needs a moment once the lock is free.
	var n int
	for wait := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := db.QueryRowContext(ctx, query, refs...).Scan(&n); err != nil {
			return 0, err
		}
		if n == len(refs) || time.Now().After(wait) {
			return n, nil
		}
	}
}
