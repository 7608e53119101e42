package lambda_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/pool"
)

// object decodes a response body as a JSON object and checks that it has
// exactly the given keys.
func object(t *testing.T, res *response, keys ...string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", res.body, err)
	}
	checkKeys(t, m, keys...)
	return m
}

func checkKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys = %v, want exactly %v; body %v", got, want, m)
	}
}

// workflowError checks that res is an Omniscope error with the given
// status and error type, and returns its message.
func workflowError(t *testing.T, res *response, status int, errorType string) string {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d, want %d; body %s", res.status, status, res.body)
	}
	m := object(t, res, "errorType", "errorMessage")
	if m["errorType"] != errorType {
		t.Errorf("errorType = %v, want %s; body %s", m["errorType"], errorType, res.body)
	}
	message, _ := m["errorMessage"].(string)
	if message == "" {
		t.Errorf("errorMessage is empty; body %s", res.body)
	}
	return message
}

// jobID checks that res is a 200 with exactly the given keys and returns
// its jobId.
func jobID(t *testing.T, res *response, keys ...string) (string, map[string]any) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
	m := object(t, res, keys...)
	id, _ := m["jobId"].(string)
	if id == "" {
		t.Fatalf("jobId missing in %s", res.body)
	}
	return id, m
}

// jobState reads GET {path}/w/job/{id}/state and checks its keys.
func (b *bundle) jobState(t *testing.T, path, id string, keys ...string) map[string]any {
	t.Helper()
	res := b.get(t, "/"+path+"/w/job/"+id+"/state")
	if res.status != http.StatusOK {
		t.Fatalf("state of job %s under %s: status %d, body %s", id, path, res.status, res.body)
	}
	if len(keys) == 0 {
		keys = []string{"jobState"}
	}
	return object(t, res, keys...)
}

func TestWorkflowRoutesBesideRootRoutes(t *testing.T) {
	b := setup(t, options{})
	// The router is configured as the binary configures its own.
	router := gin.New()
	router.HandleMethodNotAllowed = true
	router.RedirectTrailingSlash = false
	router.RedirectFixedPath = false
	router.Use(httpapi.Middleware(slog.New(slog.NewTextHandler(io.Discard, nil))))
	router.NoRoute(httpapi.NoRoute)
	router.NoMethod(httpapi.NoMethod)
	hit := func(name string) gin.HandlerFunc {
		return func(c *gin.Context) { c.String(http.StatusOK, name) }
	}
	router.GET("/healthz", hit("healthz"))
	router.GET("/readyz", hit("readyz"))
	router.GET("/metrics", hit("metrics"))
	router.GET("/swagger/*any", hit("swagger"))
	router.GET("/admin/", hit("admin"))
	router.GET("/api/v1/projects", hit("projects"))
	router.GET("/api/v1/jobs/:job", hit("job"))
	b.service.RegisterWorkflowRoutes(router)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	direct := &bundle{url: srv.URL}

	for path, want := range map[string]string{
		"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics", "/swagger/index.html": "swagger",
		"/admin/": "admin", "/api/v1/projects": "projects", "/api/v1/jobs/x": "job",
	} {
		res := direct.get(t, path)
		if res.status != http.StatusOK || string(res.body) != want {
			t.Errorf("GET %s = %d %s, want 200 %s", path, res.status, res.body, want)
		}
	}
	res := direct.get(t, "/seattle-weather/w/param/weather")
	if res.status != http.StatusOK {
		t.Errorf("GET /seattle-weather/w/param/weather = %d %s, want 200", res.status, res.body)
	}
	// A project named like a root route still reaches the workflow routes.
	res = direct.get(t, "/api/w/param")
	workflowError(t, res, http.StatusNotFound, httpapi.CodeProjectNotFound)
	res = direct.get(t, "/healthz/w/param")
	workflowError(t, res, http.StatusNotFound, httpapi.CodeProjectNotFound)
	if res := direct.get(t, "/api/v1/nothing"); res.status != http.StatusNotFound {
		t.Errorf("GET /api/v1/nothing = %d, want 404", res.status)
	}
}

