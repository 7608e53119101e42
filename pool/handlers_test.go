package pool_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// server serves the pool's endpoints under /api/v1 on a loopback port,
// plus POST /api/v1/test/submit/{lock}, which submits a job the way the
// project handlers do.
func (b *bundle) server(t *testing.T) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.TestMode)
	router := gin.New()
	router.Use(httpapi.Middleware(slog.New(b.logs)))
	router.NoRoute(httpapi.NoRoute)
	api := router.Group("/api/v1")
	b.pool.Register(api)
	api.POST("/test/submit/:lock", httpapi.Handle(func(c *gin.Context) error {
		job, err := b.pool.Submit(c.Request.Context(), pool.Submission{Project: c.Param("lock")})
		if err != nil {
			return pool.SubmitProblem(err)
		}
		c.JSON(http.StatusAccepted, job)
		return nil
	}))
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return srv
}

// call sends a request and returns the status, the headers and the body.
func call(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, reader)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp.StatusCode, resp.Header, data
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}

// expectProblem checks a problem document's status, code and, when field
// is not empty, that it names field.
func expectProblem(t *testing.T, status int, header http.Header, data []byte, wantStatus int, wantCode, field string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status = %d, want %d; body %s", status, wantStatus, data)
		return
	}
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	problem := decode[httpapi.Problem](t, data)
	if problem.Code != wantCode {
		t.Errorf("code = %q, want %q; body %s", problem.Code, wantCode, data)
	}
	if field == "" {
		return
	}
	for _, e := range problem.Errors {
		if e.Field == field {
			return
		}
	}
	t.Errorf("problem names fields %+v, want %q", problem.Errors, field)
}

func TestHandlerGetJob(t *testing.T) {
	b := setup(t)
	srv := b.server(t)
	running := b.submit(t, "x")
	b.awaitRun(t, running.ID)
	blocked := b.submit(t, "x")

	status, _, data := call(t, http.MethodGet, srv.URL+"/api/v1/jobs/"+blocked.ID, "")
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, data)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatalf("decoding job: %v", err)
	}
	for _, name := range []string{"id", "project", "instance", "kind", "state", "attempt", "parameters",
		"submittedAt", "startedAt", "finishedAt", "waitingFor", "position", "estimatedWaitMs", "blocks",
		"error", "result", "outputs", "stop", "timeoutMs"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("job JSON has no field %q", name)
		}
	}
	job := decode[pool.Job](t, data)
	if job.State != pool.StateBlocked || job.WaitingFor == nil || job.WaitingFor.BlockedBy == nil || *job.WaitingFor.BlockedBy != running.ID {
		t.Errorf("job = %s waiting for %+v, want BLOCKED by %s", job.State, job.WaitingFor, running.ID)
	}

	status, header, data := call(t, http.MethodGet, srv.URL+"/api/v1/jobs/0193a1b2-0000-7000-8000-000000000000", "")
	expectProblem(t, status, header, data, http.StatusNotFound, httpapi.CodeJobNotFound, "")
}

func TestHandlerListJobs(t *testing.T) {
	b := setup(t)
	srv := b.server(t)
	first := b.submit(t, "a")
	b.awaitRun(t, first.ID)
	second := b.submit(t, "b")
	third := b.submit(t, "a")

	status, _, data := call(t, http.MethodGet, srv.URL+"/api/v1/jobs", "")
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, data)
	}
	list := decode[pool.JobList](t, data)
	if list.Total != 3 || list.Limit != 50 || list.Offset != 0 {
		t.Errorf("total %d, limit %d, offset %d; want 3, 50, 0", list.Total, list.Limit, list.Offset)
	}
	if len(list.Jobs) != 3 || list.Jobs[0].ID != third.ID {
		t.Errorf("jobs = %v, want newest first", ids(list.Jobs))
	}

	for query, want := range map[string][]string{
		"?state=QUEUED":                      {second.ID},
		"?state=QUEUED,BLOCKED":              {third.ID, second.ID},
		"?state=running&state=blocked":       {third.ID, first.ID},
		"?state=RUNNING,%20QUEUED&project=a": {first.ID},
	} {
		status, _, data = call(t, http.MethodGet, srv.URL+"/api/v1/jobs"+query, "")
		list = decode[pool.JobList](t, data)
		if status != http.StatusOK || list.Total != len(want) || !slices.Equal(ids(list.Jobs), want) {
			t.Errorf("%s: status %d, jobs %v (total %d); want %v", query, status, ids(list.Jobs), list.Total, want)
		}
	}
	status, _, data = call(t, http.MethodGet, srv.URL+"/api/v1/jobs?project=a&limit=1&offset=1", "")
	list = decode[pool.JobList](t, data)
	if status != http.StatusOK || list.Total != 2 || len(list.Jobs) != 1 || list.Jobs[0].ID != first.ID {
		t.Errorf("page of project a: status %d, total %d, jobs %v; want [%s] of 2", status, list.Total, ids(list.Jobs), first.ID)
	}

	for query, field := range map[string]string{
		"?state=DONE":    "state",
		"?limit=0":       "limit",
		"?limit=501":     "limit",
		"?limit=ten":     "limit",
		"?offset=-1":     "offset",
		"?offset=1.5":    "offset",
		"?state=QUEUED,": "state",
	} {
		status, header, data := call(t, http.MethodGet, srv.URL+"/api/v1/jobs"+query, "")
		expectProblem(t, status, header, data, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, field)
	}
}

