package blocks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readCSVText writes text to a file and runs csv.read on it with options
// (JSON without the path).
func readCSVText(t *testing.T, text, options string) (*Table, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.csv"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if options == "" {
		options = "{}"
	}
	decoded := decodeOptions(t, options)
	decoded["path"] = "data.csv"
	block, problems := csvReadKind.Compile(decoded, CompileContext{})
	if len(problems) > 0 {
		t.Fatalf("problems = %v", problems)
	}
	return block.Run(context.Background(), &Env{FilesDir: dir}, nil)
}

func TestCSVReadInference(t *testing.T) {
	tests := []struct {
		name  string
		cells []string
		want  []any
	}{
		{"integers", []string{"1", "-2", "+3", ""}, []any{int64(1), int64(-2), int64(3), nil}},
		{"floats", []string{"1.5", "2", "-0.25", "1e3", ".5"}, []any{1.5, 2.0, -0.25, 1000.0, 0.5}},
		{"booleans", []string{"true", "FALSE", "True", ""}, []any{true, false, true, nil}},
		{"dates", []string{"2012-01-01", "", "2015-12-31"}, []any{date(2012, 1, 1), nil, date(2015, 12, 31)}},
		{"text", []string{"a", "1", ""}, []any{"a", "1", nil}},
		{"leading zero stays text", []string{"02134", "10001"}, []any{"02134", "10001"}},
		{"nan stays text", []string{"NaN", "1.5"}, []any{"NaN", "1.5"}},
		{"infinity stays text", []string{"Inf", "2"}, []any{"Inf", "2"}},
		{"hexadecimal stays text", []string{"0x10", "2"}, []any{"0x10", "2"}},
		{"invalid date stays text", []string{"2012-02-30", "2012-01-01"}, []any{"2012-02-30", "2012-01-01"}},
		{"spaces stay text", []string{" 1", "2"}, []any{" 1", "2"}},
		{"all empty", []string{"", ""}, []any{nil, nil}},
		{"integer overflow becomes float", []string{"99999999999999999999", "1"}, []any{1e20, 1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "v\n" + strings.Join(tt.cells, "\n") + "\n"
			// A second column keeps lines with an empty cell from being
			// skipped as blank lines.
			text = strings.ReplaceAll(text, "\n", ",x\n")
			table, err := readCSVText(t, text, "")
			if err != nil {
				t.Fatal(err)
			}
			assertValues(t, table, "v", tt.want...)
		})
	}
}

func TestCSVReadHeaderFalse(t *testing.T) {
	table, err := readCSVText(t, "1,a\n2,b\n", `{"header": false}`)
	if err != nil {
		t.Fatal(err)
	}
	assertColumns(t, table, "c1", "c2")
	assertValues(t, table, "c1", int64(1), int64(2))
	assertValues(t, table, "c2", "a", "b")
}

func TestCSVReadDelimiter(t *testing.T) {
	table, err := readCSVText(t, "a;b\n1;x y\n", `{"delimiter": ";"}`)
	if err != nil {
		t.Fatal(err)
	}
	assertColumns(t, table, "a", "b")
	assertValues(t, table, "b", "x y")

	table, err = readCSVText(t, "a\tb\n1\t2\n", `{"delimiter": "\t"}`)
	if err != nil {
		t.Fatal(err)
	}
	assertValues(t, table, "b", int64(2))
}

func TestCSVReadQuotedFields(t *testing.T) {
	table, err := readCSVText(t, "a,b\n\"x, y\",\"line\nbreak\"\n", "")
	if err != nil {
		t.Fatal(err)
	}
	assertValues(t, table, "a", "x, y")
	assertValues(t, table, "b", "line\nbreak")
}

func TestCSVReadMalformedRows(t *testing.T) {
	tests := []struct {
		name, text string
		parts      []string
	}{
		{"too many fields", "a,b\n1,2\n3,4,5\n", []string{"row 2", "line 3", "wrong number of fields"}},
		{"too few fields", "a,b\n1,2\n3,4\n5\n", []string{"row 3", "line 4", "wrong number of fields"}},
		{"bare quote", "a,b\n1,x\"y\n", []string{"row 1", "line 2", `bare "`}},
		{"unclosed quote", "a,b\n1,\"x\n", []string{"row 1", "line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readCSVText(t, tt.text, "")
			if err == nil {
				t.Fatal("expected an error")
			}
			assertErrorContains(t, err, tt.parts...)
		})
	}
}

func TestCSVReadHeaderEdgeCases(t *testing.T) {
	table, err := readCSVText(t, "\uFEFFa,,c\n1,2,3\n", "")
	if err != nil {
		t.Fatal(err)
	}
	assertColumns(t, table, "a", "c2", "c")

	_, err = readCSVText(t, "a,a\n1,2\n", "")
	if err == nil {
		t.Fatal("expected an error for a repeated column name")
	}
	assertErrorContains(t, err, `column "a" twice`)
}

