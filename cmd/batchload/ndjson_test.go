package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestNDJSONReader(t *testing.T) {
	runReaderCases(t, ndjson, []readerCase{
		{"values", `{"id":1,"s":"x","n":null,"t":true,"f":false}` + "\n",
			[][]string{{"1", "x", "<NULL>", "true", "false"}}, nil},
		{"numbers keep their text", `{"a":1.50,"b":12345678901234567890123,"c":-0,"d":1e400,"e":0.1000000000000000000001,"f":-2.5E-3}` + "\n",
			[][]string{{"1.50", "12345678901234567890123", "-0", "1e400", "0.1000000000000000000001", "-2.5E-3"}}, nil},
		{"unicode, raw and escaped", `{"a":"é😀日本","b":"\u00e9\ud83d\ude00\n\"\\\/\t"}` + "\n",
			[][]string{{"é😀日本", "é😀\n\"\\/\t"}}, nil},
		{"nested values as written", `{ "a" : [ 1 , "]" ] , "b" : { "c":{}} }` + "\n",
			[][]string{{`[ 1 , "]" ]`, `{ "c":{}}`}}, nil},
		{"CRLF, blank lines, white space", "{\"a\":1}\r\n\n   \t\n{\"a\":2}",
			[][]string{{"1"}, {"<BLANK>"}, {"<BLANK>"}, {"2"}}, []int{1, 2, 3, 4}},
		{"an empty object has no fields", "{}\n", [][]string{nil}, nil},
		{"errors, then on", "{\"a\":1,}\n[1]\n{\"a\":1,\"a\":2}\n\"x\"\n{\"b\":3}\n",
			[][]string{{"<ERR>", errNotJSON.Error()}, {"<ERR>", errNotObject.Error()}, {"<ERR>", `key "a" given twice`},
				{"<ERR>", errNotObject.Error()}, {"3"}}, []int{1, 2, 3, 4, 5}},
	})
}

func TestNDJSONNamesAndKinds(t *testing.T) {
	gs := readEvery(t, ndjson, `{"id":1,"s":"x","n":null,"t":true,"o":{"a":1},"k\u0065y":[]}`+"\n"+`{"s":"y"}`)
	if want := []string{"id", "s", "n", "t", "o", "key"}; !reflect.DeepEqual(gs[0].Names, want) {
		t.Errorf("names %q, want %q", gs[0].Names, want)
	}
	if want := []Kind{Number, String, Null, Bool, JSON, JSON}; !reflect.DeepEqual(gs[0].Kinds, want) {
		t.Errorf("kinds %v, want %v", gs[0].Kinds, want)
	}
	if want := []string{"s"}; !reflect.DeepEqual(gs[1].Names, want) {
		t.Errorf("second record's names %q, want %q", gs[1].Names, want)
	}
}

// FuzzNDJSON checks the reader's invariants on any input, and that every
// object json.Unmarshal reads gives the same keys and string values; its
// seeds run as a plain test.
func FuzzNDJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b\u00e9","c":[1,{"d":"]"}]}`, "{}\n{\"x\":null}\n", "[", `{"a":"\ud800"}`, "\n \n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		gs := readEvery(t, ndjson, input)
		for _, g := range gs {
			var m map[string]any
			if g.Blank || json.Unmarshal([]byte(g.Raw), &m) != nil {
				continue
			}
			if g.Err != "" {
				if strings.Contains(g.Err, "twice") {
					continue // json.Unmarshal keeps the last of a repeated key
				}
				t.Fatalf("line %d: %s; json.Unmarshal read it", g.Line, g.Err)
			}
			if len(m) != len(g.Names) {
				t.Fatalf("line %d: keys %q, json.Unmarshal found %d", g.Line, g.Names, len(m))
			}
			for i, k := range g.Names {
				if s, ok := m[k].(string); ok && (g.Kinds[i] != String || g.Fields[i] != s) {
					t.Fatalf("line %d: key %q is %q (kind %d), json.Unmarshal says %q", g.Line, k, g.Fields[i], g.Kinds[i], s)
				}
			}
		}
	})
}