func TestWorkflowExecuteRejectsSecondRun(t *testing.T) {
	b := setup(t, options{gated: true})
	first, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", map[string]any{"refreshFromSource": true}), "jobId")
	if started := b.gate.nextStart(t); started != first {
		t.Fatalf("started %s, want %s", started, first)
	}
	if state := b.jobState(t, "seattle-weather", first)["jobState"]; state != lambda.JobStateRunning {
		t.Errorf("first job state = %v, want RUNNING", state)
	}

	message := workflowError(t, b.post(t, "/seattle-weather/w/execute", map[string]any{}), http.StatusConflict, httpapi.CodeWorkflowAlreadyRunning)
	if !strings.Contains(message, first) || !strings.Contains(message, "cancelExisting") {
		t.Errorf("errorMessage = %q, want the running job and the cancelExisting hint", message)
	}
	if active := b.pool.ActiveJobIDs("seattle-weather"); len(active) != 1 || active[0] != first {
		t.Errorf("active jobs = %v, want only %s: the rejected request queued nothing", active, first)
	}

	second, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", map[string]any{"cancelExisting": true, "blocks": []string{"sorted"}}), "jobId")
	if job := b.awaitJob(t, first); job.State != pool.StateCancelled {
		t.Errorf("first job ended %s, want CANCELLED", job.State)
	}
	if state := b.jobState(t, "seattle-weather", first)["jobState"]; state != lambda.JobStateCancelled {
		t.Errorf("first job state = %v, want CANCELLED", state)
	}
	if started := b.gate.nextStart(t); started != second {
		t.Fatalf("started %s, want %s", started, second)
	}
	b.gate.releaseOne(t)
	job := b.awaitJob(t, second)
	if job.State != pool.StateCompleted {
		t.Fatalf("second job ended %s: %+v", job.State, job.Error)
	}
	if job.Kind != pool.KindExecute || len(job.Outputs) != 0 {
		t.Errorf("second job: kind %s, outputs %v; want execute without the skipped save block", job.Kind, job.Outputs)
	}
	checkWeatherRows(t, job, expectedWeather(t, b.filesDir, "rain", 2014))
	if state := b.jobState(t, "seattle-weather", second)["jobState"]; state != lambda.JobStateCompleted {
		t.Errorf("second job state = %v, want COMPLETED", state)
	}
}

func TestWorkflowStateShowsWaitingJobs(t *testing.T) {
	b := setup(t, options{gated: true})
	running, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", nil), "jobId")
	b.gate.nextStart(t)
	other, _ := jobID(t, b.post(t, "/bird-strikes/w/execute", nil), "jobId")
	b.gate.nextStart(t)
	queued, _ := jobID(t, b.post(t, "/flight-delays/w/execute", nil), "jobId")
	// The native route queues a second job of a busy project as BLOCKED.
	native := b.post(t, "/api/v1/projects/seattle-weather/execute", nil)
	var blocked pool.Job
	native.decode(t, &blocked)

	for id, want := range map[string]string{
		running: lambda.JobStateRunning, other: lambda.JobStateRunning,
		queued: lambda.JobStateQueued, blocked.ID: lambda.JobStateBlocked,
	} {
		job, err := b.pool.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if state := b.jobState(t, job.Project, id)["jobState"]; state != want {
			t.Errorf("job %s of %s: state %v, want %s", id, job.Project, state, want)
		}
	}
}

