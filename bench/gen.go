package bench

import (
	"reflect"
	"strings"
	"sync"
	"time"
)

// The generator is a pure function of the row number: row i of a workload is
// the same in every run, for every contender, and whether it is built up
// front (Insert, GORM, sqlx, ...) or on the fly (the streaming Writer).
// Strings are slices of one fixed pseudo-random text, so building rows costs
// no copying and a dataset holds little beyond its slices and boxes.

// splitmix64 is a fast, well-mixed hash of one 64-bit word (Steele, Lea and
// Flood, "Fast splittable pseudorandom number generators", 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// textLen is the length of the shared text: room for a 4 MiB value at any
// of 1 MiB of offsets.
const textLen = 5 << 20

// alphabet holds no byte that LOAD DATA or SQL would have to escape, so
// every contender sends the same number of value bytes. (The LOAD DATA
// encoder escapes anyway; the generator just never needs it.)
const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_"

var sharedText = sync.OnceValue(func() string {
	var b strings.Builder
	b.Grow(textLen)
	var h uint64
	for i := 0; i < textLen; i += 8 {
		h = splitmix64(h + uint64(i))
		for k := 0; k < 8 && i+k < textLen; k++ {
			b.WriteByte(alphabet[(h>>(8*k))%uint64(len(alphabet))])
		}
	}
	return b.String()
})

// text returns n bytes of the shared text chosen by h, without copying.
func text(h uint64, n int) string {
	t := sharedText()
	off := int(h % uint64(len(t)-n+1))
	return t[off : off+n]
}

// between returns a length in [lo, hi] chosen by h.
func between(h uint64, lo, hi int) int { return lo + int(h%uint64(hi-lo+1)) }

// payloadSize is THE definition of payload bytes used for MB/s, the same for
// every contender: 8 bytes for an integer, float or DATETIME, the length of
// a string or []byte, 0 for NULL. It counts the data, not any protocol's
// encoding of it (1 MB = 1e6 bytes, as in the testing package).
func payloadSize(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		return int64(len(x))
	case []byte:
		return int64(len(x))
	}
	return 8
}

// baseTime is the created time of row 0; row i is i seconds later.
var baseTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// narrowColumns are the 8 columns of the narrow and skewed tables.
var narrowColumns = []string{"id", "user_id", "amount", "qty", "created", "sku", "name", "note"}

// narrowDDL is ~190 payload bytes a row: five 8-byte values and three
// strings of 16..24, 40..80 and 50..90 bytes (averages 20, 60, 70).
const narrowDDL = "id BIGINT NOT NULL PRIMARY KEY, user_id BIGINT NOT NULL, amount DOUBLE NOT NULL, " +
	"qty INT NOT NULL, created DATETIME NOT NULL, sku VARCHAR(32) NOT NULL, " +
	"name VARCHAR(128) NOT NULL, note %s NOT NULL"

// NarrowRow is one row of the narrow (and skewed) table, for GORM and sqlx.
type NarrowRow struct {
	ID      int64     `db:"id" gorm:"column:id;primaryKey;autoIncrement:false"`
	UserID  int64     `db:"user_id" gorm:"column:user_id"`
	Amount  float64   `db:"amount" gorm:"column:amount"`
	Qty     int64     `db:"qty" gorm:"column:qty"`
	Created time.Time `db:"created" gorm:"column:created"`
	SKU     string    `db:"sku" gorm:"column:sku"`
	Name    string    `db:"name" gorm:"column:name"`
	Note    string    `db:"note" gorm:"column:note"`
}

// narrowRow fills dst (8 values) with row i of the narrow workload. A row
// of the skewed workload is the same but for its note when bigNote says so.
func narrowRow(dst []any, i int) NarrowRow {
	h := splitmix64(uint64(i) ^ 0x6e6172726f77)
	h2 := splitmix64(h)
	h3 := splitmix64(h2)
	r := NarrowRow{
		ID:      int64(i) + 1,
		UserID:  int64(h % 1_000_000),
		Amount:  float64(h2%100_000_000) / 100,
		Qty:     int64(h3 % 1000),
		Created: baseTime.Add(time.Duration(i) * time.Second),
		SKU:     text(h, between(h>>20, 16, 24)),
		Name:    text(h2, between(h2>>20, 40, 80)),
		Note:    text(h3, between(h3>>20, 50, 90)),
	}
	dst[0], dst[1], dst[2], dst[3] = r.ID, r.UserID, r.Amount, r.Qty
	dst[4], dst[5], dst[6], dst[7] = r.Created, r.SKU, r.Name, r.Note
	return r
}

