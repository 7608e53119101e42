package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostileProject is the project the hostile requests aim at: seattle-weather
// with a text, a file and an integer parameter, a write path built from a
// placeholder and a reading block that takes a file parameter.
const hostileProject = `{
  "name": "hostile",
  "parameters": [
    {"name": "label", "type": "text", "default": "out"},
    {"name": "source", "type": "file", "default": "seattle-weather.csv"},
    {"name": "year", "type": "integer", "min": 2012, "max": 2015, "default": 2014}
  ],
  "blocks": [
    {"name": "load", "type": "csv.read", "options": {"path": "${source}"}},
    {"name": "pick", "type": "filter", "inputs": ["load"], "options": {"where": "year(date) == params.year"}},
    {"name": "save", "type": "csv.write", "inputs": ["pick"], "options": {"path": "${label}.csv"}}
  ],
  "result": "pick"
}`

// bodyRoute is a route that takes a JSON body, with a valid body whose
// every field the table replaces with hostile values.
type bodyRoute struct {
	method, path string
	valid        string
}

var bodyRoutes = []bodyRoute{
	{"POST", "/api/v1/projects", `{"name": "other", "description": "d", "timeout": "1m",
		"parameters": [{"name": "n", "type": "integer", "min": 1, "max": 9, "default": 2, "required": false,
			"minLength": 1, "maxLength": 3, "pattern": "x", "options": null}],
		"blocks": [{"name": "rows", "type": "inline", "inputs": [], "options": {"rows": [{"a": 1}]}}],
		"result": "rows", "values": {"n": 3}}`},
	{"PUT", "/api/v1/projects/hostile", hostileProject},
	{"PATCH", "/api/v1/projects/hostile/parameters", `{"label": "x", "year": 2013}`},
	{"POST", "/api/v1/projects/hostile/validate", `{"parameters": {"label": "x", "year": 2013}}`},
	{"POST", "/api/v1/projects/hostile/execute", `{"blocks": ["pick"], "cancelExisting": false, "timeout": "30s"}`},
	{"POST", "/api/v1/projects/hostile/lambda", `{"parameters": {"label": "x", "source": "seattle-weather.csv", "year": 2013},
		"blocks": ["pick"], "timeout": "30s", "wait": "10ms", "deleteExecutionOnFinish": true, "idempotencyKey": "k"}`},
	{"POST", "/api/v1/projects/hostile/lambda/batch", `{"items": [{"parameters": {"label": "x", "year": 2013}}],
		"blocks": ["pick"], "timeout": "30s", "wait": "10ms", "deleteExecutionOnFinish": true}`},
	{"POST", "/api/v1/jobs/JOB/stop", `{"reason": "r", "by": "b"}`},
	{"PATCH", "/api/v1/settings", `{"concurrentJobs": 1, "queueLimit": 10000}`},
	{"POST", "/hostile/w/execute", `{"blocks": ["pick"], "refreshFromSource": false, "cancelExisting": false}`},
	{"POST", "/hostile/w/lambdaexecute", `{"blocks": ["pick"], "deleteExecutionOnFinish": true, "refreshFromSource": false,
		"cancelExisting": false, "params": {"waitForIdle": false, "updates": [{"name": "label", "value": "x", "formDataKey": "f"}]}}`},
	{"POST", "/hostile/w/lambda/execute", `{"params": {"updates": [{"name": "year", "value": 2013}]}}`},
	{"POST", "/hostile/w/updateparams", `{"waitForIdle": false, "updates": [{"name": "label", "value": "x"}]}`},
}

// hostileLeaves are the values that replace each field of a valid body in
// turn.
var hostileLeaves = []string{
	`null`, `1e400`, `-1e400`, `18446744073709551616`, `-9223372036854775809`, `0.5`, `-1`, `""`,
	`"\u0000"`, `"\ud800"`, "\"\xff\xfe\"", `"../../../../etc/passwd"`, `"/etc/passwd"`, `true`, `[]`, `{}`,
	`[[[[[[[[[[]]]]]]]]]]`, `"${label}"`, `"` + strings.Repeat("x", 70<<10) + `"`,
}

