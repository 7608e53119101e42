package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// slowReader returns its data in small pieces, so that a request sent
// with it has no Content-Length and goes out chunked.
type slowReader struct {
	data []byte
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 4096)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// sendBody posts body to path, chunked when chunked is set and else with
// a Content-Length.
func sendBody(t *testing.T, s *instance, path string, body string, chunked bool) (*http.Response, []byte) {
	t.Helper()
	var reader io.Reader = strings.NewReader(body)
	if chunked {
		reader = &slowReader{data: []byte(body)}
	}
	req, err := http.NewRequest("POST", s.base+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func TestOversizeBodiesGet413(t *testing.T) {
	s := startServer(t, t.TempDir(), "--max-body-bytes", "2000")
	big := `{"parameters": {"weather": "` + strings.Repeat("a", 5000) + `"}}`
	for _, chunked := range []bool{false, true} {
		for _, path := range []string{"/api/v1/projects/seattle-weather/lambda", "/api/v1/projects", "/api/v1/jobs/x/stop"} {
			resp, data := sendBody(t, s, path, big, chunked)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("POST %s (chunked %v): status %d, want 413; body %s", path, chunked, resp.StatusCode, data)
			}
			var p problem
			if err := json.Unmarshal(data, &p); err != nil || p.Code != "PAYLOAD_TOO_LARGE" {
				t.Errorf("POST %s (chunked %v): body %s, want a PAYLOAD_TOO_LARGE problem", path, chunked, data)
			}
			if !strings.Contains(p.Detail, "2000 bytes") {
				t.Errorf("POST %s: detail %q does not name the 2000-byte limit", path, p.Detail)
			}
		}
		resp, data := sendBody(t, s, "/seattle-weather/w/execute", big, chunked)
		var e struct {
			ErrorType string `json:"errorType"`
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(data, &e) != nil || e.ErrorType != "PAYLOAD_TOO_LARGE" {
			t.Errorf("POST /seattle-weather/w/execute (chunked %v): status %d, body %s; want 413 PAYLOAD_TOO_LARGE",
				chunked, resp.StatusCode, data)
		}
	}
	expectStatus(t, s.do("GET", "/healthz", nil, nil), http.StatusOK)
}

func TestJobTimeoutDefaultAndMax(t *testing.T) {
	s := startServer(t, t.TempDir(), "--job-timeout", "90s", "--max-job-timeout", "2m")
	var j struct {
		ID        string `json:"id"`
		TimeoutMs int64  `json:"timeoutMs"`
	}
	expectStatus(t, s.do("POST", "/api/v1/projects/seattle-weather/execute", nil, &j), http.StatusAccepted)
	if j.TimeoutMs != (90 * time.Second).Milliseconds() {
		t.Errorf("timeoutMs = %d without a timeout, want the default 90000", j.TimeoutMs)
	}

	for _, path := range []string{"/api/v1/projects/seattle-weather/execute", "/api/v1/projects/seattle-weather/lambda"} {
		resp := s.do("POST", path, map[string]any{"timeout": "3m"}, nil)
		expectStatus(t, resp, http.StatusUnprocessableEntity)
		expectFields(t, readProblem(t, resp), "timeout")
	}
	resp := s.do("POST", "/api/v1/projects/seattle-weather/lambda/batch",
		map[string]any{"timeout": "1h", "items": []any{map[string]any{}}}, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)

	expectStatus(t, s.do("POST", "/api/v1/projects/seattle-weather/execute", map[string]any{"timeout": "2m"}, nil), http.StatusAccepted)
}

func TestTextParameterLengthLimit(t *testing.T) {
	s := startServer(t, t.TempDir())
	def := `{"name": "echo", "parameters": [{"name": "s", "type": "text"}],
	  "blocks": [{"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}}]}`
	expectStatus(t, s.do("POST", "/api/v1/projects", def, nil), http.StatusCreated)
	resp := s.do("POST", "/api/v1/projects/echo/lambda", map[string]any{"parameters": map[string]any{"s": strings.Repeat("x", 70<<10)}}, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	expectFields(t, readProblem(t, resp), "parameters.s")
	ok := s.do("POST", "/api/v1/projects/echo/lambda", map[string]any{"parameters": map[string]any{"s": strings.Repeat("x", 60<<10)}}, nil)
	expectStatus(t, ok, http.StatusAccepted)
}

func TestCancelExistingKeepsJobOnBadTimeout(t *testing.T) {
	s := startServer(t, t.TempDir(), "--job-timeout", "1m", "--max-job-timeout", "2m")
	s.createSleeper("sleeper", 30)
	running := s.execute("sleeper", nil)
	s.waitState(running.ID, "RUNNING")

	resp := s.do("POST", "/api/v1/projects/sleeper/execute", map[string]any{"cancelExisting": true, "timeout": "3m"}, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	expectFields(t, readProblem(t, resp), "timeout")
	if got := s.job(running.ID); got.State != "RUNNING" {
		t.Errorf("the existing job is %s after a rejected cancelExisting, want RUNNING", got.State)
	}
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+running.ID+"/stop", nil, nil), http.StatusOK)
}
