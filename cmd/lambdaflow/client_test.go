package main

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lambdaflow/lambdaflow/openapi/client"
)

// api returns a client of s generated from openapi/openapi.yaml, whose
// traffic s's validator checks.
func (s *instance) api() *client.ClientWithResponses {
	s.t.Helper()
	c, err := client.NewClientWithResponses(s.base, client.WithHTTPClient(s.client),
		client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if s.token != "" {
				req.Header.Set("Authorization", "Bearer "+s.token)
			}
			return nil
		}))
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// anyValues converts a map of plain values to the client's parameter map.
func anyValues(values map[string]any) *map[string]*client.AnyValue {
	out := make(map[string]*client.AnyValue, len(values))
	for k, v := range values {
		value := client.AnyValue(v)
		out[k] = &value
	}
	return &out
}

// expectCode fails the test unless the response has the status.
func expectCode(t *testing.T, what string, got int, body []byte, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, got, want, body)
	}
}

// waitClientJob polls the job through the client until it is final.
func waitClientJob(t *testing.T, api *client.ClientWithResponses, id uuid.UUID) *client.Job {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := api.GetJobWithResponse(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		expectCode(t, "GetJob", resp.StatusCode(), resp.Body, http.StatusOK)
		switch resp.JSON200.State {
		case client.StateCOMPLETED, client.StateFAILED, client.StateCANCELLED:
			return resp.JSON200
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is still %s after 60s", id, resp.JSON200.State)
		}
		<-tick.C
	}
}

// uploadProject is a project that reads the CSV file given as its file
// parameter, for the routes that take uploads.
func uploadProject() client.ProjectRequest {
	return client.ProjectRequest{
		Name:       "client-upload",
		Parameters: &[]client.Parameter{{Name: "data", Type: client.ParameterTypeFile, Required: ptr(true)}},
		Blocks: []client.Block{
			{Name: "load", Type: "csv.read", Options: anyValues(map[string]any{"path": "${data}"})},
		},
		Result: ptr("load"),
	}
}

// multipartBody returns a multipart form with the JSON text in the field
// named field and one CSV file part named part.
func multipartBody(t *testing.T, field, jsonText, part string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField(field, jsonText); err != nil {
		t.Fatal(err)
	}
	f, err := w.CreateFormFile(part, "numbers.csv")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("n\n1\n2\n3\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), &buf
}

// TestClientReachesEveryRoute calls every operation of the OpenAPI
// document through the generated client against a real server, checks
// the typed responses, and fails when an operation was never called.
func TestClientReachesEveryRoute(t *testing.T) {
	s := startServer(t, t.TempDir())
	api := s.api()
	ctx := context.Background()

	checkHealth(t, api)
	checkProjectRoutes(t, api)
	checkExecution(t, api)
	checkLambdaRoutes(t, api)
	checkJobRoutes(t, s, api)
	checkWorkflowRoutes(t, api)
	checkMonitorRoutes(t, api)

	resp, err := api.DeleteProjectWithResponse(ctx, "client-sleepy")
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "DeleteProject", resp.StatusCode(), resp.Body, http.StatusNoContent)

	doc, _ := loadSpec(t)
	seen := s.spec.operations()
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if !seen[op.OperationID] {
				t.Errorf("operation %s (%s %s) was never called", op.OperationID, method, path)
			}
		}
	}
}

func checkHealth(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()
	health, err := api.HealthzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "Healthz", health.StatusCode(), health.Body, http.StatusOK)
	if health.JSON200.Status != client.HealthStatusStatusOk {
		t.Errorf("healthz status %q, want ok", health.JSON200.Status)
	}
	ready, err := api.ReadyzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "Readyz", ready.StatusCode(), ready.Body, http.StatusOK)
	if ready.JSON200.Status != client.HealthStatusStatusReady {
		t.Errorf("readyz status %q, want ready", ready.JSON200.Status)
	}
}

