package lambda_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/pool"
)

func TestKeptInstanceExpires(t *testing.T) {
	b := setup(t, options{config: lambda.Config{InstanceRetention: time.Hour}})
	job := b.invoke(t, "seattle-weather", map[string]any{
		"parameters": map[string]any{"weather": "sun", "year": 2014}, "wait": "30s", "deleteExecutionOnFinish": false,
	}, http.StatusOK)
	path := "/api/v1/instances/" + *job.Instance
	if err := b.service.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}

	res := b.get(t, path)
	if res.status != http.StatusOK {
		t.Fatalf("GET instance: status %d, body %s", res.status, res.body)
	}
	var inst lambda.InstanceResponse
	res.decode(t, &inst)
	if inst.State != pool.StateCompleted || inst.Job != job.ID || len(inst.Outputs) != 1 || inst.ExpiresAt == nil {
		t.Errorf("instance = %+v, want COMPLETED job %s with one output and an expiry", inst, job.ID)
	}

	b.advanceClock(59 * time.Minute)
	if err := b.service.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if status := b.get(t, path).status; status != http.StatusOK {
		t.Errorf("GET instance before its retention ended: status %d, want 200", status)
	}

	b.advanceClock(2 * time.Minute)
	if err := b.service.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	gone := b.get(t, path)
	if gone.status != http.StatusNotFound {
		t.Errorf("GET instance after its retention: status %d, want 404", gone.status)
	}
	var problem httpapi.Problem
	gone.decode(t, &problem)
	if problem.Code != lambda.CodeInstanceNotFound {
		t.Errorf("code = %s, want %s", problem.Code, lambda.CodeInstanceNotFound)
	}
	checkJobRemains(t, b, job.ID, "sun-2014.csv")
}

func TestInstanceRemovedWhenJobEnds(t *testing.T) {
	b := setup(t, options{})
	job := b.invoke(t, "seattle-weather", map[string]any{"parameters": map[string]any{"weather": "rain", "year": 2012}, "wait": "30s"}, http.StatusOK)
	// The watcher removes the instance when the job ends; a sweep does
	// the same at a known time.
	if err := b.service.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if status := b.get(t, "/api/v1/instances/"+*job.Instance).status; status != http.StatusNotFound {
		t.Errorf("GET instance after its job ended: status %d, want 404", status)
	}
	checkJobRemains(t, b, job.ID, "rain-2012.csv")
}

// checkJobRemains checks that the job record, its result and its output
// file are still there.
func checkJobRemains(t *testing.T, b *bundle, id, output string) {
	t.Helper()
	res := b.get(t, "/api/v1/jobs/"+id)
	if res.status != http.StatusOK {
		t.Fatalf("GET job: status %d", res.status)
	}
	var job pool.Job
	res.decode(t, &job)
	if job.Result == nil || len(job.Result.Rows) == 0 {
		t.Errorf("job %s lost its result", id)
	}
	if got := b.get(t, "/api/v1/jobs/"+id+"/outputs/"+output); got.status != http.StatusOK || len(got.body) == 0 {
		t.Errorf("GET output %s: status %d with %d bytes, want 200 with the file", output, got.status, len(got.body))
	}
}

func TestBatchRejectsBadItem(t *testing.T) {
	b := setup(t, options{})
	items := []map[string]any{}
	for _, year := range []any{2012, 2013, 2014, 2011, "2015"} {
		items = append(items, map[string]any{"parameters": map[string]any{"year": year}})
	}
	res := b.post(t, "/api/v1/projects/seattle-weather/lambda/batch", map[string]any{"items": items})
	if res.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422; body %s", res.status, res.body)
	}
	var problem httpapi.Problem
	res.decode(t, &problem)
	if len(problem.Errors) != 1 || problem.Errors[0].Field != "items[3].parameters.year" {
		t.Errorf("errors = %+v, want one for items[3].parameters.year", problem.Errors)
	}
	var list pool.JobList
	b.get(t, "/api/v1/jobs?project=seattle-weather").decode(t, &list)
	if list.Total != 0 {
		t.Errorf("%d jobs were queued by a rejected batch, want 0", list.Total)
	}

	tooMany := make([]map[string]any, 3)
	for i := range tooMany {
		tooMany[i] = map[string]any{"parameters": map[string]any{}}
	}
	small := setup(t, options{config: lambda.Config{MaxBatch: 2}})
	if status := small.post(t, "/api/v1/projects/seattle-weather/lambda/batch", map[string]any{"items": tooMany}).status; status != http.StatusUnprocessableEntity {
		t.Errorf("batch over MaxBatch: status %d, want 422", status)
	}
}