func TestHandlerStopJob(t *testing.T) {
	b := setup(t)
	srv := b.server(t)
	running := b.submit(t, "a")
	run := b.awaitRun(t, running.ID)
	queued := b.submit(t, "b")
	other := b.submit(t, "c")

	status, _, data := call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+queued.ID+"/stop", "")
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, data)
	}
	job := decode[pool.Job](t, data)
	if job.State != pool.StateCancelled || job.Stop == nil || job.Stop.By != "127.0.0.1" {
		t.Errorf("job = %s stopped by %+v, want CANCELLED by the client IP 127.0.0.1", job.State, job.Stop)
	}

	status, _, data = call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+other.ID+"/stop", `{"by": "ops", "reason": "duplicate"}`)
	job = decode[pool.Job](t, data)
	if status != http.StatusOK || job.Stop == nil || job.Stop.By != "ops" || job.Stop.Reason != "duplicate" {
		t.Errorf("status %d, stop %+v; want 200 by ops for duplicate", status, job.Stop)
	}

	status, _, data = call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+running.ID+"/stop", `{"reason": "too slow"}`)
	if got := decode[pool.Job](t, data).State; status != http.StatusOK || got != pool.StateCancelling {
		t.Errorf("stopping the running job: status %d, state %s; want 200 CANCELLING", status, got)
	}
	<-run.Returned()
	b.awaitFinal(t, running.ID)

	status, header, data := call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+running.ID+"/stop", "")
	expectProblem(t, status, header, data, http.StatusConflict, httpapi.CodeJobFinished, "")
	status, header, data = call(t, http.MethodPost, srv.URL+"/api/v1/jobs/unknown/stop", "")
	expectProblem(t, status, header, data, http.StatusNotFound, httpapi.CodeJobNotFound, "")
	status, header, data = call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+queued.ID+"/stop", `{"reason": `)
	expectProblem(t, status, header, data, http.StatusBadRequest, httpapi.CodeBadRequest, "")
	status, header, data = call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+queued.ID+"/stop", `{"reason": 5}`)
	expectProblem(t, status, header, data, http.StatusBadRequest, httpapi.CodeBadRequest, "reason")
	long := `{"reason": "` + strings.Repeat("x", 1001) + `"}`
	status, header, data = call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+queued.ID+"/stop", long)
	expectProblem(t, status, header, data, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "reason")
}

func TestHandlerOutputs(t *testing.T) {
	b := setup(t)
	srv := b.server(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	dir := run.Job.OutputDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rain-2014.csv"), []byte("month,days\n1,12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "by month"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "by month", "1.json"), []byte(`[]`), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/api/v1/jobs/" + job.ID + "/outputs/"

	status, header, data := call(t, http.MethodGet, base+"rain-2014.csv", "")
	if status != http.StatusOK || string(data) != "month,days\n1,12\n" {
		t.Errorf("status %d, body %q; want 200 with the file", status, data)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type = %q, want text/csv", ct)
	}
	status, _, data = call(t, http.MethodGet, base+"by%20month/1.json", "")
	if status != http.StatusOK || string(data) != "[]" {
		t.Errorf("nested file: status %d, body %q; want 200 []", status, data)
	}

	for _, name := range []string{"missing.csv", "escape.txt", "by%20month", "../../../etc/passwd", "%2e%2e/%2e%2e/secret.txt", "by%20month/../rain-2014.csv", ""} {
		status, header, data := call(t, http.MethodGet, base+name, "")
		if status == http.StatusOK && strings.Contains(string(data), "secret") {
			t.Errorf("%s: served a file outside the output directory", name)
		}
		expectProblem(t, status, header, data, http.StatusNotFound, httpapi.CodeOutputNotFound, "")
	}
	status, header, data = call(t, http.MethodGet, srv.URL+"/api/v1/jobs/0193a1b2-0000-7000-8000-000000000000/outputs/a.csv", "")
	expectProblem(t, status, header, data, http.StatusNotFound, httpapi.CodeJobNotFound, "")
	status, _, data = call(t, http.MethodGet, srv.URL+"/api/v1/jobs/..%2f..%2f/outputs/a.csv", "")
	if status != http.StatusNotFound {
		t.Errorf("job id with dots: status %d, want 404; body %s", status, data)
	}
}

