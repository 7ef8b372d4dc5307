// Package batch writes large numbers of rows into MySQL, MariaDB, TiDB and
// Vitess with multi-row statements, fast, and without ever sending a packet
// the connection cannot take ("MySQL server has gone away", error 1153).
//
// # The pipeline
//
// A call flows through these steps, one file (or two) each:
//
//   - batch.go, rows.go: the input (Values, Structs) is checked once: arity,
//     types, NaN, time range. Each driver.Valuer is called once and its value
//     is both sized and sent. Values already of the driver's types are read
//     in place, never copied.
//   - sizer.go: the exact payload of every packet the driver will write for a
//     chunk of rows (COM_STMT_PREPARE, COM_STMT_EXECUTE, long data), computed
//     from the same values that are sent.
//   - splitter.go: rows are cut into chunks, row ranges of the input, under
//     the connection's packet ceiling and at a faster target below it
//     (DefaultRows rows, at most 8,000 placeholders and DefaultBytes bytes
//     per statement), in a few
//     statement shapes so that prepared statements are reused.
//   - limits.go: the ceiling is read on every connection the package uses:
//     max_allowed_packet, net_buffer_length, compression, the driver's own
//     limit, the 65,535-placeholder cap, the server's flavour and sql_mode.
//   - session.go, pipeline.go: each worker sends on a connection of its own
//     (DefaultWorkers), through statements prepared once per connection and
//     executed on the driver connection with reused arguments.
//   - retry.go: a failed chunk is classified (not sent, rolled back, unknown,
//     permanent) and resent on a fresh connection only where that cannot
//     write a row twice or lose one.
//
// Every outcome lands in one ledger, from which Result is read: which input
// rows are written, which were not sent, and which have an unknown outcome.
//
// # Example
//
//	db, _ := sql.Open("mysql", "user:pass@tcp(127.0.0.1:3306)/shop")
//	rows := [][]any{{1, "apple", 0.5}, {2, "pear", 0.75}}
//	res, err := batch.Insert(ctx, db, batch.Values("fruit", []string{"id", "name", "price"}, rows))
//	if err != nil {
//		// res.Written, res.NotSent and res.Unknown say exactly what happened.
//		return err
//	}
//	fmt.Println(res.Rows, "rows in", res.Chunks, "statements")
//
// # Concurrency
//
// Insert and Replace may be called concurrently. A connection is never used
// by two goroutines at once. Errors never contain row values or SQL text; a
// wrapped server error stays as the server wrote it.
package batch