// checkProjectRoutes covers the /projects routes except execute and
// delete.
func checkProjectRoutes(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()
	list, err := api.ListProjectsWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ListProjects", list.StatusCode(), list.Body, http.StatusOK)
	if !slices.ContainsFunc(list.JSON200.Projects, func(p client.Record) bool { return p.Name == "seattle-weather" }) {
		t.Errorf("ListProjects lacks seattle-weather: %s", list.Body)
	}

	project, err := api.GetProjectWithResponse(ctx, "seattle-weather", nil)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetProject", project.StatusCode(), project.Body, http.StatusOK)
	etag := project.HTTPResponse.Header.Get("ETag")
	if project.JSON200.Version < 1 || etag == "" {
		t.Errorf("GetProject: version %d, ETag %q", project.JSON200.Version, etag)
	}
	cached, err := api.GetProjectWithResponse(ctx, "seattle-weather", &client.GetProjectParams{IfNoneMatch: &etag})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetProject If-None-Match", cached.StatusCode(), cached.Body, http.StatusNotModified)

	sleeper := client.ProjectRequest{
		Name: "client-sleepy",
		Blocks: []client.Block{
			{Name: "rows", Type: "inline", Options: anyValues(map[string]any{"rows": []any{map[string]any{"n": 1}}})},
			{Name: "wait", Type: "delay", Inputs: &[]string{"rows"}, Options: anyValues(map[string]any{"seconds": 3600})},
		},
	}
	created, err := api.CreateProjectWithResponse(ctx, sleeper)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "CreateProject", created.StatusCode(), created.Body, http.StatusCreated)
	sleeper.Description = ptr("waits an hour")
	replaced, err := api.ReplaceProjectWithResponse(ctx, "client-sleepy",
		&client.ReplaceProjectParams{IfMatch: ptr(created.HTTPResponse.Header.Get("ETag"))}, sleeper)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ReplaceProject", replaced.StatusCode(), replaced.Body, http.StatusOK)
	if replaced.JSON200.Version != created.JSON201.Version+1 || *replaced.JSON200.Description != "waits an hour" {
		t.Errorf("ReplaceProject: version %d after %d, description %v", replaced.JSON200.Version,
			created.JSON201.Version, replaced.JSON200.Description)
	}
	upload, err := api.CreateProjectWithResponse(ctx, uploadProject())
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "CreateProject upload", upload.StatusCode(), upload.Body, http.StatusCreated)

	values, err := api.SetProjectValuesWithResponse(ctx, "seattle-weather", nil,
		client.SetProjectValuesJSONRequestBody{"weather": "sun", "year": 2013})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "SetProjectValues", values.StatusCode(), values.Body, http.StatusOK)
	if v := values.JSON200.Values["weather"]; v == nil || *v != "sun" {
		t.Errorf("SetProjectValues: values %s", values.Body)
	}

	valid, err := api.ValidateParametersWithResponse(ctx, "seattle-weather",
		client.ValidateRequest{Parameters: anyValues(map[string]any{"year": 2015})})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ValidateParameters", valid.StatusCode(), valid.Body, http.StatusOK)
	if !valid.JSON200.Valid || *valid.JSON200.Parameters["weather"] != "sun" {
		t.Errorf("ValidateParameters: %s", valid.Body)
	}
}