func TestHandlerSettings(t *testing.T) {
	b := setup(t)
	srv := b.server(t)

	status, _, data := call(t, http.MethodGet, srv.URL+"/api/v1/settings", "")
	settings := decode[pool.Settings](t, data)
	if status != http.StatusOK || settings.ConcurrentJobs != 1 || settings.MaxConcurrentJobs != 4 || settings.QueueLimit != pool.DefaultQueueLimit {
		t.Errorf("status %d, settings %+v; want 200 with 1 of max 4", status, settings)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"concurrentJobs", "requestedConcurrentJobs", "maxConcurrentJobs", "queueLimit"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("settings JSON has no field %q", name)
		}
	}

	status, _, data = call(t, http.MethodPatch, srv.URL+"/api/v1/settings", `{"concurrentJobs": 8, "queueLimit": 20}`)
	settings = decode[pool.Settings](t, data)
	if status != http.StatusOK || settings.ConcurrentJobs != 4 || settings.RequestedConcurrentJobs != 8 || settings.QueueLimit != 20 {
		t.Errorf("status %d, settings %+v; want 4 in force of 8 requested, queue limit 20", status, settings)
	}
	status, _, data = call(t, http.MethodPatch, srv.URL+"/api/v1/settings", "")
	if settings = decode[pool.Settings](t, data); status != http.StatusOK || settings.RequestedConcurrentJobs != 8 {
		t.Errorf("empty PATCH: status %d, settings %+v; want 200 unchanged", status, settings)
	}

	for body, field := range map[string]string{
		`{"concurrentJobs": 0}`:          "concurrentJobs",
		`{"concurrentJobs": -3}`:         "concurrentJobs",
		`{"concurrentJobs": "2"}`:        "concurrentJobs",
		`{"concurrentJobs": 1.5}`:        "concurrentJobs",
		`{"concurrentJobs": true}`:       "concurrentJobs",
		`{"queueLimit": 0}`:              "queueLimit",
		`{"queueLimit": 99999999999999}`: "queueLimit",
	} {
		status, header, data := call(t, http.MethodPatch, srv.URL+"/api/v1/settings", body)
		expectProblem(t, status, header, data, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, field)
	}
	status, header, data := call(t, http.MethodPatch, srv.URL+"/api/v1/settings", `{"slots": 2}`)
	expectProblem(t, status, header, data, http.StatusBadRequest, httpapi.CodeBadRequest, "slots")
	if got := b.pool.Settings().RequestedConcurrentJobs; got != 8 {
		t.Errorf("RequestedConcurrentJobs = %d after rejected changes, want 8", got)
	}
}

func TestSubmitProblemQueueFull(t *testing.T) {
	b := setup(t, func(cfg *pool.Config) { cfg.QueueLimit = 1 })
	srv := b.server(t)
	running := b.submit(t, "a")
	b.awaitRun(t, running.ID)
	b.submit(t, "b")

	status, header, data := call(t, http.MethodPost, srv.URL+"/api/v1/test/submit/c", "")
	expectProblem(t, status, header, data, http.StatusTooManyRequests, httpapi.CodeQueueFull, "")
	retry, err := strconv.Atoi(header.Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Errorf("Retry-After = %q, want whole seconds of at least 1", header.Get("Retry-After"))
	}
	problem := decode[httpapi.Problem](t, data)
	if problem.QueueDepth == nil || *problem.QueueDepth != 1 {
		t.Errorf("queueDepth = %v, want 1", problem.QueueDepth)
	}

	b.pool.Stop()
	status, header, data = call(t, http.MethodPost, srv.URL+"/api/v1/test/submit/c", "")
	expectProblem(t, status, header, data, http.StatusServiceUnavailable, httpapi.CodeShuttingDown, "")
}

func TestHandlerUnknownFieldInStopBody(t *testing.T) {
	b := setup(t)
	srv := b.server(t)
	job := b.submit(t, "a")
	status, header, data := call(t, http.MethodPost, srv.URL+"/api/v1/jobs/"+job.ID+"/stop", `{"who": "x"}`)
	expectProblem(t, status, header, data, http.StatusBadRequest, httpapi.CodeBadRequest, "who")
	if !bytes.Contains(data, []byte(`"requestId"`)) {
		t.Errorf("problem %s has no requestId", data)
	}
}