func TestWorkflowStateMapsEveryState(t *testing.T) {
	block := "check"
	tests := []struct {
		job  pool.Job
		want lambda.WorkflowJobState
	}{
		{pool.Job{State: pool.StateQueued}, lambda.WorkflowJobState{JobState: "QUEUED"}},
		{pool.Job{State: pool.StateBlocked}, lambda.WorkflowJobState{JobState: "BLOCKED"}},
		{pool.Job{State: pool.StateRunning}, lambda.WorkflowJobState{JobState: "RUNNING"}},
		{pool.Job{State: pool.StateCancelling}, lambda.WorkflowJobState{JobState: "RUNNING"}},
		{pool.Job{State: pool.StateCompleted}, lambda.WorkflowJobState{JobState: "COMPLETED"}},
		{pool.Job{State: pool.StateCancelled, Error: &pool.JobError{Type: pool.ErrorCancelled, Message: "stopped"}},
			lambda.WorkflowJobState{JobState: "CANCELLED"}},
		{pool.Job{State: pool.StateFailed, Error: &pool.JobError{Type: pool.ErrorBlockFailed, Message: "bad row", Block: &block}},
			lambda.WorkflowJobState{JobState: "FAILED", ErrorType: "BLOCK_FAILED", ErrorMessage: "bad row"}},
		{pool.Job{State: pool.StateFailed}, lambda.WorkflowJobState{JobState: "FAILED", ErrorType: "INTERNAL", ErrorMessage: "the job failed"}},
	}
	for _, tt := range tests {
		if got := lambda.WorkflowStateOf(&tt.job); got != tt.want {
			t.Errorf("state of a %s job = %+v, want %+v", tt.job.State, got, tt.want)
		}
	}
}

// failingProject fails in its assert block.
const failingProject = `{"name": "failing", "blocks": [
  {"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}},
  {"name": "check", "type": "assert", "inputs": ["rows"], "options": {"where": "n > 5", "message": "n is too small"}}]}`

func TestWorkflowStateOfFailedJob(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, failingProject)
	id, _ := jobID(t, b.post(t, "/failing/w/execute", nil), "jobId")
	b.awaitJob(t, id)
	state := b.jobState(t, "failing", id, "jobState", "errorType", "errorMessage")
	if state["jobState"] != lambda.JobStateFailed || state["errorType"] != pool.ErrorBlockFailed {
		t.Errorf("state = %v, want FAILED with BLOCK_FAILED", state)
	}
	if message, _ := state["errorMessage"].(string); !strings.Contains(message, "n is too small") {
		t.Errorf("errorMessage = %q, want the assert's message", message)
	}
}

func TestWorkflowLambdaExecuteWaitsForIdle(t *testing.T) {
	b := setup(t, options{})
	for _, route := range []string{"lambdaexecute", "lambda/execute"} {
		res := b.post(t, "/seattle-weather/w/"+route, map[string]any{
			"params": map[string]any{
				"updates":     []map[string]any{{"name": "weather", "value": "sun"}, {"name": "year", "value": 2013}},
				"waitForIdle": true,
			},
			"refreshFromSource": true, "cancelExisting": true,
		})
		id, body := jobID(t, res, "jobId", "lambdaProjectPath")
		job, err := b.pool.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if job.State != pool.StateCompleted {
			t.Fatalf("%s: job is %s after waitForIdle, want COMPLETED", route, job.State)
		}
		checkWeatherRows(t, job, expectedWeather(t, b.filesDir, "sun", 2013))
		path := "seattle-weather/instances/" + *job.Instance
		if body["lambdaProjectPath"] != path {
			t.Errorf("%s: lambdaProjectPath = %v, want %s", route, body["lambdaProjectPath"], path)
		}

		// The instance is removed when its job ends; its state stays
		// readable under both paths.
		if err := b.service.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if res := b.get(t, "/api/v1/instances/"+*job.Instance); res.status != http.StatusNotFound {
			t.Errorf("%s: instance read %d after its job ended, want 404", route, res.status)
		}
		for _, p := range []string{path, "seattle-weather"} {
			if state := b.jobState(t, p, id)["jobState"]; state != lambda.JobStateCompleted {
				t.Errorf("%s: state under %s = %v, want COMPLETED", route, p, state)
			}
		}
	}
}