func TestCSVReadEmptyFile(t *testing.T) {
	table, err := readCSVText(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if table.Columns == nil || len(table.Columns) != 0 || len(table.Rows) != 0 {
		t.Errorf("table = %#v, want no columns and no rows", table)
	}

	table, err = readCSVText(t, "a,b\n", "")
	if err != nil {
		t.Fatal(err)
	}
	assertColumns(t, table, "a", "b")
	if len(table.Rows) != 0 {
		t.Errorf("rows = %d, want 0", len(table.Rows))
	}
}

func TestCSVReadMissingFile(t *testing.T) {
	block := compileKind(t, "csv.read", `{"path": "missing.csv"}`, CompileContext{})
	err := runFails(t, block, &Env{FilesDir: t.TempDir()})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want os.ErrNotExist", err)
	}
	assertErrorContains(t, err, `"missing.csv"`)
}

func TestCSVReadOptionProblems(t *testing.T) {
	tests := []struct{ options, option, text string }{
		{`{"path": "a.csv", "delimiter": ",,"}`, "delimiter", "one character"},
		{`{"path": "a.csv", "delimiter": "\""}`, "delimiter", "cannot be"},
		{`{"path": "a.csv", "delimiter": "\n"}`, "delimiter", "cannot be"},
		{`{"path": "a.csv", "delimiter": 5}`, "delimiter", "must be text"},
		{`{"path": "a.csv", "header": "yes"}`, "header", "true or false"},
		{`{"path": 3}`, "path", "must be text"},
		{`{"path": ""}`, "path", "must not be empty"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "csv.read", tt.options, CompileContext{})
		if !hasProblem(problems, tt.option, tt.text) {
			t.Errorf("%s: problems = %v, want %s: %s", tt.options, problems, tt.option, tt.text)
		}
	}
}

func TestCSVReadCancelled(t *testing.T) {
	block := compileKind(t, "csv.read", `{"path": "birdstrikes.csv"}`, CompileContext{})
	_, err := block.Run(cancelledContext(), &Env{FilesDir: examplesDir}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestCSVReadSeattleWeather(t *testing.T) {
	block := compileKind(t, "csv.read", `{"path": "seattle-weather.csv"}`, CompileContext{})
	table := runBlock(t, block, &Env{FilesDir: examplesDir})
	if len(table.Rows) != 1461 {
		t.Errorf("rows = %d, want 1461", len(table.Rows))
	}
	assertColumns(t, table, "date", "precipitation", "temp_max", "temp_min", "wind", "weather")
	first := table.Rows[0]
	if got, ok := first["date"].(time.Time); !ok || !got.Equal(date(2012, 1, 1)) || got.Location() != time.UTC {
		t.Errorf("date = %#v, want 2012-01-01 UTC", first["date"])
	}
	for _, row := range table.Rows {
		if _, ok := row["precipitation"].(float64); !ok {
			t.Fatalf("precipitation = %#v, want float64", row["precipitation"])
		}
		if _, ok := row["weather"].(string); !ok {
			t.Fatalf("weather = %#v, want string", row["weather"])
		}
	}
	if first["weather"] != "drizzle" {
		t.Errorf("weather = %#v, want drizzle", first["weather"])
	}
}

func TestCSVReadBirdstrikes(t *testing.T) {
	block := compileKind(t, "csv.read", `{"path": "birdstrikes.csv"}`, CompileContext{})
	table := runBlock(t, block, &Env{FilesDir: examplesDir})
	if len(table.Rows) != 10000 {
		t.Errorf("rows = %d, want 10000", len(table.Rows))
	}
	nulls := 0
	for _, row := range table.Rows {
		if _, ok := row["Cost Total $"].(int64); !ok {
			t.Fatalf("Cost Total $ = %#v, want int64", row["Cost Total $"])
		}
		switch speed := row["Speed IAS in knots"].(type) {
		case nil:
			nulls++
		case int64:
		default:
			t.Fatalf("Speed IAS in knots = %#v, want int64 or nil", speed)
		}
	}
	// The file has 2836 empty cells in this column (counted with
	// Python's csv module).
	if nulls != 2836 {
		t.Errorf("null speeds = %d, want 2836", nulls)
	}
	if _, ok := table.Rows[0]["Flight Date"].(time.Time); !ok {
		t.Errorf("Flight Date = %#v, want time.Time", table.Rows[0]["Flight Date"])
	}
}

func TestCSVReadMalformedHeader(t *testing.T) {
	_, err := readCSVText(t, "a,\"b\nc\n", "")
	if err == nil {
		t.Fatal("expected an error")
	}
	assertErrorContains(t, err, "header", "line 1")
}

func TestCSVReadByteOrderMarkWithoutHeader(t *testing.T) {
	table, err := readCSVText(t, "\uFEFF1,2\n3,4\n", `{"header": false}`)
	if err != nil {
		t.Fatal(err)
	}
	assertValues(t, table, "c1", int64(1), int64(3))
}
