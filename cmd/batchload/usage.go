package main

// usageText is the --help text.
const usageText = `batchload loads a CSV, TSV or NDJSON file into a MySQL or MariaDB table.

Usage:
  batchload [flags] FILE TABLE

  FILE   the input file, or - for standard input (then --format is needed).
         gzip (.gz) and zstd (.zst) files are decompressed on the fly.
  TABLE  the target table, as name or db.name. It must exist: its columns
         and their types are read from the server before anything is sent.

Examples:
  export MYSQL_DSN='app:secret@tcp(127.0.0.1:3306)/shop'
  batchload products.csv products
  batchload --mode upsert --workers 4 --summary json prices.csv.gz prices
  batchload --columns sku,name,price items.csv items      # no header line
  mysqldump --tab=/tmp/dump shop orders     # orders.txt: TSV, no header line
  batchload --header=false /tmp/dump/orders.txt orders
  zcat events.ndjson.gz | batchload --format ndjson - events
  batchload --max-rejects 100 --rejects bad.csv new.csv orders
  batchload --dry-run new_rows.tsv orders    # check everything, keep nothing
  batchload --load-id orders-0601 orders-0601.csv orders    # resumable

Flags (write --flag=value or --flag value; a true/false flag takes =false):
  --dsn DSN           the server, as a go-sql-driver/mysql DSN
                      (default: $MYSQL_DSN), e.g. 'user:pw@tcp(host:3306)/db'
  --format F          csv, tsv or ndjson (default: from the file name:
                      .csv; .tsv .tab .txt; .ndjson .jsonl; then .gz or .zst)
  --header            csv/tsv: the first record names the columns (default
                      true). Names the table lacks are an error, before
                      anything is sent; the names are case-insensitive.
  --columns a,b,c     the columns of an input without a header, in order
                      (implies --header=false). Without a header or
                      --columns, the table's columns in table order.
                      For ndjson: the columns to load (default: the keys
                      of the first object).
  --null TOKEN        the field that means NULL: for tsv \N by default (as
                      LOAD DATA writes it); for csv none by default, and an
                      unquoted field equal to TOKEN (--null '' for an empty
                      one) is NULL while a quoted one never is.
  --mode M            insert (default: a duplicate key is refused), replace
                      (REPLACE INTO: the new row replaces the old), ignore
                      (a row whose unique key exists is skipped; bad values
                      are still refused, unlike INSERT IGNORE), upsert
                      (INSERT ... ON DUPLICATE KEY UPDATE of every loaded
                      column outside the primary key, which the input must
                      hold)
  --workers N         connections writing at once (default 2)
  --max-rejects N     records that may be rejected before the load stops
                      (default 0: the first one stops it; -1: no limit).
                      A record is rejected when it is malformed, has the
                      wrong number of fields, or holds a value the server
                      refuses (or would change: see Values); the others
                      are written.
  --rejects PATH      write the rejected records to PATH exactly as read
                      (after the header line, if any; compressed if PATH
                      ends in .gz or .zst), so that PATH can be fixed and
                      loaded again, and one JSON object per record to
                      PATH.log: file, line, offset (the byte offset in the
                      uncompressed input), row, code and sqlstate (the
                      server's; null for a record batchload refused),
                      message, source ("server" or "batchload")
  --dry-run           check the columns and load inside a transaction that is
                      rolled back: the server's real errors and rejects,
                      and the table's rows left as they were (InnoDB never
                      rolls back an AUTO_INCREMENT counter, though)
  --progress P        auto (default: a bar with rows/s and the time left on
                      a terminal, nothing otherwise), bar, json (one JSON
                      line a second on stderr), none
  --summary json      print the summary as one JSON object on stdout (rows,
                      written, resumed, rejected, not_sent, unknown with
                      their row ranges, elapsed_s, rows_per_s, exit_code,
                      error)
                      instead of a line of text on stderr
  --load-id ID        make the load exactly-once and resumable: each
                      transaction records the rows it commits in the ledger
                      table, in the same transaction. Run the same command
                      again (same ID, input, TABLE and columns) after any
                      failure, SIGINT or kill: the rows committed are
                      passed over (written, "resumed" in the summary), the
                      rest loaded. ID: 1 to 191 printable ASCII characters
                      without spaces, e.g. orders-2024-06-01. Not with
                      --dry-run. See Resuming below
  --ledger-table T    the ledger of --load-id (default batchload_ledger, in
                      the DSN's database; or db.name), created if missing;
                      InnoDB, as the target table must be
  --help              this text

Rows are counted from 0, data records only (not the header, nor blank
lines); a range [a, b) is the rows a to b-1. Every record read is in
exactly one of written, rejected, not sent and unknown (sent, but the
connection was lost before the answer), even after an error or an
interruption.

Resuming (--load-id): a rerun reads the input from the start and passes
over the records in the ranges earlier runs committed (the ledger holds
them). Rejects are counted for the whole input, against --max-rejects
too, and a rerun rewrites --rejects PATH with every reject of the input
once, in input order: the records refused here (met again), those the
server refused in an earlier run (recalled from the ledger, with their
error) and this run's. The ledger rows stay after a load: a rerun of a
finished load writes nothing (exit 0, or 3 if it had rejects); to load
again, give a new ID or DELETE FROM batchload_ledger WHERE load_id = 'ID'.
A rerun is refused (exit 1) when its input is seen not to be the earlier
runs' one: another TABLE (or TABLE written otherwise) or other columns,
fewer records than were committed, a record refused here in a committed
range; and while a run of the same ID is going. Not seen: another input
with the same columns and as many records or more (its committed ranges
are passed over, whatever they hold now), another --mode or --null.

Formats:
  csv     RFC 4180: comma-separated, "quoted" fields may hold commas, ""
          (a quote) and line breaks; LF or CRLF; a UTF-8 BOM is skipped.
  tsv     LOAD DATA's default: tab-separated, LF-terminated, backslash
          escapes \0 \b \n \r \t \Z \\ and \N for NULL.
  ndjson  one JSON object per line; keys name columns; null is NULL, an
          absent key is NULL, numbers keep their exact text, objects and
          arrays are sent as JSON text.

Values: the column types are read from the table, and each value is sent
in the cheapest exact form for its type (integers as integers, DECIMAL as
text so nothing is rounded, DOUBLE as a float only when the text
round-trips, binary as bytes). Nothing is coerced: a value the server
refuses is a reject, and so is one it would silently change, which
batchload refuses itself: a fraction for an integer column, more decimals
than a DECIMAL keeps, a time of day for a DATE, more fractional seconds
than the column keeps, spaces past a CHAR or VARCHAR's length, anything
but one of an ENUM's or SET's values, and a text that is not a number for
a numeric column.

Exit status:
  0  every row was written
  1  a failure: the server, the input (unreadable, or a header that does
     not fit the table), an interruption (SIGINT/SIGTERM: the load stops
     cleanly and the summary is still exact), or a --load-id rerun of
     another input, or while another run of the ID is going
  2  a command line that cannot work
  3  the load finished, with records rejected (no more than --max-rejects)
  4  the load stopped at a reject beyond --max-rejects
`