func TestWorkflowLambdaRunsBesideExecution(t *testing.T) {
	b := setup(t, options{gated: true})
	plain, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", nil), "jobId")
	b.gate.nextStart(t)
	id, body := jobID(t, b.post(t, "/seattle-weather/w/lambdaexecute", map[string]any{
		"params": map[string]any{"updates": []map[string]any{{"name": "year", "value": "2012"}}}, "deleteExecutionOnFinish": false,
	}), "jobId", "lambdaProjectPath")
	if started := b.gate.nextStart(t); started != id {
		t.Fatalf("started %s, want the instance's job %s beside %s", started, id, plain)
	}
	path, _ := body["lambdaProjectPath"].(string)
	if state := b.jobState(t, path, id)["jobState"]; state != lambda.JobStateRunning {
		t.Errorf("instance job state = %v, want RUNNING", state)
	}
	b.gate.releaseOne(t)
	b.gate.releaseOne(t)
	job := b.awaitJob(t, id)
	if job.State != pool.StateCompleted {
		t.Fatalf("instance job ended %s: %+v", job.State, job.Error)
	}
	checkWeatherRows(t, job, expectedWeather(t, b.filesDir, "rain", 2012))
	if res := b.get(t, "/api/v1/instances/"+*job.Instance); res.status != http.StatusOK {
		t.Errorf("kept instance: status %d, want 200", res.status)
	}
}

func TestWorkflowJobStateNotFound(t *testing.T) {
	b := setup(t, options{})
	id, body := jobID(t, b.post(t, "/seattle-weather/w/lambdaexecute", map[string]any{"params": map[string]any{"waitForIdle": true}}), "jobId", "lambdaProjectPath")
	path, _ := body["lambdaProjectPath"].(string)
	plain, _ := jobID(t, b.post(t, "/bird-strikes/w/execute", nil), "jobId")
	b.awaitJob(t, plain)

	tests := []struct {
		name, path, errorType string
	}{
		{"unknown job", "/seattle-weather/w/job/0193aaaa-0000-7000-8000-000000000000/state", httpapi.CodeJobNotFound},
		{"malformed id", "/seattle-weather/w/job/not-a-job/state", httpapi.CodeJobNotFound},
		{"job of another project", "/seattle-weather/w/job/" + plain + "/state", httpapi.CodeJobNotFound},
		{"instance job under another project", "/bird-strikes/w/job/" + id + "/state", httpapi.CodeJobNotFound},
		{"execute job under an instance", "/bird-strikes/instances/x/w/job/" + plain + "/state", httpapi.CodeJobNotFound},
		{"instance job under another instance", "/seattle-weather/instances/x/w/job/" + id + "/state", httpapi.CodeJobNotFound},
		{"unknown project", "/nothing/w/job/" + id + "/state", httpapi.CodeProjectNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workflowError(t, b.get(t, tt.path), http.StatusNotFound, tt.errorType)
		})
	}
	if state := b.jobState(t, path, id)["jobState"]; state != lambda.JobStateCompleted {
		t.Errorf("state under %s = %v, want COMPLETED", path, state)
	}
}