// skewedBig is the size of the 1% of skewed notes that are large: far above
// the driver's long-data threshold (max(64 MiB/(N+1), 64) bytes), so every
// prepared-statement contender sends them as COM_STMT_SEND_LONG_DATA.
const skewedBig = 4 << 20

// isSkewedBig reports whether row i of the skewed workload has a big note:
// one row in a hundred, spread evenly.
func isSkewedBig(i int) bool { return i%100 == 50 }

// WideRow is one row of the wide table: ~17 KB, one of them a blob that
// stays inline in COM_STMT_EXECUTE (below the 22 KB long-data threshold of
// a 1000-row, 3-column statement), so 1000 rows make a 17 MB packet, over a
// 16 MiB max_allowed_packet.
type WideRow struct {
	ID      int64  `db:"id" gorm:"column:id;primaryKey;autoIncrement:false"`
	Name    string `db:"name" gorm:"column:name"`
	Payload []byte `db:"payload" gorm:"column:payload"`
}

var wideColumns = []string{"id", "name", "payload"}

const wideDDL = "id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(64) NOT NULL, payload MEDIUMBLOB NOT NULL"

// widePayload is the blob of each wide row.
const widePayload = 17_000

func wideRow(dst []any, i int) WideRow {
	h := splitmix64(uint64(i) ^ 0x77696465)
	h2 := splitmix64(h)
	r := WideRow{
		ID:      int64(i) + 1,
		Name:    text(h, between(h>>20, 16, 32)),
		Payload: []byte(text(h2, widePayload)),
	}
	dst[0], dst[1], dst[2] = r.ID, r.Name, r.Payload
	return r
}

// manyInts and manyStrs make the 72 columns of the many-columns table with
// the id: 1000 rows would need 72,000 placeholders, over the 65,535 of a
// prepared statement.
const manyInts, manyStrs = 35, 36

var manyColumns = func() []string {
	cols := []string{"id"}
	cols = append(cols, manyFieldNames("i", manyInts)...)
	return append(cols, manyFieldNames("s", manyStrs)...)
}()

func manyFieldNames(prefix string, n int) []string {
	names := make([]string, n)
	for k := range names {
		names[k] = prefix + string(rune('0'+(k+1)/10)) + string(rune('0'+(k+1)%10))
	}
	return names
}

var manyDDL = func() string {
	var b strings.Builder
	b.WriteString("id BIGINT NOT NULL PRIMARY KEY")
	for _, c := range manyFieldNames("i", manyInts) {
		b.WriteString(", " + c + " BIGINT NOT NULL")
	}
	for _, c := range manyFieldNames("s", manyStrs) {
		b.WriteString(", " + c + " VARCHAR(16) NOT NULL")
	}
	return b.String()
}()

// manyRow fills dst (72 values) and the matching ManyRow: ints below 2^40,
// strings of 4..12 bytes (~576 payload bytes a row).
func manyRow(dst []any, i int) ManyRow {
	var r ManyRow
	rv := reflect.ValueOf(&r).Elem()
	r.ID = int64(i) + 1
	dst[0] = r.ID
	h := splitmix64(uint64(i) ^ 0x6d616e79)
	for k := 0; k < manyInts; k++ {
		h = splitmix64(h)
		v := int64(h >> 24)
		rv.Field(1 + k).SetInt(v)
		dst[1+k] = v
	}
	for k := 0; k < manyStrs; k++ {
		h = splitmix64(h)
		s := text(h, between(h>>20, 4, 12))
		rv.Field(1 + manyInts + k).SetString(s)
		dst[1+manyInts+k] = s
	}
	return r
}
