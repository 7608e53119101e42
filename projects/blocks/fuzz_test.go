package blocks

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzDeadline bounds one fuzz input. An input that runs longer counts as
// a hang.
const fuzzDeadline = 10 * time.Second

// runWithin runs fn and fails the test when it does not return within
// fuzzDeadline. A hung fn is left running, since nothing can stop it.
func runWithin(t *testing.T, what string, input any, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(fuzzDeadline):
		t.Fatalf("%s did not return within %s on %q", what, fuzzDeadline, input)
	}
}

// fuzzRows is the sample input of FuzzExpression: text, numbers, dates,
// nulls and a field whose name is not an identifier.
func fuzzRows() *Table {
	date := time.Date(2014, 3, 1, 0, 0, 0, 0, time.UTC)
	return newTable([]string{"s", "n", "f", "d", "b", "z", "Cost Total $"},
		[]any{"rain", int64(3), 1.5, date, true, nil, 2.0},
		[]any{"", int64(-9223372036854775808), -0.0, date, false, "x", nil},
		[]any{"\xff\x00", int64(9223372036854775807), 1e308, nil, nil, nil, "7"},
	)
}

// FuzzExpression compiles random expressions as filter and compute blocks
// and runs them over sample rows with parameters. None may panic, hang or
// allocate without bound: a problem must come back as an error.
func FuzzExpression(f *testing.F) {
	for _, seed := range []string{
		`s == "rain" && n > 2`, `year(d) == params.year`, `upper(s) + params.label`, `$env["Cost Total $"] * 2`,
		`let x = n; x * x`, `reduce(1..10, #acc + #acc, "x")`, `map(1..5, # * f)`, `z ?? "none"`,
		`s matches "^r"`, `toJSON($env)`, `int(s)`, `n / 0`, `n % 0`, `-n`, `1..3`, `now()`, `date(s)`,
	} {
		f.Add(seed)
	}
	cc := CompileContext{Params: map[string]string{"year": "integer", "label": "text"}}
	env := &Env{Params: map[string]any{"year": int64(2014), "label": "L"}}
	f.Fuzz(func(t *testing.T, source string) {
		options := []map[string]any{
			{"where": source},
			{"fields": map[string]any{"out": source}},
		}
		for i, typ := range []string{"filter", "compute"} {
			kind, _ := Lookup(typ)
			block, problems := kind.Compile(options[i], cc)
			if len(problems) > 0 {
				continue
			}
			runWithin(t, typ, source, func() {
				ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
				defer cancel()
				_, _ = block.Run(ctx, env, []*Table{fuzzRows()})
			})
		}
	})
}

// FuzzCSVRead reads arbitrary bytes as a CSV file with and without a
// header and with several delimiters.
func FuzzCSVRead(f *testing.F) {
	for _, seed := range []string{
		"a,b\n1,2\n", "date,n\n2014-01-01,1.5\n,\n", "\ufeffa;b\n\"x;\"\"y\",2\n", "a,a,\n1\n1,2,3,4\n",
		"\"unterminated\n", "a\tb\n1\t2\n", "",
	} {
		f.Add([]byte(seed), ",", true)
	}
	f.Fuzz(func(t *testing.T, data []byte, delimiter string, header bool) {
		options := map[string]any{"path": "data.csv", "delimiter": delimiter, "header": header}
		readFuzzFile(t, "csv.read", "data.csv", data, options)
	})
}

// FuzzJSONRead reads arbitrary bytes as a JSON file.
func FuzzJSONRead(f *testing.F) {
	for _, seed := range []string{
		`[{"a": 1, "b": "x"}]`, `[]`, `{"a": 1}`, `[{"a": 99999999999999999999, "b": 1e400}]`, `[[[[]]]]`,
		`[{"a": {"b": [1, {"c": null}]}}, {"d": true}]`, `[{"a": 1}, 2]`, "[{\"\xff\": 1}]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		readFuzzFile(t, "json.read", "data.json", data, map[string]any{"path": "data.json"})
	})
}

// readFuzzFile writes data as name and runs a reading block of type typ
// on it. Rejected options are fine; a panic or a hang is not, and every
// row must have a value for each column.
func readFuzzFile(t *testing.T, typ, name string, data []byte, options map[string]any) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	kind, _ := Lookup(typ)
	block, problems := kind.Compile(options, CompileContext{})
	if len(problems) > 0 {
		return
	}
	runWithin(t, typ, data, func() {
		table, err := block.Run(context.Background(), &Env{FilesDir: dir}, nil)
		if err != nil {
			return
		}
		for i, row := range table.Rows {
			if len(row) != len(table.Columns) {
				t.Errorf("row %d has %d fields for %d columns", i, len(row), len(table.Columns))
			}
		}
		if _, err := json.Marshal(table.Rows); err != nil {
			t.Errorf("rows do not encode as JSON: %v", err)
		}
	})
}
