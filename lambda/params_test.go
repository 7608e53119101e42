package lambda_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// typesProject declares one parameter of each kind of check and echoes
// the values it runs with as its result row.
const typesProject = `{"name": "types", "parameters": [
  {"name": "year", "type": "integer", "min": 2012, "max": 2015, "required": true},
  {"name": "ratio", "type": "number", "default": 7},
  {"name": "wet", "type": "boolean", "default": true},
  {"name": "day", "type": "date", "default": "2014-01-01"},
  {"name": "weather", "type": "choice", "options": ["sun", "rain"], "default": "rain"},
  {"name": "label", "type": "text", "default": "seven", "maxLength": 200}],
  "blocks": [
    {"name": "one", "type": "inline", "options": {"rows": [{"k": 1}]}},
    {"name": "echo", "type": "compute", "inputs": ["one"], "options": {"fields": {
      "year": "params.year", "ratio": "params.ratio", "wet": "params.wet", "day": "params.day",
      "weather": "params.weather", "label": "params.label", "size": "len(params.label)"}}},
    {"name": "save", "type": "csv.write", "inputs": ["echo"], "options": {"path": "out-${label}.csv"}}],
  "result": "echo"}`

func TestBadParametersAre422(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, typesProject)
	tests := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"unknown", map[string]any{"parameters": map[string]any{"year": 2014, "colour": "red"}}, []string{"parameters.colour"}},
		{"missing required", map[string]any{"parameters": map[string]any{}}, []string{"parameters.year"}},
		{"wrong type", map[string]any{"parameters": map[string]any{"year": 2014, "wet": "yes", "ratio": []any{1}}}, []string{"parameters.wet", "parameters.ratio"}},
		{"out of range", map[string]any{"parameters": map[string]any{"year": 2016}}, []string{"parameters.year"}},
		{"fraction", map[string]any{"parameters": map[string]any{"year": 2014.5}}, []string{"parameters.year"}},
		{"choice", map[string]any{"parameters": map[string]any{"year": 2014, "weather": "hail"}}, []string{"parameters.weather"}},
		{"date", map[string]any{"parameters": map[string]any{"year": 2014, "day": "01/03/2014"}}, []string{"parameters.day"}},
		{"all at once", map[string]any{"parameters": map[string]any{"year": "x", "weather": "hail", "day": "never"}},
			[]string{"parameters.year", "parameters.weather", "parameters.day"}},
		{"options", map[string]any{"parameters": map[string]any{"year": 2014}, "timeout": "soon", "wait": "-1s", "blocks": []string{"nope"}},
			[]string{"timeout", "wait", "blocks[0]"}},
		{"idempotency key", map[string]any{"parameters": map[string]any{"year": 2014}, "idempotencyKey": strings.Repeat("k", 256)},
			[]string{"idempotencyKey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := b.post(t, "/api/v1/projects/types/lambda", tt.body)
			if res.status != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422; body %s", res.status, res.body)
			}
			var problem httpapi.Problem
			res.decode(t, &problem)
			if problem.Code != httpapi.CodeValidationFailed {
				t.Errorf("code = %s, want %s", problem.Code, httpapi.CodeValidationFailed)
			}
			got := map[string]string{}
			for _, e := range problem.Errors {
				got[e.Field] = e.Message
			}
			for _, field := range tt.fields {
				if got[field] == "" {
					t.Errorf("no error for %s; got %+v", field, problem.Errors)
				}
			}
			if len(problem.Errors) != len(tt.fields) {
				t.Errorf("%d errors, want %d: %+v", len(problem.Errors), len(tt.fields), problem.Errors)
			}
		})
	}

	var list pool.JobList
	b.get(t, "/api/v1/jobs?project=types").decode(t, &list)
	if list.Total != 0 {
		t.Errorf("%d jobs were queued by invalid requests, want 0", list.Total)
	}
}

func TestZeroValuesReachWorkflow(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, typesProject)
	job := b.invoke(t, "types", map[string]any{
		"parameters": map[string]any{"year": "2012", "ratio": 0, "wet": false, "label": ""}, "wait": "30s",
	}, http.StatusOK)
	if job.State != pool.StateCompleted {
		t.Fatalf("state = %s: %+v", job.State, job.Error)
	}
	row := job.Result.Rows[0]
	want := map[string]any{"year": 2012.0, "ratio": 0.0, "wet": false, "label": "", "size": 0.0, "day": "2014-01-01", "weather": "rain"}
	for field, w := range want {
		if row[field] != w {
			t.Errorf("%s = %#v, want %#v", field, row[field], w)
		}
	}
}

func TestParameterStringsArePlainData(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, typesProject)
	labels := []string{
		`say "hi" it's`,
		`back\slash\\`,
		"two\nlines",
		"${year}",
		"${label}",
		`" + params.weather + "`,
		`x") || true || ("`,
		`$env["k"]`,
		"len(params.label) > 0 && 1/0",
	}
	for _, label := range labels {
		job := b.invoke(t, "types", map[string]any{"parameters": map[string]any{"year": 2014, "label": label}, "wait": "30s"}, http.StatusOK)
		if job.State != pool.StateCompleted {
			t.Errorf("label %q: state %s: %+v", label, job.State, job.Error)
			continue
		}
		row := job.Result.Rows[0]
		if row["label"] != label {
			t.Errorf("label %q reached the workflow as %#v", label, row["label"])
		}
		if size := fmt.Sprint(row["size"]); size != fmt.Sprint(utf8.RuneCountInString(label)) {
			t.Errorf("label %q: len = %s, want %d", label, size, utf8.RuneCountInString(label))
		}
		if len(job.Outputs) != 1 || job.Outputs[0].Name != "out-"+label+".csv" {
			t.Errorf("label %q: outputs %+v, want out-%s.csv", label, job.Outputs, label)
		}
	}
}

func TestParameterCannotLeaveOutputDirectory(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, typesProject)
	job := b.invoke(t, "types", map[string]any{"parameters": map[string]any{"year": 2014, "label": "/../../escape"}, "wait": "30s"}, http.StatusOK)
	if job.State != pool.StateFailed {
		t.Fatalf("state = %s, want FAILED", job.State)
	}
	if job.Error == nil || job.Error.Block == nil || *job.Error.Block != "save" || !strings.Contains(job.Error.Message, "leaves its directory") {
		t.Errorf("error = %+v, want the save block rejecting a path that leaves its directory", job.Error)
	}
}
