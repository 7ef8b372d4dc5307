package main

import (
	"fmt"
	"net"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	gmssql "github.com/dolthub/go-mysql-server/sql"
	"github.com/sirupsen/logrus"
)

// embeddedDB is the name of the database the embedded engine serves.
const embeddedDB = "quickstart"

// startEmbedded starts go-mysql-server, a MySQL-compatible engine written in
// Go, inside this process, on a free port of 127.0.0.1, with one empty
// in-memory database. It returns a go-sql-driver DSN for it and a function
// that stops it.
//
// It is here so that the quickstart runs on a machine with nothing but Go.
// It is not MySQL: it reports version 8.0.31 and a max_allowed_packet of
// 1 GiB that it does not enforce, it loads rows about ten times slower than a
// real server (a few thousand rows per second under the race detector),
// and its in-memory tables lose rows when two connections insert into the
// same table at once (measured with v0.20.0: two connections each inserting
// 1,500 rows left 2,000), which is why run gives it a single worker.
func startEmbedded() (dsn string, stop func(), err error) {
	// The engine logs through logrus; keep its start-up chatter (and its
	// warning about secure_file_priv, which is about LOAD DATA) out of the
	// example's output.
	logrus.SetLevel(logrus.ErrorLevel)

	db := memory.NewDatabase(embeddedDB)
	db.BaseDatabase.EnablePrimaryKeyIndexes()
	provider := memory.NewDBProvider(db)
	engine := sqle.NewDefault(provider)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("embedded server: %w", err)
	}
	srv, err := server.NewServer(server.Config{Protocol: "tcp", Listener: l},
		engine, gmssql.NewContext, memory.NewSessionBuilder(provider), nil)
	if err != nil {
		l.Close()
		return "", nil, fmt.Errorf("embedded server: %w", err)
	}
	go srv.Start() // accepts connections until Close
	// User root with no password is what the engine accepts by default.
	return fmt.Sprintf("root@tcp(%s)/%s", l.Addr(), embeddedDB), func() { srv.Close() }, nil
}
