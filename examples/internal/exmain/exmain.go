// Package exmain is the main function the examples share: it reads
// MYSQL_DSN and runs the example's run function on it.
package exmain

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Main runs run with MYSQL_DSN and standard output, and exits 2 when
// MYSQL_DSN is not set, 1 when run fails.
func Main(name string, run func(ctx context.Context, dsn string, out io.Writer) error) {
	dsn := os.Getenv("MYSQL_DSN")
	if dsn == "" {
		fmt.Fprintf(os.Stderr, "%s: set MYSQL_DSN to a go-sql-driver DSN, e.g. MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./examples/%s\n(go run ./examples/quickstart runs without a server)\n", name, name)
		os.Exit(2)
	}
	if err := run(context.Background(), dsn, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