func TestBatchWaitReturnsResults(t *testing.T) {
	b := setup(t, options{})
	sets := []struct {
		weather string
		year    int
	}{{"sun", 2012}, {"rain", 2013}, {"fog", 2014}, {"drizzle", 2015}}
	items := []map[string]any{}
	for _, s := range sets {
		items = append(items, map[string]any{"parameters": map[string]any{"weather": s.weather, "year": s.year}})
	}
	res := b.post(t, "/api/v1/projects/seattle-weather/lambda/batch", map[string]any{"items": items, "wait": "30s"})
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
	var batch lambda.BatchResponse
	res.decode(t, &batch)
	if len(batch.Jobs) != len(sets) {
		t.Fatalf("%d jobs, want %d", len(batch.Jobs), len(sets))
	}
	for i, job := range batch.Jobs {
		if job.State != pool.StateCompleted {
			t.Errorf("job %d is %s, want COMPLETED", i, job.State)
			continue
		}
		checkWeatherRows(t, job, expectedWeather(t, b.filesDir, sets[i].weather, sets[i].year))
	}
}

// uploadProject reads the file given as its file parameter.
const uploadProject = `{"name": "upload", "parameters": [{"name": "data", "type": "file", "required": true}],
  "blocks": [{"name": "load", "type": "csv.read", "options": {"path": "${data}"}}], "result": "load"}`

// multipartBody builds a multipart invocation with one file part.
func multipartBody(t *testing.T, request, part, fileName string, content []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("request", request); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile(part, fileName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), &buf
}

func TestUploadFeedsFileParameter(t *testing.T) {
	b := setup(t, options{config: lambda.Config{InstanceRetention: time.Hour}})
	b.createProject(t, uploadProject)
	contentType, body := multipartBody(t, `{"wait": "30s", "deleteExecutionOnFinish": false}`, "data", "in.csv", []byte("city,n\nOslo,1\nLima,2\n"))
	res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda", contentType, body)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
	var job pool.Job
	res.decode(t, &job)
	if job.State != pool.StateCompleted {
		t.Fatalf("state = %s: %+v", job.State, job.Error)
	}
	if job.Result == nil || job.Result.Total != 2 || job.Result.Rows[1]["city"] != "Lima" {
		t.Errorf("result = %+v, want the two uploaded rows", job.Result)
	}
	stored := filepath.Join(b.filesDir, ".instances", *job.Instance, "data", "in.csv")
	if _, err := os.Stat(stored); err != nil {
		t.Errorf("uploaded file not stored: %v", err)
	}
	if want := ".instances/" + *job.Instance + "/data/in.csv"; job.Parameters["data"] != want {
		t.Errorf("data = %v, want %s", job.Parameters["data"], want)
	}

	b.advanceClock(2 * time.Hour)
	if err := b.service.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(stored))); !os.IsNotExist(err) {
		t.Errorf("instance directory still exists after its retention: %v", err)
	}
}

func TestUploadRejectsBadParts(t *testing.T) {
	b := setup(t, options{config: lambda.Config{MaxUploadBytes: 1024}})
	b.createProject(t, uploadProject)

	contentType, body := multipartBody(t, `{}`, "data", "big.csv", []byte("a\n"+strings.Repeat("1\n", 1000)))
	if res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda", contentType, body); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over MaxUploadBytes: status %d, want 413; body %s", res.status, res.body)
	}
	contentType, body = multipartBody(t, `{}`, "other", "in.csv", []byte("a\n1\n"))
	res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda", contentType, body)
	if res.status != http.StatusUnprocessableEntity {
		t.Fatalf("upload for an unknown parameter: status %d, want 422; body %s", res.status, res.body)
	}
	var problem httpapi.Problem
	res.decode(t, &problem)
	fields := map[string]bool{}
	for _, e := range problem.Errors {
		fields[e.Field] = true
	}
	if !fields["parameters.other"] || !fields["parameters.data"] {
		t.Errorf("errors = %+v, want parameters.other and the missing parameters.data", problem.Errors)
	}
	entries, _ := os.ReadDir(filepath.Join(b.filesDir, ".instances"))
	if len(entries) != 0 {
		t.Errorf("rejected uploads left %d instance directories", len(entries))
	}
}

func TestUploadShortensLongFileName(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, uploadProject)
	long := strings.Repeat("f", 300) + ".csv"
	contentType, body := multipartBody(t, `{"wait": "30s"}`, "data", long, []byte("city,n\nOslo,1\n"))
	res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda", contentType, body)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
	var job pool.Job
	res.decode(t, &job)
	if job.State != pool.StateCompleted {
		t.Fatalf("state = %s: %+v", job.State, job.Error)
	}
	name := filepath.Base(job.Parameters["data"].(string))
	if len(name) > 255 || !strings.HasSuffix(name, ".csv") {
		t.Errorf("stored name %q is %d bytes; want at most 255 ending in .csv", name, len(name))
	}
}

