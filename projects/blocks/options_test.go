package blocks

import (
	"encoding/json"
	"testing"
)

func TestOptionErrorFormat(t *testing.T) {
	err := OptionError{Option: "rows", Message: "must be a non-negative integer"}
	if got := err.Error(); got != "rows: must be a non-negative integer" {
		t.Errorf("Error() = %q", got)
	}
	if got := (OptionError{Message: "no option"}).Error(); got != "no option" {
		t.Errorf("Error() without option = %q", got)
	}
}

func TestOptionsAllProblemsAtOnce(t *testing.T) {
	problems := compileFails(t, "csv.read", `{"path": "../x.csv", "delimiter": ";;", "header": "yes", "colour": 1}`,
		CompileContext{})
	for _, option := range []string{"path", "delimiter", "header", "colour"} {
		if !hasProblem(problems, option, "") {
			t.Errorf("problems %v do not name %s", problems, option)
		}
	}
}

func TestOptionsMissingRequired(t *testing.T) {
	tests := []struct{ typ, option string }{
		{"csv.read", "path"},
		{"json.read", "path"},
		{"inline", "rows"},
		{"filter", "where"},
		{"compute", "fields"},
		{"join", "on"},
		{"sort", "by"},
		{"limit", "rows"},
		{"assert", "where"},
		{"delay", "seconds"},
		{"csv.write", "path"},
		{"json.write", "path"},
		{"select", "fields"},
		{"aggregate", "aggregates"},
	}
	for _, tt := range tests {
		problems := compileFails(t, tt.typ, `{}`, CompileContext{})
		if !hasProblem(problems, tt.option, "missing") {
			t.Errorf("%s: problems %v do not report %s missing", tt.typ, problems, tt.option)
		}
	}
}

func TestOptionsUnknownKeyListsValid(t *testing.T) {
	problems := compileFails(t, "filter", `{"wher": "x > 1"}`, CompileContext{})
	if !hasProblem(problems, "wher", "valid options are where") {
		t.Errorf("problems = %v", problems)
	}
	if !hasProblem(problems, "where", "missing") {
		t.Errorf("problems = %v", problems)
	}
}

func TestOptionsLimitRowsValues(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  int64
		valid bool
	}{
		{"json number", json.Number("10"), 10, true},
		{"zero", json.Number("0"), 0, true},
		{"float64 from YAML", float64(7), 7, true},
		{"int from Go", 3, 3, true},
		{"int64", int64(4), 4, true},
		{"numeric text", "12", 12, true},
		{"negative", json.Number("-1"), 0, false},
		{"fraction", json.Number("1.5"), 0, false},
		{"float64 fraction", 2.5, 0, false},
		{"text", "x", 0, false},
		{"boolean", true, 0, false},
		{"array", []any{json.Number("1")}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block, problems := limitKind.Compile(map[string]any{"rows": tt.value}, CompileContext{})
			if !tt.valid {
				if !hasProblem(problems, "rows", "must be a non-negative integer, got") {
					t.Errorf("problems = %v", problems)
				}
				return
			}
			if len(problems) > 0 {
				t.Fatalf("problems = %v", problems)
			}
			if got := block.(*limitBlock).rows; got != tt.want {
				t.Errorf("rows = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOptionsMessageQuotesText(t *testing.T) {
	problems := compileFails(t, "limit", `{"rows": "x"}`, CompileContext{})
	if !hasProblem(problems, "rows", `must be a non-negative integer, got "x"`) {
		t.Errorf("problems = %v", problems)
	}
}

func TestOptionsDeferredPlaceholders(t *testing.T) {
	deferred := CompileContext{Deferred: true}
	compileKind(t, "limit", `{"rows": "${n}"}`, deferred)
	compileKind(t, "delay", `{"seconds": "${wait}"}`, deferred)
	compileKind(t, "csv.read", `{"path": "x.csv", "header": "${header}", "delimiter": "${d}"}`, deferred)
	compileKind(t, "join", `{"type": "${kind}", "on": {"a": "b"}}`, deferred)

	problems := compileFails(t, "limit", `{"rows": "${n}"}`, CompileContext{})
	if !hasProblem(problems, "rows", "non-negative integer") {
		t.Errorf("without Deferred, problems = %v", problems)
	}
}

func TestOptionsNamesItems(t *testing.T) {
	problems := compileFails(t, "select", `{"fields": ["a", "", 3, "a"]}`, CompileContext{})
	if !hasProblem(problems, "fields[1]", "must not be empty") {
		t.Errorf("problems = %v", problems)
	}
	if !hasProblem(problems, "fields[2]", "must be a field name, got 3") {
		t.Errorf("problems = %v", problems)
	}
	if !hasProblem(problems, "fields[3]", `repeats the field "a"`) {
		t.Errorf("problems = %v", problems)
	}
}

func TestOptionsNullCountsAsMissing(t *testing.T) {
	problems := compileFails(t, "filter", `{"where": null}`, CompileContext{})
	if !hasProblem(problems, "where", "missing") {
		t.Errorf("problems = %v", problems)
	}
}