// checkExecution runs seattle-weather and reads the job, its definition
// and its output through the client.
func checkExecution(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()
	executed, err := api.ExecuteProjectWithResponse(ctx, "seattle-weather", client.ExecuteRequest{Timeout: ptr("1m")})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ExecuteProject", executed.StatusCode(), executed.Body, http.StatusAccepted)
	if executed.JSON202.Kind != client.KindExecute || executed.JSON202.TimeoutMs != 60000 {
		t.Errorf("ExecuteProject: kind %s, timeoutMs %d", executed.JSON202.Kind, executed.JSON202.TimeoutMs)
	}
	job := waitClientJob(t, api, executed.JSON202.Id)
	if job.State != client.StateCOMPLETED || job.Result == nil || len(job.Result.Rows) != 12 {
		t.Fatalf("seattle-weather job: state %s, result %+v", job.State, job.Result)
	}
	for _, block := range job.Blocks {
		if block.State != client.BlockStateCOMPLETED || block.DurationMs == nil {
			t.Errorf("block %s: state %s, durationMs %v", block.Name, block.State, block.DurationMs)
		}
	}

	definition, err := api.GetJobDefinitionWithResponse(ctx, job.Id)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetJobDefinition", definition.StatusCode(), definition.Body, http.StatusOK)
	if definition.JSON200.Project != "seattle-weather" || *definition.JSON200.Parameters["weather"] != "sun" {
		t.Errorf("GetJobDefinition: %s", definition.Body)
	}

	if len(job.Outputs) != 1 {
		t.Fatalf("job outputs %+v, want one file", job.Outputs)
	}
	output, err := api.GetJobOutputWithResponse(ctx, job.Id, job.Outputs[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetJobOutput", output.StatusCode(), output.Body, http.StatusOK)
	if len(output.Body) != job.Outputs[0].Bytes || !bytes.Contains(output.Body, []byte("month")) {
		t.Errorf("GetJobOutput: %d bytes, want %d: %q", len(output.Body), job.Outputs[0].Bytes, output.Body)
	}
}

// checkLambdaRoutes invokes instances with JSON, multipart and batch
// bodies and reads a kept instance.
func checkLambdaRoutes(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()
	invoked, err := api.InvokeLambdaWithResponse(ctx, "seattle-weather", client.InvokeRequest{
		Parameters:              anyValues(map[string]any{"weather": "fog", "year": 2012}),
		Wait:                    ptr("30s"),
		DeleteExecutionOnFinish: ptr(false),
		IdempotencyKey:          ptr("client-test-1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "InvokeLambda", invoked.StatusCode(), invoked.Body, http.StatusOK)
	if invoked.JSON200.State != client.StateCOMPLETED || invoked.JSON200.Instance == nil || invoked.JSON200.Kind != client.KindLambda {
		t.Fatalf("InvokeLambda: %s", invoked.Body)
	}
	inst, err := api.GetInstanceWithResponse(ctx, *invoked.JSON200.Instance)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetInstance", inst.StatusCode(), inst.Body, http.StatusOK)
	if inst.JSON200.Job != invoked.JSON200.Id || inst.JSON200.DeleteExecutionOnFinish || inst.JSON200.ExpiresAt == nil {
		t.Errorf("GetInstance: %s", inst.Body)
	}

	contentType, body := multipartBody(t, "request", `{"wait": "30s"}`, "data")
	uploaded, err := api.InvokeLambdaWithBodyWithResponse(ctx, "client-upload", contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "InvokeLambda multipart", uploaded.StatusCode(), uploaded.Body, http.StatusOK)
	if uploaded.JSON200.Result == nil || uploaded.JSON200.Result.Total != 3 {
		t.Errorf("InvokeLambda multipart: %s", uploaded.Body)
	}

	batch, err := api.InvokeLambdaBatchWithResponse(ctx, "seattle-weather", client.BatchRequest{
		Items: []client.BatchItem{
			{Parameters: anyValues(map[string]any{"year": 2014})},
			{Parameters: anyValues(map[string]any{"year": 2015})},
		},
		Wait: ptr("30s"),
	})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "InvokeLambdaBatch", batch.StatusCode(), batch.Body, http.StatusOK)
	if len(batch.JSON200.Jobs) != 2 {
		t.Errorf("InvokeLambdaBatch: %s", batch.Body)
	}
}

// checkJobRoutes lists jobs, stops one and changes the settings.
func checkJobRoutes(t *testing.T, s *instance, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()
	list, err := api.ListJobsWithResponse(ctx, &client.ListJobsParams{
		State:   &[]client.ListJobsParamsState{client.ListJobsParamsStateCOMPLETED},
		Project: ptr("seattle-weather"),
		Limit:   ptr(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ListJobs", list.StatusCode(), list.Body, http.StatusOK)
	if len(list.JSON200.Jobs) != 2 || list.JSON200.Total < 4 || list.JSON200.Limit != 2 {
		t.Errorf("ListJobs: %d jobs of %d, limit %d", len(list.JSON200.Jobs), list.JSON200.Total, list.JSON200.Limit)
	}

	sleeping, err := api.ExecuteProjectWithResponse(ctx, "client-sleepy", client.ExecuteRequest{})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ExecuteProject client-sleepy", sleeping.StatusCode(), sleeping.Body, http.StatusAccepted)
	s.waitState(sleeping.JSON202.Id.String(), "RUNNING")
	stopped, err := api.StopJobWithResponse(ctx, sleeping.JSON202.Id, client.StopRequest{Reason: ptr("test over")})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "StopJob", stopped.StatusCode(), stopped.Body, http.StatusOK)
	if stopped.JSON200.Stop == nil || stopped.JSON200.Stop.Reason != "test over" {
		t.Errorf("StopJob: %s", stopped.Body)
	}
	if job := waitClientJob(t, api, sleeping.JSON202.Id); job.State != client.StateCANCELLED {
		t.Errorf("stopped job ended %s, want CANCELLED", job.State)
	}

	settings, err := api.GetSettingsWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetSettings", settings.StatusCode(), settings.Body, http.StatusOK)
	updated, err := api.UpdateSettingsWithResponse(ctx, client.SettingsUpdate{QueueLimit: ptr(500)})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "UpdateSettings", updated.StatusCode(), updated.Body, http.StatusOK)
	if updated.JSON200.QueueLimit != 500 || updated.JSON200.ConcurrentJobs != settings.JSON200.ConcurrentJobs {
		t.Errorf("UpdateSettings: %s after %s", updated.Body, settings.Body)
	}
}

// checkWorkflowRoutes covers the Omniscope-style routes.
func checkWorkflowRoutes(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()
	executed, err := api.WorkflowExecuteWithResponse(ctx, "seattle-weather", client.WorkflowExecuteRequest{})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowExecute", executed.StatusCode(), executed.Body, http.StatusOK)
	waitClientJob(t, api, executed.JSON200.JobId)
	state, err := api.WorkflowJobStateWithResponse(ctx, "seattle-weather", executed.JSON200.JobId)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowJobState", state.StatusCode(), state.Body, http.StatusOK)
	if state.JSON200.JobState != client.WorkflowJobStateJobStateCOMPLETED {
		t.Errorf("WorkflowJobState: %s", state.Body)
	}

	request := client.WorkflowLambdaRequest{Params: &client.WorkflowParams{
		Updates:     &[]client.ParamUpdate{{Name: "year", Value: ptr(client.AnyValue(2014))}},
		WaitForIdle: ptr(true),
	}}
	lambda, err := api.WorkflowLambdaExecuteWithResponse(ctx, "seattle-weather", request)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowLambdaExecute", lambda.StatusCode(), lambda.Body, http.StatusOK)
	checkInstanceState(t, api, lambda.JSON200)
	alias, err := api.WorkflowLambdaExecuteAliasWithResponse(ctx, "seattle-weather", request)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowLambdaExecuteAlias", alias.StatusCode(), alias.Body, http.StatusOK)

	execution := `{"params": {"updates": [{"name": "data", "formDataKey": "numbers"}], "waitForIdle": true}}`
	contentType, body := multipartBody(t, "execution", execution, "numbers")
	uploaded, err := api.WorkflowUploadAndExecuteWithBodyWithResponse(ctx, "client-upload", contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowUploadAndExecute", uploaded.StatusCode(), uploaded.Body, http.StatusOK)
	checkInstanceState(t, api, uploaded.JSON200)

	params, err := api.WorkflowListParamsWithResponse(ctx, "seattle-weather")
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowListParams", params.StatusCode(), params.Body, http.StatusOK)
	if len(params.JSON200.ParamValues) != 2 {
		t.Errorf("WorkflowListParams: %s", params.Body)
	}
	updated, err := api.WorkflowUpdateParamsWithResponse(ctx, "seattle-weather", client.UpdateParamsRequest{
		Updates: &[]client.ParamUpdate{{Name: "weather", Value: ptr(client.AnyValue("rain"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowUpdateParams", updated.StatusCode(), updated.Body, http.StatusOK)
	param, err := api.WorkflowGetParamWithResponse(ctx, "seattle-weather", "weather")
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowGetParam", param.StatusCode(), param.Body, http.StatusOK)
	if param.JSON200.Type != client.ParamValueTypeTEXT || param.JSON200.Value == nil || *param.JSON200.Value != "rain" {
		t.Errorf("WorkflowGetParam: %s", param.Body)
	}
}

// checkInstanceState reads the state of a lambda job through the path
// the Omniscope-style response names.
func checkInstanceState(t *testing.T, api *client.ClientWithResponses, lambda *client.WorkflowLambdaResponse) {
	t.Helper()
	project, instance, found := strings.Cut(lambda.LambdaProjectPath, "/instances/")
	if !found {
		t.Fatalf("lambdaProjectPath %q names no instance", lambda.LambdaProjectPath)
	}
	id, err := uuid.Parse(instance)
	if err != nil {
		t.Fatal(err)
	}
	state, err := api.WorkflowInstanceJobStateWithResponse(context.Background(), project, id, lambda.JobId)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "WorkflowInstanceJobState", state.StatusCode(), state.Body, http.StatusOK)
	if state.JSON200.JobState != client.WorkflowJobStateJobStateCOMPLETED {
		data, _ := json.Marshal(state.JSON200)
		t.Errorf("WorkflowInstanceJobState: %s", data)
	}
}
