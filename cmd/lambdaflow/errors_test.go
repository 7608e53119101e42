package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// problem is an RFC 9457 problem document as the API writes it.
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func readProblem(t *testing.T, resp *http.Response) problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decoding problem %q: %v", body, err)
	}
	return p
}

func expectProblemCode(t *testing.T, resp *http.Response, code string) problem {
	t.Helper()
	p := readProblem(t, resp)
	if p.Code != code {
		t.Fatalf("problem code = %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	return p
}

// expectFields fails unless the problem names every field in want.
func expectFields(t *testing.T, p problem, want ...string) {
	t.Helper()
	got := map[string]bool{}
	for _, e := range p.Errors {
		got[e.Field] = true
	}
	for _, f := range want {
		if !got[f] {
			t.Errorf("problem does not name field %s; it names %+v", f, p.Errors)
		}
	}
}

func TestMalformedDefinitionNamesEveryField(t *testing.T) {
	s := startServer(t, t.TempDir())
	def := `{
	  "name": "broken",
	  "parameters": [{"name": "n", "type": "integer"}],
	  "blocks": [
	    {"name": "load", "type": "csv.read", "options": {"path": "../secret.csv"}},
	    {"name": "odd", "type": "no.such.block", "inputs": ["load"]},
	    {"name": "pick", "type": "filter", "inputs": ["missing"], "options": {"where": "n >"}},
	    {"name": "pick", "type": "limit", "inputs": ["load"], "options": {"rows": "many"}},
	    {"name": "a", "type": "limit", "inputs": ["b"], "options": {"rows": 1}},
	    {"name": "b", "type": "limit", "inputs": ["a"], "options": {"rows": 1}},
	    {"name": "save", "type": "csv.write", "inputs": ["load"], "options": {"path": "${nope}.csv"}}
	  ],
	  "result": "nowhere"
	}`
	resp := s.do("POST", "/api/v1/projects", def, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	p := expectProblemCode(t, resp, "VALIDATION_FAILED")
	expectFields(t, p,
		"blocks[0].options.path",
		"blocks[1].type",
		"blocks[2].inputs[0]",
		"blocks[2].options.where",
		"blocks[3].name",
		"blocks[3].options.rows",
		"blocks[4].inputs",
		"blocks[6].options.path",
		"result",
	)
}

func TestBadRequestsGetProblems(t *testing.T) {
	s := startServer(t, t.TempDir())

	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
		fields             []string
	}{
		{"body not JSON", "POST", "/api/v1/projects", `{"name": `, 400, "BAD_REQUEST", nil},
		{"field of wrong type", "POST", "/api/v1/projects", `{"name": 5}`, 400, "BAD_REQUEST", []string{"name"}},
		{"unknown field", "POST", "/api/v1/projects", `{"name": "x", "blockz": []}`, 400, "BAD_REQUEST", []string{"blockz"}},
		{"unknown project", "POST", "/api/v1/projects/nope/execute", nil, 404, "PROJECT_NOT_FOUND", nil},
		{"unknown block to run", "POST", "/api/v1/projects/seattle-weather/execute", `{"blocks": ["nope"]}`, 422, "VALIDATION_FAILED", []string{"blocks[0]"}},
		{"bad timeout", "POST", "/api/v1/projects/seattle-weather/execute", `{"timeout": "soon"}`, 422, "VALIDATION_FAILED", []string{"timeout"}},
		{"choice not in list", "PATCH", "/api/v1/projects/seattle-weather/parameters", `{"weather": "hail", "year": 1999}`, 422, "VALIDATION_FAILED", []string{"values.weather", "values.year"}},
		{"unknown parameter", "PATCH", "/api/v1/projects/seattle-weather/parameters", `{"colour": "red"}`, 422, "VALIDATION_FAILED", []string{"values.colour"}},
		{"slot limit zero", "PATCH", "/api/v1/settings", `{"concurrentJobs": 0}`, 422, "VALIDATION_FAILED", []string{"concurrentJobs"}},
		{"unknown job", "GET", "/api/v1/jobs/0193a5b2-0000-7000-8000-000000000000", nil, 404, "JOB_NOT_FOUND", nil},
		{"unknown route", "GET", "/api/v1/nothing", nil, 404, "NOT_FOUND", nil},
		{"trailing slash", "GET", "/api/v1/projects/", nil, 404, "NOT_FOUND", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.do(tc.method, tc.path, tc.body, nil)
			expectStatus(t, resp, tc.status)
			p := expectProblemCode(t, resp, tc.code)
			expectFields(t, p, tc.fields...)
		})
	}
}

func TestReplaceHonoursIfMatch(t *testing.T) {
	s := startServer(t, t.TempDir())
	var rec map[string]any
	resp := s.do("GET", "/api/v1/projects/seattle-weather", nil, &rec)
	expectStatus(t, resp, http.StatusOK)
	etag := resp.Header.Get("ETag")
	rec["description"] = "changed"

	req := func(match string) *http.Response {
		body, _ := json.Marshal(rec)
		r, _ := http.NewRequest("PUT", s.base+"/api/v1/projects/seattle-weather", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("If-Match", match)
		resp, err := s.client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	expectStatus(t, req(etag), http.StatusOK)
	resp = req(etag)
	expectStatus(t, resp, http.StatusPreconditionFailed)
	expectProblemCode(t, resp, "PRECONDITION_FAILED")
}

func TestConcurrentParameterPatchesSucceed(t *testing.T) {
	s := startServer(t, t.TempDir())

	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.NewReader(fmt.Sprintf(`{"year": %d}`, 2012+i%4))
			req, _ := http.NewRequest("PATCH", s.base+"/api/v1/projects/seattle-weather/parameters", body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := s.client.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, status := range statuses {
		if status != http.StatusOK {
			t.Errorf("PATCH %d without If-Match: status %d, want 200", i, status)
		}
	}
}

func TestDefinitionLimits(t *testing.T) {
	s := startServer(t, t.TempDir())

	blocks := []any{map[string]any{"name": "b0", "type": "inline", "options": map[string]any{"rows": []any{}}}}
	for i := 1; i <= 500; i++ {
		blocks = append(blocks, map[string]any{"name": fmt.Sprintf("b%d", i), "type": "limit",
			"inputs": []any{fmt.Sprintf("b%d", i-1)}, "options": map[string]any{"rows": 1}})
	}
	resp := s.do("POST", "/api/v1/projects", map[string]any{"name": "huge", "blocks": blocks}, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	expectFields(t, expectProblemCode(t, resp, "VALIDATION_FAILED"), "blocks")

	twice := map[string]any{"name": "twice", "blocks": []any{
		map[string]any{"name": "rows", "type": "inline", "options": map[string]any{"rows": []any{}}},
		map[string]any{"name": "a", "type": "csv.write", "inputs": []any{"rows"}, "options": map[string]any{"path": "out.csv"}},
		map[string]any{"name": "b", "type": "json.write", "inputs": []any{"rows"}, "options": map[string]any{"path": "./out.csv"}},
	}}
	resp = s.do("POST", "/api/v1/projects", twice, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	expectFields(t, expectProblemCode(t, resp, "VALIDATION_FAILED"), "blocks[2].options.path")

	nested := strings.Repeat("(", 100000) + "x" + strings.Repeat(")", 100000)
	deep := map[string]any{"name": "deep", "blocks": []any{
		map[string]any{"name": "rows", "type": "inline", "options": map[string]any{"rows": []any{}}},
		map[string]any{"name": "f", "type": "filter", "inputs": []any{"rows"}, "options": map[string]any{"where": nested}},
	}}
	resp = s.do("POST", "/api/v1/projects", deep, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	expectFields(t, expectProblemCode(t, resp, "VALIDATION_FAILED"), "blocks[1].options.where")
}
