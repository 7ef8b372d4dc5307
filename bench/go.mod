module github.com/batchsql/batch/bench

go 1.24.0

require (
	github.com/batchsql/batch v0.0.0-00010101000000-000000000000
	github.com/go-sql-driver/mysql v1.10.1
	github.com/jmoiron/sqlx v1.4.0
	golang.org/x/perf v0.0.0-20250813145418-2f7363a06fe1
	golang.org/x/sync v0.16.0
	gorm.io/driver/mysql v1.6.0
	gorm.io/gorm v1.31.2
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/aclements/go-moremath v0.0.0-20210112150236-f10218a38794 // indirect
	github.com/jinzhu/inflection v1.0.0 // indirect
	github.com/jinzhu/now v1.1.5 // indirect
	golang.org/x/text v0.28.0 // indirect
)

// Outside the workspace (GOWORK=off) the bench module still builds against
// the library in the parent directory; inside it, go.work already says so.
replace github.com/batchsql/batch => ../

tool golang.org/x/perf/cmd/benchstat
