// bulk.c: what MariaDB's array binding (COM_STMT_BULK_EXECUTE), which
// go-sql-driver/mysql does not implement, would be worth against the
// statement the library sends. Not part of the Go build; see
// bench/RESULTS.md, "What the driver's missing bulk execute would be worth".
//
// It loads 500k rows of the narrow table's shape (8 columns, ~190 B) into
// test.cbulk on 127.0.0.1:PORT (user root, no password) in one of two ways:
//
//   multi K   a K-row INSERT prepared once, one COM_STMT_EXECUTE per K rows
//             (what the library and bench's handwritten reference send)
//   bulk K    a one-row INSERT prepared once, executed with an array of K
//             parameter sets (STMT_ATTR_ARRAY_SIZE: COM_STMT_BULK_EXECUTE)
//
// Build and run (Debian: apt-get install libmariadb-dev):
//
//   gcc -O2 -o bulk bench/bulkexec/bulk.c $(mariadb_config --cflags --libs)
//   ./bulk multi 3407 1000; ./bulk bulk 3407 1000; ./bulk bulk 3407 10000
//
// and read the server's CPU time from /proc/PID/stat around each run.
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 500000
#define COLS 8
static long long ids[N], users[N], qtys[N];
static double amounts[N];
static char created[N][20], sku[N][25], name[N][81], note[N][91];
static char *pcreated[N], *psku[N], *pname[N], *pnote[N];
static unsigned long lcreated[N], lsku[N], lname[N], lnote[N];

static void die(MYSQL *m, MYSQL_STMT *s) {
  fprintf(stderr, "error: %s\n", s ? mysql_stmt_error(s) : mysql_error(m));
  exit(1);
}
static unsigned long long x = 88172645463325252ULL;
static unsigned long long rnd(void) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; }
static void fill(char *dst, unsigned long *len, int lo, int hi) {
  int n = lo + rnd() % (hi - lo + 1);
  for (int i = 0; i < n; i++) dst[i] = 'a' + rnd() % 26;
  dst[n] = 0; *len = n;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: bulk multi|bulk PORT K\n"); return 2; }
  const char *mode = argv[1]; int port = atoi(argv[2]); int K = atoi(argv[3]);
  for (int i = 0; i < N; i++) {
    ids[i] = i + 1; users[i] = rnd() % 1000000; amounts[i] = (rnd() % 100000000) / 100.0; qtys[i] = rnd() % 1000;
    time_t t = 1700000000 + i; struct tm tm; gmtime_r(&t, &tm);
    strftime(created[i], 20, "%Y-%m-%d %H:%M:%S", &tm); lcreated[i] = 19;
    pcreated[i]=created[i]; psku[i]=sku[i]; pname[i]=name[i]; pnote[i]=note[i];
    fill(sku[i], &lsku[i], 16, 24); fill(name[i], &lname[i], 40, 80); fill(note[i], &lnote[i], 50, 90);
  }
  MYSQL *m = mysql_init(NULL);
  if (!mysql_real_connect(m, "127.0.0.1", "root", "", "test", port, NULL, 0)) die(m, NULL);
  mysql_query(m, "SET NAMES utf8mb4");
  if (mysql_query(m, "DROP TABLE IF EXISTS cbulk") || mysql_query(m, "CREATE TABLE cbulk (id BIGINT NOT NULL PRIMARY KEY, user_id BIGINT NOT NULL, amount DOUBLE NOT NULL, qty INT NOT NULL, created DATETIME NOT NULL, sku VARCHAR(32) NOT NULL, name VARCHAR(128) NOT NULL, note VARCHAR(255) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")) die(m, NULL);
  int rows = strcmp(mode, "bulk") == 0 ? 1 : K;
  char *q = malloc(100 + rows * 20);
  strcpy(q, "INSERT INTO cbulk (id,user_id,amount,qty,created,sku,name,note) VALUES ");
  for (int r = 0; r < rows; r++) strcat(q, r ? ",(?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?)");
  MYSQL_STMT *s = mysql_stmt_init(m);
  if (mysql_stmt_prepare(s, q, strlen(q))) die(m, s);
  MYSQL_BIND *b = calloc(rows * COLS, sizeof(MYSQL_BIND));
  double t0 = now();
  for (int c = 0; c + K <= N; c += K) {
    if (rows == 1) {
      unsigned int sz = K;
      mysql_stmt_attr_set(s, STMT_ATTR_ARRAY_SIZE, &sz);
      b[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &ids[c]};
      b[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &users[c]};
      b[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_DOUBLE, .buffer = &amounts[c]};
      b[3] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &qtys[c]};
      b[4] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = &pcreated[c], .length = &lcreated[c]};
      b[5] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = &psku[c], .length = &lsku[c]};
      b[6] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = &pname[c], .length = &lname[c]};
      b[7] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = &pnote[c], .length = &lnote[c]};
      // Column-wise arrays: numbers as arrays of values, strings as arrays
      // of pointers with an array of lengths.
    } else {
      for (int r = 0; r < K; r++) {
        MYSQL_BIND *p = &b[r * COLS]; int i = c + r;
        p[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &ids[i]};
        p[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &users[i]};
        p[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_DOUBLE, .buffer = &amounts[i]};
        p[3] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &qtys[i]};
        p[4] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = created[i], .buffer_length = 19, .length = &lcreated[i]};
        p[5] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = sku[i], .length = &lsku[i]};
        p[6] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = name[i], .length = &lname[i]};
        p[7] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING, .buffer = note[i], .length = &lnote[i]};
      }
    }
    if (mysql_stmt_bind_param(s, b)) die(m, s);
    if (mysql_stmt_execute(s)) die(m, s);
    if (mysql_stmt_affected_rows(s) != (my_ulonglong)K) { fprintf(stderr, "affected %llu\n", mysql_stmt_affected_rows(s)); exit(1); }
  }
  double t1 = now();
  mysql_query(m, "SELECT COUNT(*), SUM(LENGTH(note)) FROM cbulk");
  MYSQL_RES *res = mysql_store_result(m); MYSQL_ROW row = mysql_fetch_row(res);
  printf("%s K=%d: %.3f s, %.0f rows/s, count %s\n", mode, K, t1 - t0, N / (t1 - t0), row[0]);
  return 0;
}