func TestUploadRejectsRepeatedRequestField(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, uploadProject)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("request", `{"wait": "1s"}`)
	w.WriteField("request", `{"deleteExecutionOnFinish": false}`)
	w.Close()
	res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda", w.FormDataContentType(), &buf)
	if res.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400; body %s", res.status, res.body)
	}
}

func TestFileParameterCannotReadOtherUploads(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, uploadProject)
	for _, value := range []string{".instances/x/data/in.csv", "./.instances/x", "a/../.instances/x/in.csv"} {
		res := b.post(t, "/api/v1/projects/upload/lambda", map[string]any{"parameters": map[string]any{"data": value}})
		if res.status != http.StatusUnprocessableEntity {
			t.Errorf("data = %q: status %d, want 422; body %s", value, res.status, res.body)
		}
	}
}

func TestUploadReadsRequestSentAsFilePart(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, uploadProject)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	rw, _ := w.CreateFormFile("request", "blob")
	rw.Write([]byte(`{"wait": "30s"}`))
	fw, _ := w.CreateFormFile("data", "in.csv")
	fw.Write([]byte("city,n\nOslo,1\n"))
	w.Close()
	res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda", w.FormDataContentType(), &buf)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
}

func TestUploadRejectsBodyWithoutParts(t *testing.T) {
	b := setup(t, options{})
	b.createProject(t, uploadProject)
	bodies := map[string]string{
		"text under a multipart type": "garbage",
		"only the closing boundary":   "--xyz--\r\n",
	}
	for name, body := range bodies {
		res := b.do(t, http.MethodPost, "/api/v1/projects/upload/lambda",
			"multipart/form-data; boundary=xyz", strings.NewReader(body))
		if res.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400; body %s", name, res.status, res.body)
		}
	}
}

func TestWaitedInvocationSettlesInstance(t *testing.T) {
	b := setup(t, options{config: lambda.Config{InstanceRetention: time.Hour}})
	for i := range 10 {
		kept := b.invoke(t, "seattle-weather", map[string]any{
			"parameters": map[string]any{"weather": "sun", "year": 2014}, "wait": "30s", "deleteExecutionOnFinish": false,
		}, http.StatusOK)
		res := b.get(t, "/api/v1/instances/"+*kept.Instance)
		var inst lambda.InstanceResponse
		res.decode(t, &inst)
		if inst.ExpiresAt == nil {
			t.Fatalf("round %d: kept instance read right after the response has no expiry: %s", i, res.body)
		}

		removed := b.invoke(t, "seattle-weather", map[string]any{
			"parameters": map[string]any{"weather": "sun", "year": 2014}, "wait": "30s",
		}, http.StatusOK)
		if status := b.get(t, "/api/v1/instances/"+*removed.Instance).status; status != http.StatusNotFound {
			t.Fatalf("round %d: instance read right after the response: status %d, want 404", i, status)
		}
	}
}

func TestActiveInstanceReadFromJob(t *testing.T) {
	b := setup(t, options{gated: true})
	job := b.invoke(t, "seattle-weather", map[string]any{
		"parameters": map[string]any{"weather": "fog", "year": 2013},
	}, http.StatusAccepted)
	b.gate.nextStart(t)

	res := b.get(t, "/api/v1/instances/"+*job.Instance)
	if res.status != http.StatusOK {
		t.Fatalf("GET running instance: status %d, body %s", res.status, res.body)
	}
	var inst lambda.InstanceResponse
	res.decode(t, &inst)
	if inst.ID != *job.Instance || inst.Job != job.ID || inst.Project != "seattle-weather" {
		t.Errorf("instance = %+v, want instance %s of job %s in seattle-weather", inst, *job.Instance, job.ID)
	}
	if !inst.DeleteExecutionOnFinish {
		t.Error("instance deleteExecutionOnFinish = false, want true")
	}
	if len(inst.Definition) == 0 {
		t.Error("instance has no definition")
	}
	if got := inst.Parameters["weather"]; got != "fog" {
		t.Errorf("instance parameter weather = %v, want fog", got)
	}
	if inst.State != pool.StateRunning {
		t.Errorf("instance state = %s, want RUNNING", inst.State)
	}

	b.gate.releaseOne(t)
	if final := b.awaitJob(t, job.ID); final.State != pool.StateCompleted {
		t.Fatalf("state = %s, want COMPLETED", final.State)
	}
	if status := b.get(t, "/api/v1/instances/"+*job.Instance).status; status != http.StatusNotFound {
		t.Errorf("GET instance after its job ended: status %d, want 404", status)
	}
}