func TestWorkflowRequestErrors(t *testing.T) {
	b := setup(t, options{})
	raw := func(path, contentType, body string) *response {
		return b.do(t, http.MethodPost, path, contentType, strings.NewReader(body))
	}
	tests := []struct {
		name      string
		res       func() *response
		status    int
		errorType string
		mention   string
	}{
		{"execute unknown project", func() *response { return b.post(t, "/nothing/w/execute", nil) },
			http.StatusNotFound, httpapi.CodeProjectNotFound, "nothing"},
		{"execute malformed JSON", func() *response { return raw("/seattle-weather/w/execute", "application/json", `{"blocks": [`) },
			http.StatusBadRequest, lambda.ErrorTypeInvalidRequest, "JSON"},
		{"execute wrong type", func() *response {
			return raw("/seattle-weather/w/execute", "application/json", `{"cancelExisting": "yes"}`)
		},
			http.StatusBadRequest, lambda.ErrorTypeInvalidRequest, "cancelExisting"},
		{"execute unknown block", func() *response {
			return b.post(t, "/seattle-weather/w/execute", map[string]any{"blocks": []string{"nope"}})
		},
			http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "blocks[0]"},
		{"execute text body", func() *response { return raw("/seattle-weather/w/execute", "text/plain", "run") },
			http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMediaType, "application/json"},
		{"lambda unknown project", func() *response { return b.post(t, "/nothing/w/lambdaexecute", nil) },
			http.StatusNotFound, httpapi.CodeProjectNotFound, "nothing"},
		{"lambda malformed updates", func() *response {
			return raw("/seattle-weather/w/lambdaexecute", "application/json", `{"params": {"updates": {"name": "year"}}}`)
		}, http.StatusBadRequest, lambda.ErrorTypeInvalidRequest, "params.updates"},
		{"lambda invalid value", func() *response {
			return b.post(t, "/seattle-weather/w/lambdaexecute", map[string]any{"params": map[string]any{"updates": []map[string]any{{"name": "year", "value": 1999}}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "parameter year"},
		{"lambda unknown parameter", func() *response {
			return b.post(t, "/seattle-weather/w/lambdaexecute", map[string]any{"params": map[string]any{"updates": []map[string]any{{"name": "colour", "value": "red"}}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "parameter colour"},
		{"lambda duplicate update", func() *response {
			return b.post(t, "/seattle-weather/w/lambda/execute", map[string]any{"params": map[string]any{"updates": []map[string]any{
				{"name": "year", "value": 2012}, {"name": "year", "value": 2013}}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "params.updates[1].name"},
		{"lambda nameless update", func() *response {
			return b.post(t, "/seattle-weather/w/lambdaexecute", map[string]any{"params": map[string]any{"updates": []map[string]any{{"value": 2012}}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "params.updates[0].name"},
		{"lambda formDataKey", func() *response {
			return b.post(t, "/seattle-weather/w/lambdaexecute", map[string]any{"params": map[string]any{"updates": []map[string]any{{"name": "year", "formDataKey": "f"}}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "uploadandexecute"},
		{"updateparams unknown project", func() *response { return b.post(t, "/nothing/w/updateparams", map[string]any{"updates": []any{}}) },
			http.StatusNotFound, httpapi.CodeProjectNotFound, "nothing"},
		{"updateparams empty body", func() *response { return raw("/seattle-weather/w/updateparams", "application/json", "") },
			http.StatusBadRequest, lambda.ErrorTypeInvalidRequest, "empty"},
		{"updateparams wrong type", func() *response {
			return raw("/seattle-weather/w/updateparams", "application/json", `{"updates": [{"name": 7}]}`)
		},
			http.StatusBadRequest, lambda.ErrorTypeInvalidRequest, "updates.name"},
		{"updateparams invalid value", func() *response {
			return b.post(t, "/seattle-weather/w/updateparams", map[string]any{"updates": []map[string]any{{"name": "weather", "value": "hail"}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "parameter weather"},
		{"updateparams unknown parameter", func() *response {
			return b.post(t, "/seattle-weather/w/updateparams", map[string]any{"updates": []map[string]any{{"name": "colour", "value": "red"}}})
		}, http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "parameter colour"},
		{"param unknown project", func() *response { return b.get(t, "/nothing/w/param") },
			http.StatusNotFound, httpapi.CodeProjectNotFound, "nothing"},
		{"param unknown name", func() *response { return b.get(t, "/seattle-weather/w/param/colour") },
			http.StatusNotFound, lambda.ErrorTypeParameterNotFound, "colour"},
		{"one param unknown project", func() *response { return b.get(t, "/nothing/w/param/year") },
			http.StatusNotFound, httpapi.CodeProjectNotFound, "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			message := workflowError(t, tt.res(), tt.status, tt.errorType)
			if !strings.Contains(message, tt.mention) {
				t.Errorf("errorMessage = %q, want it to mention %q", message, tt.mention)
			}
		})
	}
	_, total, err := b.pool.Jobs(t.Context(), pool.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 0 {
		t.Errorf("rejected requests queued %d jobs, want none", total)
	}
}

func TestWorkflowQueueFullIs429(t *testing.T) {
	b := setup(t, options{gated: true, queueLimit: 1})
	for _, project := range []string{"seattle-weather", "bird-strikes"} {
		jobID(t, b.post(t, "/"+project+"/w/execute", nil), "jobId")
		b.gate.nextStart(t)
	}
	jobID(t, b.post(t, "/flight-delays/w/execute", nil), "jobId")

	res := b.post(t, "/seattle-weather/w/lambdaexecute", nil)
	message := workflowError(t, res, http.StatusTooManyRequests, httpapi.CodeQueueFull)
	if !strings.Contains(message, "queue is full") {
		t.Errorf("errorMessage = %q, want the queue depth and limit", message)
	}
	if res.header.Get("Retry-After") == "" {
		t.Error("Retry-After header missing")
	}
	b.createProject(t, failingProject)
	workflowError(t, b.post(t, "/failing/w/execute", nil), http.StatusTooManyRequests, httpapi.CodeQueueFull)
}

func TestWorkflowParamsReadAndUpdate(t *testing.T) {
	b := setup(t, options{})
	res := b.get(t, "/seattle-weather/w/param")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", res.status, res.body)
	}
	list := object(t, res, "paramValues")["paramValues"].([]any)
	want := []map[string]any{
		{"name": "weather", "type": "TEXT", "value": "rain"},
		{"name": "year", "type": "NUMBER", "value": json.Number("2014")},
	}
	checkParamList(t, list, want)

	res = b.post(t, "/seattle-weather/w/updateparams", map[string]any{
		"updates": []map[string]any{{"name": "weather", "value": "sun"}, {"name": "year", "value": "2013"}}, "waitForIdle": true,
	})
	if res.status != http.StatusOK {
		t.Fatalf("updateparams status = %d, body %s", res.status, res.body)
	}
	if status := object(t, res, "status")["status"]; status != "SUCCESS" {
		t.Errorf("status = %v, want SUCCESS", status)
	}
	res = b.get(t, "/seattle-weather/w/param/year")
	one := object(t, res, "name", "type", "value")
	checkParam(t, one, map[string]any{"name": "year", "type": "NUMBER", "value": json.Number("2013")})

	// The next execution runs with the new current values.
	id, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", nil), "jobId")
	job := b.awaitJob(t, id)
	checkWeatherRows(t, job, expectedWeather(t, b.filesDir, "sun", 2013))

	// null removes a current value, so the default applies again.
	res = b.post(t, "/seattle-weather/w/updateparams", map[string]any{"updates": []map[string]any{{"name": "weather", "value": nil}}})
	if res.status != http.StatusOK {
		t.Fatalf("updateparams null status = %d, body %s", res.status, res.body)
	}
	checkParam(t, object(t, b.get(t, "/seattle-weather/w/param/weather"), "name", "type", "value"),
		map[string]any{"name": "weather", "type": "TEXT", "value": "rain"})

	// A rejected update changes nothing.
	workflowError(t, b.post(t, "/seattle-weather/w/updateparams", map[string]any{"updates": []map[string]any{
		{"name": "weather", "value": "fog"}, {"name": "year", "value": 2020}}}), http.StatusUnprocessableEntity, httpapi.CodeValidationFailed)
	checkParam(t, object(t, b.get(t, "/seattle-weather/w/param/weather"), "name", "type", "value"),
		map[string]any{"name": "weather", "type": "TEXT", "value": "rain"})

	res = b.post(t, "/seattle-weather/w/updateparams", map[string]any{"updates": []any{}})
	if res.status != http.StatusOK || object(t, res, "status")["status"] != "SUCCESS" {
		t.Errorf("empty updates: status %d, body %s; want SUCCESS", res.status, res.body)
	}
}

// allTypesProject declares one parameter of every type.
const allTypesProject = `{"name": "all-types", "parameters": [
  {"name": "t", "type": "text", "default": "x"},
  {"name": "c", "type": "choice", "options": ["a", "b"]},
  {"name": "n", "type": "number", "default": 1.5},
  {"name": "i", "type": "integer"},
  {"name": "b", "type": "boolean", "default": false},
  {"name": "d", "type": "date", "default": "2014-01-02"},
  {"name": "dt", "type": "datetime"},
  {"name": "f", "type": "file", "default": "seattle-weather.csv"}],
  "blocks": [{"name": "one", "type": "inline", "options": {"rows": [{"k": 1}]}}],
  "values": {"dt": "2014-01-02T03:04:05Z", "i": 7}}`

func TestWorkflowParamTypes(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, allTypesProject)
	res := b.get(t, "/all-types/w/param")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", res.status, res.body)
	}
	list := object(t, res, "paramValues")["paramValues"].([]any)
	checkParamList(t, list, []map[string]any{
		{"name": "t", "type": "TEXT", "value": "x"},
		{"name": "c", "type": "TEXT", "value": nil},
		{"name": "n", "type": "NUMBER", "value": json.Number("1.5")},
		{"name": "i", "type": "NUMBER", "value": json.Number("7")},
		{"name": "b", "type": "BOOLEAN", "value": false},
		{"name": "d", "type": "DATE", "value": "2014-01-02"},
		{"name": "dt", "type": "DATE", "value": "2014-01-02T03:04:05Z"},
		{"name": "f", "type": "FILE", "value": "seattle-weather.csv"},
	})
}

func checkParamList(t *testing.T, list []any, want []map[string]any) {
	t.Helper()
	if len(list) != len(want) {
		t.Fatalf("paramValues = %v, want %d entries", list, len(want))
	}
	for i, entry := range list {
		m, ok := entry.(map[string]any)
		if !ok {
			t.Fatalf("paramValues[%d] = %v, want an object", i, entry)
		}
		checkKeys(t, m, "name", "type", "value")
		checkParam(t, m, want[i])
	}
}

func checkParam(t *testing.T, got, want map[string]any) {
	t.Helper()
	for _, key := range []string{"name", "type", "value"} {
		if got[key] != want[key] {
			t.Errorf("parameter %v: %s = %#v, want %#v", want["name"], key, got[key], want[key])
		}
	}
}

// uploadRequest builds an uploadandexecute form: the execution field and
// one file part per key.
func uploadRequest(t *testing.T, execution string, files map[string]string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if execution != "" {
		if err := w.WriteField("execution", execution); err != nil {
			t.Fatal(err)
		}
	}
	for key, content := range files {
		fw, err := w.CreateFormFile(key, key+".csv")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), &buf
}

func TestWorkflowUploadAndExecute(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, uploadProject)
	contentType, body := uploadRequest(t,
		`{"params": {"updates": [{"name": "data", "formDataKey": "cities"}], "waitForIdle": true}, "deleteExecutionOnFinish": false}`,
		map[string]string{"cities": "city,n\nOslo,1\nLima,2\n"})
	res := b.do(t, http.MethodPost, "/upload/w/uploadandexecute", contentType, body)
	id, answer := jobID(t, res, "jobId", "lambdaProjectPath")
	job, err := b.pool.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != pool.StateCompleted {
		t.Fatalf("job is %s: %+v", job.State, job.Error)
	}
	if job.Result == nil || job.Result.Total != 2 || job.Result.Rows[1]["city"] != "Lima" {
		t.Errorf("result = %+v, want the two uploaded rows", job.Result)
	}
	if want := ".instances/" + *job.Instance + "/data/cities.csv"; job.Parameters["data"] != want {
		t.Errorf("data = %v, want %s", job.Parameters["data"], want)
	}
	if _, err := os.Stat(filepath.Join(b.filesDir, ".instances", *job.Instance, "data", "cities.csv")); err != nil {
		t.Errorf("uploaded file not stored: %v", err)
	}
	path, _ := answer["lambdaProjectPath"].(string)
	if state := b.jobState(t, path, id)["jobState"]; state != lambda.JobStateCompleted {
		t.Errorf("state = %v, want COMPLETED", state)
	}
}

func TestWorkflowUploadErrors(t *testing.T) {
	b := setup(t, options{config: lambda.Config{MaxUploadBytes: 1024}})
	b.createProject(t, uploadProject)
	const rows = "a\n1\n"
	tests := []struct {
		name      string
		execution string
		files     map[string]string
		status    int
		errorType string
		mention   string
	}{
		{"key names no part", `{"params": {"updates": [{"name": "data", "formDataKey": "missing"}]}}`, map[string]string{},
			http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "params.updates[0].formDataKey"},
		{"part named by no key", `{"params": {"updates": [{"name": "data", "formDataKey": "a"}]}}`, map[string]string{"a": rows, "b": rows},
			http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, `file part "b"`},
		{"key for a text parameter", `{"params": {"updates": [{"name": "other", "formDataKey": "a"}]}}`, map[string]string{"a": rows},
			http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "parameter other"},
		{"value and key", `{"params": {"updates": [{"name": "data", "value": "x.csv", "formDataKey": "a"}]}}`, map[string]string{"a": rows},
			http.StatusUnprocessableEntity, httpapi.CodeValidationFailed, "both a value and a formDataKey"},
		{"malformed execution", `{"params": `, map[string]string{"a": rows},
			http.StatusBadRequest, lambda.ErrorTypeInvalidRequest, "execution"},
		{"too large", `{"params": {"updates": [{"name": "data", "formDataKey": "a"}]}}`, map[string]string{"a": strings.Repeat("1\n", 1000)},
			http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge, "1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contentType, body := uploadRequest(t, tt.execution, tt.files)
			res := b.do(t, http.MethodPost, "/upload/w/uploadandexecute", contentType, body)
			message := workflowError(t, res, tt.status, tt.errorType)
			if !strings.Contains(message, tt.mention) {
				t.Errorf("errorMessage = %q, want it to mention %q", message, tt.mention)
			}
		})
	}

	res := b.post(t, "/upload/w/uploadandexecute", map[string]any{})
	workflowError(t, res, http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMediaType)
	contentType, body := uploadRequest(t, `{}`, nil)
	workflowError(t, b.do(t, http.MethodPost, "/nothing/w/uploadandexecute", contentType, body), http.StatusNotFound, httpapi.CodeProjectNotFound)

	entries, _ := os.ReadDir(filepath.Join(b.filesDir, ".instances"))
	if len(entries) != 0 {
		t.Errorf("rejected uploads left %d instance directories", len(entries))
	}
}

func TestWorkflowExecuteIgnoresUnknownFields(t *testing.T) {
	b := setup(t, options{})
	id, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", map[string]any{"colour": 1, "refreshFromSource": false}), "jobId")
	if job := b.awaitJob(t, id); job.State != pool.StateCompleted {
		t.Errorf("job ended %s, want COMPLETED", job.State)
	}
}

func TestWorkflowCancelExistingKeepsJobWhenQueueFull(t *testing.T) {
	b := setup(t, options{gated: true, queueLimit: 1})
	first, _ := jobID(t, b.post(t, "/seattle-weather/w/execute", map[string]any{}), "jobId")
	if started := b.gate.nextStart(t); started != first {
		t.Fatalf("started %s, want %s", started, first)
	}
	// The second slot takes one lambda job and another one waits, which
	// fills the queue of one.
	b.invoke(t, "seattle-weather", map[string]any{"parameters": map[string]any{"year": 2012}}, http.StatusAccepted)
	b.gate.nextStart(t)
	b.invoke(t, "seattle-weather", map[string]any{"parameters": map[string]any{"year": 2013}}, http.StatusAccepted)

	workflowError(t, b.post(t, "/seattle-weather/w/execute", map[string]any{"cancelExisting": true}), http.StatusTooManyRequests, httpapi.CodeQueueFull)
	if state := b.jobState(t, "seattle-weather", first)["jobState"]; state != lambda.JobStateRunning {
		t.Errorf("first job state = %v after a rejected cancelExisting, want RUNNING", state)
	}
}
