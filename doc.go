// Package batch writes large numbers of rows into MySQL, MariaDB, TiDB and
// Vitess with multi-row prepared statements, fast, and without ever sending a
// packet the connection cannot take ("MySQL server has gone away", error
// 1153).
//
// [Insert] and [Replace] write a whole input ([Values] or [Structs]); a
// [Writer] streams rows that do not fit in memory. Every call returns a
// [Result] that says exactly which input rows are written, which were not
// sent, and which have an unknown outcome, even when it returns an error.
//
// # How a load flows
//
// Each step lives in a file of its own, and each layer only calls the ones
// below it:
//
//   - rows.go: the input is checked once (arity, types, NaN, time range);
//     each driver.Valuer is called once, and the value it returns is both
//     sized and sent. Values already of the driver's types are read in place.
//   - sizer.go: the exact payload of every packet the driver writes for a
//     chunk of rows, computed from the values that are sent (docs/wire.md).
//   - splitter.go: rows are cut into chunks, ranges of input rows, under the
//     connection's packet ceiling and at a faster target below it
//     ([DefaultRows], [DefaultBytes]), in a few statement shapes so that
//     prepared statements are reused. Re-splitting and halving live here too.
//   - limits.go: the ceiling is read on every connection: max_allowed_packet,
//     net_buffer_length, compression, the driver's own limit, the
//     65,535-placeholder cap, the server's flavour and sql_mode ([Limits]).
//   - session.go: one connection, its limits and its prepared statements.
//   - pipeline.go: the workers, one session each ([DefaultWorkers]).
//   - fate.go: after each attempt, what becomes of a chunk: written, resent,
//     looked up, cut smaller, rejected, or reported. classify.go reads the
//     errors it decides on; retry.go carries its decisions out within the
//     retry budget ([RetryPolicy]); settle.go looks rows up after a lost
//     reply.
//   - group.go: consecutive chunks written in one transaction
//     ([CommitEvery]); a failure before COMMIT replays the group, a lost
//     COMMIT is settled. ledger.go records each transaction's input rows in
//     the same transaction ([Ledger]): exactly once, and resume.
//   - failover.go: the nodes a load may write through ([Failover]), and when
//     it moves to the next.
//   - result.go: every outcome is recorded in one tally, from which the
//     [Result] is read.
//
// docs/design.md tells the same story at length; docs/failures.md says what
// happens on each failure, docs/rejects.md, docs/transactions.md and
// docs/failover.md describe bad rows, transactions and the ledger, and
// failover.
//
// # Concurrency
//
// Insert and Replace may be called concurrently. A connection is never used
// by two goroutines at once. A [Writer] is not safe for concurrent use.
//
// # Errors
//
// Bad input is refused before anything is sent, with a [*ValueError],
// [*ArityError] or [*RowTooLargeError]. Errors from the server come wrapped
// in a [*ChunkError], [*UnknownOutcomeError] or [*RetryError], each naming
// the input rows it concerns as a [Range]. The package's own error texts and
// log events never contain row values or SQL; a wrapped server error stays as
// the server wrote it.
package batch
