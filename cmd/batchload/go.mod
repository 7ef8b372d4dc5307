// The command is a module of its own, so that the library's module does not
// require its dependencies (the zstd decoder, the progress bar).
module github.com/batchsql/batch/cmd/batchload

go 1.24.0

require (
	github.com/batchsql/batch v0.0.0-00010101000000-000000000000
	github.com/go-sql-driver/mysql v1.10.1
	github.com/klauspost/compress v1.19.2
	github.com/vbauerster/mpb/v8 v8.10.2
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/VividCortex/ewma v1.2.0 // indirect
	github.com/acarl005/stripansi v0.0.0-20180116102854-5a71ef0e047d // indirect
	github.com/jmoiron/sqlx v1.4.0 // indirect
	github.com/mattn/go-runewidth v0.0.16 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	golang.org/x/sync v0.13.0 // indirect
	golang.org/x/sys v0.33.0 // indirect
)

// The library is required at a placeholder version, which only this replace
// resolves (go.work alone does not: the workspace still reads the required
// version's go.mod). But go install github.com/batchsql/batch/cmd/batchload@latest
// refuses a module whose go.mod has a replace directive. So a release must
// tag the library (vX.Y.Z), require that version here and delete this
// replace (go.work still builds against ../.., the published version's
// go.mod now resolving), run GOWORK=off go mod tidy here, and tag this
// module cmd/batchload/vX.Y.Z.
replace github.com/batchsql/batch => ../../
