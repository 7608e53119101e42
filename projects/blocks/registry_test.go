package blocks

import (
	"reflect"
	"slices"
	"testing"
)

func TestTypesSortedAndComplete(t *testing.T) {
	want := []string{
		"aggregate", "append", "assert", "compute", "csv.read", "csv.write", "delay",
		"filter", "inline", "join", "json.read", "json.write", "limit", "select", "sort",
	}
	got := Types()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Types() = %q, want %q", got, want)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Types() is not sorted: %q", got)
	}
}

func TestLookupInputCounts(t *testing.T) {
	tests := []struct {
		typ      string
		min, max int
	}{
		{"csv.read", 0, 0},
		{"json.read", 0, 0},
		{"inline", 0, 0},
		{"join", 2, 2},
		{"append", 1, -1},
		{"filter", 1, 1},
		{"compute", 1, 1},
		{"select", 1, 1},
		{"aggregate", 1, 1},
		{"sort", 1, 1},
		{"limit", 1, 1},
		{"assert", 1, 1},
		{"delay", 1, 1},
		{"csv.write", 1, 1},
		{"json.write", 1, 1},
	}
	for _, tt := range tests {
		kind, ok := Lookup(tt.typ)
		if !ok {
			t.Errorf("Lookup(%q) found no kind", tt.typ)
			continue
		}
		if kind.Type != tt.typ {
			t.Errorf("Lookup(%q).Type = %q", tt.typ, kind.Type)
		}
		if kind.MinInputs != tt.min || kind.MaxInputs != tt.max {
			t.Errorf("%s inputs = %d..%d, want %d..%d", tt.typ, kind.MinInputs, kind.MaxInputs, tt.min, tt.max)
		}
		if kind.Compile == nil {
			t.Errorf("%s has no Compile", tt.typ)
		}
	}
}

func TestLookupUnknownType(t *testing.T) {
	if _, ok := Lookup("csv.reed"); ok {
		t.Error(`Lookup("csv.reed") found a kind`)
	}
}

func TestEveryKindRejectsUnknownOption(t *testing.T) {
	for _, typ := range Types() {
		kind, _ := Lookup(typ)
		_, problems := kind.Compile(map[string]any{"colour": "red"}, CompileContext{})
		if !hasProblem(problems, "colour", "unknown option") {
			t.Errorf("%s: problems %v do not report the unknown option colour", typ, problems)
		}
	}
}

func TestOptionErrorNamesOption(t *testing.T) {
	for _, typ := range Types() {
		kind, _ := Lookup(typ)
		_, problems := kind.Compile(map[string]any{"colour": "red"}, CompileContext{})
		for _, p := range problems {
			if p.Option == "" || p.Message == "" {
				t.Errorf("%s: problem %#v lacks an option or a message", typ, p)
			}
		}
	}
}