// hostileBodies are whole bodies sent to every body route.
var hostileBodies = []string{
	``, `{`, `{"a":`, `}`, `null`, `[]`, `"text"`, `42`, `1e400`, `true`,
	`{} {}`, `{}x`, `{"name": "a", "name": "b"}`, `{"unknownField": 1}`,
	strings.Repeat("[", 100000), strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000),
	"\xff\xfe\xfd", "{\"name\": \"\xff\"}", "\x00\x00\x00\x00", `{"blocks": 18446744073709551616}`,
	`{"parameters": {"year": 1e400}}`, `{"parameters": {"year": 18446744073709551616}}`,
	`{"items": [` + strings.Repeat(`{},`, 5000) + `{}]}`,
}

// hostileContentTypes are sent with a valid body.
var hostileContentTypes = []string{
	"text/plain", "application/xml", "multipart/form-data", "multipart/form-data; boundary=x",
	"application/x-www-form-urlencoded", "application/json; charset=latin1", "image/png", ";;;",
}

// hostileClient sends raw requests and checks each response.
type hostileClient struct {
	t    *testing.T
	s    *instance
	sent int
}

// send sends one request and checks that the status is below 500 and,
// when it is an error, in the route's error shape. It returns the status.
func (h *hostileClient) send(method, path, contentType string, body []byte, header http.Header) int {
	h.t.Helper()
	h.sent++
	req, err := http.NewRequest(method, h.s.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	h.checkAnswer(method, req.URL.Path, body, resp, data)
	return resp.StatusCode
}

func (h *hostileClient) checkAnswer(method, path string, body []byte, resp *http.Response, data []byte) {
	h.t.Helper()
	shown := string(body)
	if len(shown) > 120 {
		shown = shown[:120] + "..."
	}
	if resp.StatusCode >= 500 {
		h.t.Errorf("%s %s with body %q: status %d, want below 500; body %s", method, path, shown, resp.StatusCode, data)
		return
	}
	if resp.StatusCode < 400 || resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
		return
	}
	if workflowPath(path) {
		var e struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		if json.Unmarshal(data, &e) != nil || e.ErrorType == "" || e.ErrorMessage == "" {
			h.t.Errorf("%s %s with body %q: status %d with %s, want {errorType, errorMessage}", method, path, shown, resp.StatusCode, data)
		}
		return
	}
	var p problem
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/problem+json") || json.Unmarshal(data, &p) != nil || p.Code == "" || p.Status != resp.StatusCode {
		h.t.Errorf("%s %s with body %q: status %d, Content-Type %q, body %s; want a problem document",
			method, path, shown, resp.StatusCode, ct, data)
	}
}

func workflowPath(path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	return len(parts) > 1 && parts[0] != "api" && (parts[1] == "w" || parts[1] == "instances")
}

// leafVariants returns body with each value inside it replaced, one at a
// time, by each of leaves.
func leafVariants(t *testing.T, body string, leaves []string) []string {
	t.Helper()
	var root any
	if err := json.Unmarshal([]byte(body), &root); err != nil {
		t.Fatalf("valid body %s: %v", body, err)
	}
	var variants []string
	var walk func(v any, replace func(string) string)
	walk = func(v any, replace func(string) string) {
		for _, leaf := range leaves {
			variants = append(variants, replace(leaf))
		}
		switch x := v.(type) {
		case map[string]any:
			for k, item := range x {
				walk(item, func(leaf string) string {
					x[k] = json.RawMessage(leaf)
					defer func() { x[k] = item }()
					return replace(leaf)
				})
			}
		case []any:
			for i, item := range x {
				walk(item, func(leaf string) string {
					x[i] = json.RawMessage(leaf)
					defer func() { x[i] = item }()
					return replace(leaf)
				})
			}
		}
	}
	walk(root, func(leaf string) string {
		if leaf == "" {
			return ""
		}
		data, err := json.Marshal(root)
		if err != nil {
			// A leaf that is not JSON, such as invalid UTF-8, is spliced
			// in as raw bytes.
			return leaf
		}
		return string(data)
	})
	return variants
}

