package blocks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readJSONText writes text to a file and runs json.read on it.
func readJSONText(t *testing.T, text string) (*Table, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	block := compileKind(t, "json.read", `{"path": "data.json"}`, CompileContext{})
	return block.Run(context.Background(), &Env{FilesDir: dir}, nil)
}

func TestJSONReadValues(t *testing.T) {
	table, err := readJSONText(t, `[
		{"i": 1, "f": 1.5, "s": "2012-01-01", "b": true, "n": null, "o": {"z": 1, "a": [1, 2]}},
		{"i": -7, "f": 2.0, "s": "x", "b": false, "n": null, "o": [ 1, "two" ]},
		{"i": 99999999999999999999, "f": 1e3}
	]`)
	if err != nil {
		t.Fatal(err)
	}
	assertColumns(t, table, "i", "f", "s", "b", "n", "o")
	assertValues(t, table, "i", int64(1), int64(-7), 1e20)
	assertValues(t, table, "f", 1.5, 2.0, 1000.0)
	assertValues(t, table, "s", "2012-01-01", "x", nil)
	assertValues(t, table, "b", true, false, nil)
	assertValues(t, table, "n", nil, nil, nil)
	assertValues(t, table, "o", `{"z":1,"a":[1,2]}`, `[1,"two"]`, nil)
	for i, row := range table.Rows {
		if len(row) != len(table.Columns) {
			t.Errorf("row %d has %d keys, want one per column", i, len(row))
		}
	}
}

func TestJSONReadColumnUnion(t *testing.T) {
	table, err := readJSONText(t, `[{"b": 1, "a": 2}, {"c": 3, "a": 4}]`)
	if err != nil {
		t.Fatal(err)
	}
	assertColumns(t, table, "b", "a", "c")
	assertValues(t, table, "c", nil, int64(3))
}

func TestJSONReadEmptyArray(t *testing.T) {
	table, err := readJSONText(t, ` [ ] `)
	if err != nil {
		t.Fatal(err)
	}
	if table.Columns == nil || len(table.Columns) != 0 || len(table.Rows) != 0 {
		t.Errorf("table = %#v, want no columns and no rows", table)
	}
}

func TestJSONReadRejectsOtherShapes(t *testing.T) {
	tests := []struct {
		name, text string
		parts      []string
	}{
		{"object", `{"a": 1}`, []string{"expected a JSON array of objects, got an object"}},
		{"number", `5`, []string{"expected a JSON array of objects, got 5"}},
		{"text", `"a"`, []string{`got text "a"`}},
		{"empty file", ``, []string{"empty"}},
		{"number element", `[{"a": 1}, 2]`, []string{"array element 2", "expected an object, got 2"}},
		{"array element", `[[1]]`, []string{"array element 1", "got an array"}},
		{"null element", `[null]`, []string{"array element 1", "got null"}},
		{"trailing data", `[{"a": 1}] [2]`, []string{"after the JSON array"}},
		{"syntax error", `[{"a": 1,}]`, []string{"array element 1"}},
		{"unclosed", `[{"a": 1}`, []string{"reading"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readJSONText(t, tt.text)
			if err == nil {
				t.Fatal("expected an error")
			}
			assertErrorContains(t, err, tt.parts...)
		})
	}
}

func TestJSONReadFlights(t *testing.T) {
	block := compileKind(t, "json.read", `{"path": "flights-20k.json"}`, CompileContext{})
	table := runBlock(t, block, &Env{FilesDir: examplesDir})
	if len(table.Rows) != 20000 {
		t.Errorf("rows = %d, want 20000", len(table.Rows))
	}
	assertColumns(t, table, "date", "delay", "distance", "origin", "destination")
	first := table.Rows[0]
	if first["delay"] != int64(66) || first["date"] != "2001/01/01 00:47" {
		t.Errorf("first row = %#v", first)
	}
}

func TestJSONReadCancelled(t *testing.T) {
	block := compileKind(t, "json.read", `{"path": "flights-20k.json"}`, CompileContext{})
	_, err := block.Run(cancelledContext(), &Env{FilesDir: examplesDir}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestInlineRows(t *testing.T) {
	block := compileKind(t, "inline", `{"rows": [
		{"name": "a", "n": 1, "x": 1.5, "nested": {"k": [1, 2]}},
		{"name": "b", "n": 2, "flag": true}
	]}`, CompileContext{})
	table := runBlock(t, block, nil)
	assertColumns(t, table, "n", "name", "nested", "x", "flag")
	assertValues(t, table, "n", int64(1), int64(2))
	assertValues(t, table, "x", 1.5, nil)
	assertValues(t, table, "nested", `{"k":[1,2]}`, nil)
	assertValues(t, table, "flag", nil, true)

	// Each run returns its own slices, so a caller cannot change what the
	// next run returns.
	table.Rows[0] = Row{}
	again := runBlock(t, block, nil)
	assertValues(t, again, "name", "a", "b")
}

func TestInlineGoValues(t *testing.T) {
	moment := time.Date(2020, 5, 1, 12, 0, 0, 0, time.UTC)
	options := map[string]any{"rows": []any{
		map[string]any{"i": 3, "u": uint64(4), "f": float32(0.5), "t": moment, "g": 2.0},
	}}
	block, problems := inlineKind.Compile(options, CompileContext{})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	table := runBlock(t, block, nil)
	row := table.Rows[0]
	if row["i"] != int64(3) || row["u"] != int64(4) || row["f"] != 0.5 || row["t"] != moment || row["g"] != 2.0 {
		t.Errorf("row = %#v", row)
	}
}

func TestInlineEmptyRows(t *testing.T) {
	table := runBlock(t, compileKind(t, "inline", `{"rows": []}`, CompileContext{}), nil)
	if len(table.Rows) != 0 || len(table.Columns) != 0 {
		t.Errorf("table = %#v, want empty", table)
	}
}

func TestInlineOptionProblems(t *testing.T) {
	problems := compileFails(t, "inline", `{"rows": {"a": 1}}`, CompileContext{})
	if !hasProblem(problems, "rows", "must be an array of objects, got an object") {
		t.Errorf("problems = %v", problems)
	}
	problems = compileFails(t, "inline", `{"rows": [{"a": 1}, 5, "x"]}`, CompileContext{})
	if !hasProblem(problems, "rows[1]", "must be an object, got 5") {
		t.Errorf("problems = %v", problems)
	}
	if !hasProblem(problems, "rows[2]", `must be an object, got "x"`) {
		t.Errorf("problems = %v", problems)
	}
	_, problems = inlineKind.Compile(map[string]any{"rows": []any{map[string]any{"c": complex(1, 2)}}}, CompileContext{})
	if !hasProblem(problems, "rows[0].c", "unsupported value") {
		t.Errorf("problems = %v", problems)
	}
}
