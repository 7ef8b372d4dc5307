// Package bench measures github.com/batchsql/batch against the other ways of
// bulk-loading MySQL/MariaDB from Go: LOAD DATA LOCAL INFILE, GORM
// CreateInBatches, sqlx NamedExec, db.Exec of fixed multi-row statements and
// single-row INSERTs. It is a module of its own so that GORM and the other
// contenders stay out of the library's go.mod.
//
// Every contender of a workload loads the same deterministic rows into the
// same table of one private MariaDB server, in one run. Run it from the
// repository root:
//
//	bench/run.sh            # 3 rounds, prints a benchstat table and the targets
//	go test ./bench -run '^$' -bench . -benchtime 1x -count 6 -timeout 60m | tee bench/out/latest.txt
//
// Without -bench, `go test ./bench/...` runs only the quick checks of the
// generator and the LOAD DATA encoder (no server).
//
// RESULTS.md holds the figures of the last full run and the targets they
// were checked against.
package bench
