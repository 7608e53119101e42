package projects

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func weatherProject(t *testing.T) *Project {
	return mustProject(t, `{"name": "w", "parameters": [
	  {"name": "weather", "type": "choice", "options": ["sun", "rain"], "default": "rain"},
	  {"name": "year", "type": "integer", "min": 2012, "max": 2015, "required": true},
	  {"name": "ratio", "type": "number"},
	  {"name": "wet", "type": "boolean"},
	  {"name": "day", "type": "date"},
	  {"name": "label", "type": "text", "maxLength": 3, "pattern": "^[a-z]*$"},
	  {"name": "file", "type": "file"}],
	  "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`)
}

func TestBindConvertsTypes(t *testing.T) {
	p := weatherProject(t)
	typed, errs := p.Bind("parameters", map[string]any{
		"year": json.Number("2014"), "ratio": "0.5", "wet": false, "day": "2014-03-01", "label": "", "file": "a/b.csv",
	}, nil)
	if len(errs) > 0 {
		t.Fatalf("Bind errors: %+v", errs)
	}
	want := map[string]any{
		"weather": "rain", "year": int64(2014), "ratio": 0.5, "wet": false,
		"day": time.Date(2014, 3, 1, 0, 0, 0, 0, time.UTC), "label": "", "file": "a/b.csv",
	}
	for name, w := range want {
		if got := typed[name]; got != w {
			t.Errorf("%s = %#v, want %#v", name, got, w)
		}
	}
}

func TestBindPrefersRequestOverCurrent(t *testing.T) {
	p := weatherProject(t)
	typed, errs := p.Bind("parameters", map[string]any{"year": 2013.0}, map[string]any{"year": json.Number("2014"), "weather": "sun"})
	if len(errs) > 0 {
		t.Fatalf("Bind errors: %+v", errs)
	}
	if typed["year"] != int64(2013) {
		t.Errorf("year = %v, want the request's 2013", typed["year"])
	}
	if typed["weather"] != "sun" {
		t.Errorf("weather = %v, want the current value sun", typed["weather"])
	}
}

func TestBindReportsEveryProblem(t *testing.T) {
	p := weatherProject(t)
	_, errs := p.Bind("parameters", map[string]any{
		"weather": "hail", "ratio": "lots", "wet": "yes", "day": "03/01/2014",
		"label": "ABCD", "file": "../x", "colour": "red",
	}, nil)
	fields := map[string]bool{}
	for _, e := range errs {
		fields[e.Field] = true
	}
	for _, f := range []string{"weather", "year", "ratio", "wet", "day", "label", "file", "colour"} {
		if !fields["parameters."+f] {
			t.Errorf("no error for parameters.%s; got %+v", f, errs)
		}
	}
}

func TestBindChecksRange(t *testing.T) {
	p := weatherProject(t)
	for _, year := range []any{json.Number("2011"), json.Number("2016"), json.Number("2014.5"), "x", json.Number("1e400")} {
		if _, errs := p.Bind("p", map[string]any{"year": year}, nil); len(errs) != 1 || errs[0].Field != "p.year" {
			t.Errorf("year %v: errors %+v, want one for p.year", year, errs)
		}
	}
}

func TestBindAcceptsIntegralFloat(t *testing.T) {
	p := weatherProject(t)
	typed, errs := p.Bind("p", map[string]any{"year": json.Number("2014.0")}, nil)
	if len(errs) > 0 {
		t.Fatalf("Bind errors: %+v", errs)
	}
	if typed["year"] != int64(2014) {
		t.Errorf("year = %#v, want int64 2014", typed["year"])
	}
}

func TestBindRejectsAmbiguousNumbers(t *testing.T) {
	p := mustProject(t, `{"name": "n", "parameters": [{"name": "x", "type": "number"}, {"name": "i", "type": "integer"}],
	  "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`)
	for _, text := range []string{"1_0", "0x10", " 4", "4\n", "Inf", "NaN", "+1", ".5", ""} {
		if _, errs := p.Convert("p", map[string]any{"x": text, "i": text}); len(errs) != 2 {
			t.Errorf("%q: errors %+v, want one for x and one for i", text, errs)
		}
	}
}

func TestErrorsCutLongValues(t *testing.T) {
	p := weatherProject(t)
	long := strings.Repeat("x", 1<<20)
	_, errs := p.Convert("p", map[string]any{"weather": long})
	if len(errs) != 1 {
		t.Fatalf("errors %+v, want one", errs)
	}
	if len(errs[0].Message) > 300 {
		t.Errorf("message is %d bytes long, want it cut", len(errs[0].Message))
	}
}