// TestHostileRequestsGet4xx sends malformed, oversize and malicious
// requests to every route of a real server. None may get a 5xx, every
// error must be in the route's error shape, and afterwards the server
// must still run jobs.
func TestHostileRequestsGet4xx(t *testing.T) {
	if testing.Short() {
		t.Skip("sends thousands of requests")
	}
	parent := t.TempDir()
	dataDir := filepath.Join(parent, "data")
	s := startServer(t, dataDir, "--max-body-bytes", "1048576")
	expectStatus(t, s.do("POST", "/api/v1/projects", hostileProject, nil), http.StatusCreated)
	h := &hostileClient{t: t, s: s}
	done := s.execute("hostile", nil)
	s.waitFinal(done.ID)

	for _, route := range bodyRoutes {
		path := strings.Replace(route.path, "JOB", done.ID, 1)
		for _, body := range leafVariants(t, route.valid, hostileLeaves) {
			h.send(route.method, path, "application/json", []byte(body), nil)
		}
		for _, body := range hostileBodies {
			h.send(route.method, path, "application/json", []byte(body), nil)
		}
		for _, ct := range hostileContentTypes {
			h.send(route.method, path, ct, []byte(route.valid), nil)
		}
		oversize := append([]byte(`{"x": "`), bytes.Repeat([]byte("a"), 2<<20)...)
		if status := h.send(route.method, path, "application/json", append(oversize, `"}`...), nil); status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s with a 2 MiB body: status %d, want 413", route.method, path, status)
		}
		// Restore the project, which the PUT and PATCH variants change.
		s.do("PUT", "/api/v1/projects/hostile", hostileProject, nil)
	}
	sendHostilePaths(t, h, done.ID)
	sendHostileMethods(t, h)
	checkStillServing(t, s, parent)
	t.Logf("%d hostile requests sent, none answered 5xx", h.sent)
}

// sendHostilePaths sends path traversal and malformed ids in every path
// parameter, and oversize headers.
func sendHostilePaths(t *testing.T, h *hostileClient, jobID string) {
	traversals := []string{
		"..", "../..", "%2e%2e", "%2e%2e%2f%2e%2e%2flambdaflow.db", "..%2flambdaflow.db", "..%5c..%5clambdaflow.db",
		"%00", "%ff%fe", strings.Repeat("a", 8000), "a%2fb", "%252e%252e",
	}
	for _, bad := range traversals {
		for _, path := range []string{
			"/api/v1/jobs/" + jobID + "/outputs/" + bad,
			"/api/v1/jobs/" + jobID + "/outputs/../../" + bad,
			"/api/v1/jobs/" + bad,
			"/api/v1/jobs/" + bad + "/definition",
			"/api/v1/jobs/" + bad + "/outputs/lambdaflow.db",
			"/api/v1/projects/" + bad,
			"/api/v1/instances/" + bad,
			"/" + bad + "/w/param",
			"/hostile/w/param/" + bad,
			"/hostile/w/job/" + bad + "/state",
			"/hostile/instances/" + bad + "/w/job/" + bad + "/state",
		} {
			h.send("GET", path, "", nil, nil)
		}
	}
	for _, query := range []string{"?limit=18446744073709551616", "?limit=-1", "?offset=1e400", "?state=%ff", "?project=..%2f.."} {
		h.send("GET", "/api/v1/jobs"+query, "", nil, nil)
	}
	status := h.send("GET", "/api/v1/projects", "", nil, http.Header{"X-Big": {strings.Repeat("b", 100<<10)}})
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB header: status %d, want 431", status)
	}
}

