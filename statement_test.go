package batch

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStatementText(t *testing.T) {
	tests := []struct {
		name  string
		verb  verb
		table string
		cols  []string
		opts  []Option
		k     int
		alias bool
		want  string
	}{
		{"insert", verbInsert, "t", []string{"a", "b"}, nil, 2, false,
			"INSERT INTO `t` (`a`,`b`) VALUES (?,?),(?,?)"},
		{"schema and backticks", verbInsert, "s.we`ird", []string{"c`1"}, nil, 1, false,
			"INSERT INTO `s`.`we``ird` (`c``1`) VALUES (?)"},
		{"replace", verbReplace, "t", []string{"a"}, nil, 3, false,
			"REPLACE INTO `t` (`a`) VALUES (?),(?),(?)"},
		{"ignore", verbInsert, "t", []string{"a"}, []Option{Ignore()}, 1, false,
			"INSERT INTO `t` (`a`) VALUES (?) ON DUPLICATE KEY UPDATE `a`=`a`"},
		{"upsert values()", verbInsert, "t", []string{"id", "a", "b"}, []Option{OnDuplicateKeyUpdateExcept("id")}, 1, false,
			"INSERT INTO `t` (`id`,`a`,`b`) VALUES (?,?,?) ON DUPLICATE KEY UPDATE `a`=VALUES(`a`),`b`=VALUES(`b`)"},
		{"upsert alias", verbInsert, "t", []string{"id", "a", "b"}, []Option{OnDuplicateKeyUpdate("b")}, 2, true,
			"INSERT INTO `t` (`id`,`a`,`b`) VALUES (?,?,?),(?,?,?) AS _batch_new ON DUPLICATE KEY UPDATE `b`=_batch_new.`b`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := buildOptions(tt.opts)
			st, err := newStatement(tt.verb, tt.table, tt.cols, &o)
			if err != nil {
				t.Fatal(err)
			}
			got := st.text(tt.k, tt.alias)
			if got != tt.want {
				t.Errorf("text = %q, want %q", got, tt.want)
			}
			if n := st.textLen(tt.k, tt.alias); n != len(got) {
				t.Errorf("textLen = %d, want %d", n, len(got))
			}
		})
	}
}

func TestMaxRowsForPrepare(t *testing.T) {
	o := buildOptions([]Option{OnDuplicateKeyUpdateExcept("id")})
	st, err := newStatement(verbInsert, "t", []string{"id", "v"}, &o)
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []bool{false, true} {
		for packet := 60; packet < 400; packet++ {
			k := st.maxRowsForPrepare(packet, alias)
			if k > 0 && prepareSize(st.textLen(k, alias)) > packet {
				t.Fatalf("packet %d: %d rows need a %d-byte PREPARE", packet, k, prepareSize(st.textLen(k, alias)))
			}
			if prepareSize(st.textLen(k+1, alias)) <= packet {
				t.Fatalf("packet %d: %d rows would fit too", packet, k+1)
			}
		}
	}
}

func TestStatementErrors(t *testing.T) {
	tests := []struct {
		name  string
		verb  verb
		table string
		cols  []string
		opts  []Option
		want  error
	}{
		{"empty table", verbInsert, "", []string{"a"}, nil, ErrEmptyName},
		{"empty schema", verbInsert, ".t", []string{"a"}, nil, ErrEmptyName},
		{"empty column", verbInsert, "t", []string{"a", ""}, nil, ErrEmptyName},
		{"no columns", verbInsert, "t", nil, nil, ErrNoColumns},
		{"duplicate column", verbInsert, "t", []string{"a", "A"}, nil, ErrDuplicateColumn},
		{"replace ignore", verbReplace, "t", []string{"a"}, []Option{Ignore()}, ErrOptions},
		{"replace upsert", verbReplace, "t", []string{"a", "b"}, []Option{OnDuplicateKeyUpdate("b")}, ErrOptions},
		{"upsert unknown column", verbInsert, "t", []string{"a"}, []Option{OnDuplicateKeyUpdate("b")}, ErrOptions},
		{"upsert nothing", verbInsert, "t", []string{"a"}, []Option{OnDuplicateKeyUpdateExcept("a")}, ErrOptions},
		{"upsert empty", verbInsert, "t", []string{"a"}, []Option{OnDuplicateKeyUpdate()}, ErrOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := buildOptions(tt.opts)
			_, err := newStatement(tt.verb, tt.table, tt.cols, &o)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		v     string
		f     Flavor
		mmp   [3]int
		alias bool
	}{
		{"10.11.19-MariaDB-0+deb12u1", MariaDB, [3]int{10, 11, 19}, false},
		{"5.5.5-10.6.2-MariaDB", MariaDB, [3]int{10, 6, 2}, false},
		{"8.0.36", MySQL, [3]int{8, 0, 36}, true},
		{"8.0.19-log", MySQL, [3]int{8, 0, 19}, false},
		{"8.4.3", MySQL, [3]int{8, 4, 3}, true},
		{"5.7.44", MySQL, [3]int{5, 7, 44}, false},
		{"8.0.11-TiDB-v7.5.0", TiDB, [3]int{8, 0, 11}, false},
		{"8.0.30-Vitess", Vitess, [3]int{8, 0, 30}, false},
	}
	for _, tt := range tests {
		f, a, b, c := parseVersion(tt.v)
		l := Limits{Flavor: f, Major: a, Minor: b, Patch: c}
		if f != tt.f || [3]int{a, b, c} != tt.mmp || l.rowAlias() != tt.alias {
			t.Errorf("%q: got %v %d.%d.%d alias=%v, want %v %v alias=%v", tt.v, f, a, b, c, l.rowAlias(), tt.f, tt.mmp, tt.alias)
		}
	}
}

func TestServerPacket(t *testing.T) {
	tests := []struct {
		l    Limits
		want int
	}{
		{Limits{MaxAllowedPacket: 16 << 20, NetBufferLength: 16384}, 16<<20 - 1},
		// The server enforces the larger of the two (measured: 16383 accepted).
		{Limits{MaxAllowedPacket: 8192, NetBufferLength: 16384}, 16383},
		// Compressed: P + 4*(floor(P/16777215)+1) <= S-1.
		{Limits{MaxAllowedPacket: 8192, NetBufferLength: 1024, Compressed: true}, 8191 - 4},
		{Limits{MaxAllowedPacket: 64 << 20, NetBufferLength: 16384, Compressed: true}, 64<<20 - 1 - 16},
	}
	for _, tt := range tests {
		got := tt.l.serverPacket()
		if got != tt.want {
			t.Errorf("%+v: serverPacket = %d, want %d", tt.l, got, tt.want)
		}
		if tt.l.Compressed && got+compressedOverhead(got) > max(tt.l.MaxAllowedPacket, tt.l.NetBufferLength)-1 {
			t.Errorf("%+v: %d does not fit", tt.l, got)
		}
	}
}

func TestLedgerRanges(t *testing.T) {
	l := newTally(nil, 70)
	l.wrote(chunk{first: 10, end: 20}, 10, 0)
	l.wrote(chunk{first: 0, end: 10}, 10, 0)
	l.lost(chunk{first: 30, end: 40})
	l.wrote(chunk{first: 50, end: 60}, 10, 0)
	r := l.result(70)
	want := Result{Rows: 30, RowsAffected: 30, Chunks: 3,
		Written: []Range{{0, 20}, {50, 60}},
		Unknown: []Range{{30, 40}},
		NotSent: []Range{{20, 30}, {40, 50}, {60, 70}}}
	r.Elapsed = 0
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}
