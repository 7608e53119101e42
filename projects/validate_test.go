package projects

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustProject(t *testing.T, src string) *Project {
	t.Helper()
	var p Project
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func fieldSet(t *testing.T, p *Project) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, e := range p.Validate() {
		fields[e.Field] = e.Message
	}
	return fields
}

func TestValidateAcceptsExample(t *testing.T) {
	p := mustProject(t, `{"name": "ok", "parameters": [{"name": "w", "type": "choice", "options": ["a", "b"], "default": "a"}],
	  "blocks": [{"name": "load", "type": "csv.read", "options": {"path": "${w}/data.csv"}},
	             {"name": "pick", "type": "filter", "inputs": ["load"], "options": {"where": "x == params.w"}}],
	  "result": "pick"}`)
	if errs := p.Validate(); len(errs) != 0 {
		t.Fatalf("Validate() = %+v, want no errors", errs)
	}
}

func TestValidateNamesEachProblem(t *testing.T) {
	cases := []struct {
		name  string
		def   string
		field string
	}{
		{"bad project name", `{"name": "1x", "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "name"},
		{"reserved project name", `{"name": "admin", "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "name"},
		{"no blocks", `{"name": "x", "blocks": []}`, "blocks"},
		{"unknown type", `{"name": "x", "blocks": [{"name": "a", "type": "nope"}]}`, "blocks[0].type"},
		{"unknown input", `{"name": "x", "blocks": [{"name": "a", "type": "limit", "inputs": ["b"], "options": {"rows": 1}}]}`, "blocks[0].inputs[0]"},
		{"missing input", `{"name": "x", "blocks": [{"name": "a", "type": "limit", "options": {"rows": 1}}]}`, "blocks[0].inputs"},
		{"duplicate block", `{"name": "x", "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}, {"name": "a", "type": "inline", "options": {"rows": []}}]}`, "blocks[1].name"},
		{"self cycle", `{"name": "x", "blocks": [{"name": "a", "type": "limit", "inputs": ["a"], "options": {"rows": 1}}]}`, "blocks[0].inputs"},
		{"option of wrong type", `{"name": "x", "blocks": [{"name": "a", "type": "inline", "options": {"rows": "many"}}]}`, "blocks[0].options.rows"},
		{"expression syntax", `{"name": "x", "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}, {"name": "f", "type": "filter", "inputs": ["a"], "options": {"where": "x >"}}]}`, "blocks[1].options.where"},
		{"placeholder without parameter", `{"name": "x", "blocks": [{"name": "a", "type": "csv.read", "options": {"path": "${p}.csv"}}]}`, "blocks[0].options.path"},
		{"path leaves files directory", `{"name": "x", "blocks": [{"name": "a", "type": "csv.read", "options": {"path": "../x.csv"}}]}`, "blocks[0].options.path"},
		{"result names no block", `{"name": "x", "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}], "result": "b"}`, "result"},
		{"bad timeout", `{"name": "x", "timeout": "soon", "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "timeout"},
		{"unknown parameter type", `{"name": "x", "parameters": [{"name": "p", "type": "colour"}], "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "parameters[0].type"},
		{"choice without options", `{"name": "x", "parameters": [{"name": "p", "type": "choice"}], "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "parameters[0].options"},
		{"default of wrong type", `{"name": "x", "parameters": [{"name": "p", "type": "integer", "default": "ten"}], "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "parameters[0].default"},
		{"min above max", `{"name": "x", "parameters": [{"name": "p", "type": "number", "min": 5, "max": 1}], "blocks": [{"name": "a", "type": "inline", "options": {"rows": []}}]}`, "parameters[0].min"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fields := fieldSet(t, mustProject(t, tc.def))
			if _, ok := fields[tc.field]; !ok {
				t.Fatalf("Validate() names %v, want %s", fields, tc.field)
			}
		})
	}
}

func TestValidateFindsLongCycle(t *testing.T) {
	p := mustProject(t, `{"name": "x", "blocks": [
	  {"name": "a", "type": "limit", "inputs": ["c"], "options": {"rows": 1}},
	  {"name": "b", "type": "limit", "inputs": ["a"], "options": {"rows": 1}},
	  {"name": "c", "type": "limit", "inputs": ["b"], "options": {"rows": 1}}]}`)
	fields := fieldSet(t, p)
	msg, ok := fields["blocks[0].inputs"]
	if !ok {
		t.Fatalf("Validate() names %v, want blocks[0].inputs", fields)
	}
	if !strings.Contains(msg, "a -> c -> b -> a") {
		t.Errorf("cycle message %q does not show the cycle a -> c -> b -> a", msg)
	}
}
