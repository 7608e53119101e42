package projects

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func rulesProject(t *testing.T) *Project {
	return mustProject(t, `{"name": "r", "parameters": [
	  {"name": "n", "type": "number", "min": 0.5, "max": 10},
	  {"name": "i", "type": "integer", "min": 2012.5},
	  {"name": "b", "type": "boolean"},
	  {"name": "d", "type": "date"},
	  {"name": "at", "type": "datetime"},
	  {"name": "c", "type": "choice", "options": ["a, b", "it's", "x|y"]},
	  {"name": "s", "type": "choice", "options": ["sun", "rain"]},
	  {"name": "t", "type": "text", "minLength": 2, "maxLength": 4, "pattern": "^(ab|cd),?[é]*$"},
	  {"name": "f", "type": "file"}],
	  "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`)
}

func TestConvertRejectsBadValues(t *testing.T) {
	p := rulesProject(t)
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"n", json.Number("0.25"), "must be at least 0.5, got 0.25"},
		{"n", json.Number("11"), "must be at most 10, got 11"},
		{"n", "lots", `must be a number, got "lots"`},
		{"n", true, "must be a number, got a boolean"},
		{"i", json.Number("2012"), "must be at least 2012.5, got 2012"},
		{"i", json.Number("2014.5"), `must be an integer, got "2014.5"`},
		{"b", "yes", `must be true or false, got "yes"`},
		{"b", json.Number("1"), "must be a boolean, got the number 1"},
		{"d", "03/01/2014", `must be a date in the form YYYY-MM-DD, got "03/01/2014"`},
		{"d", "2014-02-30", `must be a date in the form YYYY-MM-DD, got "2014-02-30"`},
		{"at", "2014-03-01", "must be an RFC 3339 date-time"},
		{"c", "a", `must be one of a, b, it's, x|y, got "a"`},
		{"s", "hail", `must be one of sun, rain, got "hail"`},
		{"s", nil, "must be a string, got null"},
		{"t", "a", "must be at least 2 characters long, got 1"},
		{"t", "ab,éé", "must be at most 4 characters long, got 5"},
		{"t", "xy", `must match the pattern ^(ab|cd),?[é]*$, got "xy"`},
		{"f", "../x.csv", `must be a relative path inside the files directory, got "../x.csv"`},
		{"f", "/etc/passwd", "must be a relative path inside the files directory"},
		{"colour", "red", `unknown parameter "colour"`},
	}
	for _, tt := range tests {
		_, errs := p.Convert("parameters", map[string]any{tt.name: tt.value})
		if len(errs) != 1 {
			t.Errorf("%s = %#v: errors %+v, want one", tt.name, tt.value, errs)
			continue
		}
		if errs[0].Field != "parameters."+tt.name {
			t.Errorf("%s = %#v: field %q, want parameters.%s", tt.name, tt.value, errs[0].Field, tt.name)
		}
		if !strings.Contains(errs[0].Message, tt.want) {
			t.Errorf("%s = %#v: message %q, want it to contain %q", tt.name, tt.value, errs[0].Message, tt.want)
		}
	}
}

func TestConvertAcceptsGoodValues(t *testing.T) {
	p := rulesProject(t)
	tests := []struct {
		name  string
		value any
		want  any
	}{
		{"n", json.Number("0.5"), 0.5},
		{"n", "4.5", 4.5},
		{"n", json.Number("10"), 10.0},
		{"i", "2013", int64(2013)},
		{"i", 2014.0, int64(2014)},
		{"b", false, false},
		{"b", "TRUE", true},
		{"d", "2014-03-01", time.Date(2014, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"at", "2014-03-01T12:00:00+01:00", time.Date(2014, 3, 1, 11, 0, 0, 0, time.UTC)},
		{"c", "a, b", "a, b"},
		{"c", "it's", "it's"},
		{"c", "x|y", "x|y"},
		{"s", "rain", "rain"},
		{"t", "cd,é", "cd,é"},
		{"f", "dir/in.csv", "dir/in.csv"},
	}
	for _, tt := range tests {
		typed, errs := p.Convert("parameters", map[string]any{tt.name: tt.value})
		if len(errs) != 0 {
			t.Errorf("%s = %#v: errors %+v, want none", tt.name, tt.value, errs)
			continue
		}
		if got := typed[tt.name]; got != tt.want {
			t.Errorf("%s = %#v: converted to %#v, want %#v", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestConvertKeepsZeroValues(t *testing.T) {
	p := mustProject(t, `{"name": "z", "parameters": [
	  {"name": "n", "type": "number", "default": 7},
	  {"name": "i", "type": "integer", "default": 7},
	  {"name": "b", "type": "boolean", "default": true},
	  {"name": "s", "type": "text", "default": "seven"}],
	  "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`)
	typed, errs := p.Bind("parameters", map[string]any{
		"n": json.Number("0"), "i": json.Number("0"), "b": false, "s": "",
	}, map[string]any{"n": json.Number("3"), "b": true, "s": "current"})
	if len(errs) != 0 {
		t.Fatalf("Bind errors: %+v", errs)
	}
	want := map[string]any{"n": 0.0, "i": int64(0), "b": false, "s": ""}
	for name, w := range want {
		if got := typed[name]; got != w {
			t.Errorf("%s = %#v, want %#v", name, got, w)
		}
	}
}

func TestChoiceRuleUsesOneOf(t *testing.T) {
	p := rulesProject(t)
	simple, _ := p.parameter("s")
	if got := simple.rules(); got != "oneof=sun rain" {
		t.Errorf("rules of simple choice = %q, want oneof=sun rain", got)
	}
	odd, _ := p.parameter("c")
	if got := odd.rules(); got != tagChoice {
		t.Errorf("rules of choice with commas = %q, want %s", got, tagChoice)
	}
}