// sendHostileMethods sends each route's path with every method it does
// not take.
func sendHostileMethods(t *testing.T, h *hostileClient) {
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"}
	fill := strings.NewReplacer(":project", "hostile", ":instance", "none", ":job", "none", ":name", "label", "*file", "x.csv")
	registered := map[string]bool{}
	for route := range routeRoles {
		registered[fill.Replace(route)] = true
	}
	for route := range routeRoles {
		_, path, _ := strings.Cut(fill.Replace(route), " ")
		for _, m := range methods {
			if registered[m+" "+path] {
				continue
			}
			status := h.send(m, path, "application/json", []byte(`{}`), nil)
			if status != http.StatusMethodNotAllowed && status != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 405 or 404", m, path, status)
			}
		}
	}
}

// checkStillServing checks that /healthz returns 200, the server runs a real
// job, and wrote nothing outside its data directory.
func checkStillServing(t *testing.T, s *instance, parent string) {
	t.Helper()
	expectStatus(t, s.do("GET", "/healthz", nil, nil), http.StatusOK)
	s.do("PUT", "/api/v1/projects/hostile", hostileProject, nil)
	if j := s.waitFinal(s.execute("hostile", nil).ID); j.State != "COMPLETED" {
		t.Errorf("job after the hostile requests: state %s, error %+v; want COMPLETED", j.State, j.Error)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"data"}) {
		t.Errorf("the directory around the data directory holds %v, want only data", names)
	}
	for line := range strings.Lines(s.logText()) {
		if strings.Contains(line, "handler panicked") {
			t.Errorf("server log: %s", line)
		}
	}
}

// TestPathParametersStayInside runs jobs whose read and write paths come
// from parameters and placeholders that point outside their directories,
// or through symbolic links that do. No job may read or write outside.
func TestPathParametersStayInside(t *testing.T) {
	parent := t.TempDir()
	dataDir := filepath.Join(parent, "data")
	s := startServer(t, dataDir)
	secret := filepath.Join(parent, "secret.csv")
	if err := os.WriteFile(secret, []byte("date,word\n2014-01-01,TOPSECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := filepath.Join(dataDir, "files")
	if err := os.Symlink(secret, filepath.Join(files, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(parent, filepath.Join(files, "up")); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, s.do("POST", "/api/v1/projects", hostileProject, nil), http.StatusCreated)

	cases := []map[string]any{
		{"source": "../secret.csv"},
		{"source": "/etc/passwd"},
		{"source": "link.csv"},
		{"source": "up/secret.csv"},
		{"source": ".instances/../../secret.csv"},
		{"label": "../../../escaped"},
		{"label": "/tmp/escaped"},
		{"label": "../../../../" + filepath.Base(parent) + "/escaped"},
	}
	for _, params := range cases {
		var j job
		resp := s.do("POST", "/api/v1/projects/hostile/lambda", map[string]any{"parameters": params, "wait": "30s"}, &j)
		switch {
		case resp.StatusCode == http.StatusUnprocessableEntity:
			expectProblemCode(t, resp, "VALIDATION_FAILED")
		case resp.StatusCode == http.StatusOK:
			if j.State != "FAILED" {
				t.Errorf("parameters %v: job %s, want FAILED or a 422", params, j.State)
			}
			if j.Result != nil && strings.Contains(fmt.Sprint(j.Result.Rows), "TOPSECRET") {
				t.Errorf("parameters %v: the job read the file outside the files directory", params)
			}
		default:
			t.Errorf("parameters %v: status %d, want 422 or 200 with a FAILED job", params, resp.StatusCode)
		}
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.Name() != "data" && e.Name() != "secret.csv" {
			t.Errorf("a job wrote %s outside its output directory", e.Name())
		}
	}
	if _, err := os.Stat("/tmp/escaped.csv"); err == nil {
		t.Errorf("a job wrote /tmp/escaped.csv")
	}
}
