package lambda_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/pool"
)

func TestInstancesRunSideBySide(t *testing.T) {
	b := setup(t, options{gated: true})
	execute := b.post(t, "/api/v1/projects/seattle-weather/execute", nil)
	if execute.status != http.StatusAccepted {
		t.Fatalf("execute status = %d, body %s", execute.status, execute.body)
	}
	var plain pool.Job
	execute.decode(t, &plain)
	if id := b.gate.nextStart(t); id != plain.ID {
		t.Fatalf("first start = %s, want the plain execution %s", id, plain.ID)
	}

	type invocation struct {
		weather string
		year    int
		job     *pool.Job
	}
	var invocations []*invocation
	for _, weather := range []string{"sun", "rain", "fog", "drizzle", "snow"} {
		for year := 2012; year <= 2015; year++ {
			job := b.invoke(t, "seattle-weather", map[string]any{"parameters": map[string]any{"weather": weather, "year": year}}, http.StatusAccepted)
			if job.State == pool.StateBlocked || (job.WaitingFor != nil && job.WaitingFor.Reason == pool.ReasonProjectLock) {
				t.Errorf("lambda %s %d is %s waiting for %+v, want never blocked", weather, year, job.State, job.WaitingFor)
			}
			if job.Kind != pool.KindLambda || job.Instance == nil {
				t.Errorf("lambda %s %d: kind %s, instance %v, want lambda with an instance", weather, year, job.Kind, job.Instance)
			}
			invocations = append(invocations, &invocation{weather: weather, year: year, job: job})
		}
	}
	// A second plain execution still waits for the first one.
	second := b.post(t, "/api/v1/projects/seattle-weather/execute", nil)
	var blocked pool.Job
	second.decode(t, &blocked)
	if blocked.State != pool.StateBlocked {
		t.Errorf("second plain execution is %s, want BLOCKED behind the first", blocked.State)
	}

	// Jobs start in submission order; release each in the order it started.
	want := []string{}
	for _, inv := range invocations {
		want = append(want, inv.job.ID)
	}
	want = append(want, blocked.ID)
	for i, id := range want {
		if got := b.gate.nextStart(t); got != id {
			t.Fatalf("start %d = %s, want %s", i+2, got, id)
		}
		b.gate.releaseOne(t)
	}
	b.gate.releaseOne(t)
	if n := b.gate.maxConcurrent(); n != 2 {
		t.Errorf("at most %d jobs ran at once, want 2", n)
	}

	for _, inv := range invocations {
		job := b.awaitJob(t, inv.job.ID)
		if job.State != pool.StateCompleted {
			t.Fatalf("lambda %s %d ended %s: %+v", inv.weather, inv.year, job.State, job.Error)
		}
		checkWeatherRows(t, job, expectedWeather(t, b.filesDir, inv.weather, inv.year))
	}
}

func TestInvokeWaitReturnsResult(t *testing.T) {
	b := setup(t, options{})
	res := b.post(t, "/api/v1/projects/seattle-weather/lambda", map[string]any{
		"parameters": map[string]any{"weather": "sun", "year": "2013"}, "wait": "30s",
	})
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
	var job pool.Job
	res.decode(t, &job)
	if job.State != pool.StateCompleted {
		t.Fatalf("state = %s, want COMPLETED", job.State)
	}
	if loc := res.header.Get("Location"); loc != "/api/v1/jobs/"+job.ID {
		t.Errorf("Location = %q, want the job's URL", loc)
	}
	checkWeatherRows(t, &job, expectedWeather(t, b.filesDir, "sun", 2013))
	if len(job.Outputs) != 1 || job.Outputs[0].Name != "sun-2013.csv" {
		t.Errorf("outputs = %+v, want sun-2013.csv", job.Outputs)
	}
}

func TestInvokeAsyncFollowsLocation(t *testing.T) {
	b := setup(t, options{})
	res := b.post(t, "/api/v1/projects/seattle-weather/lambda", map[string]any{"parameters": map[string]any{"weather": "fog", "year": 2014}})
	if res.status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", res.status, res.body)
	}
	var queued pool.Job
	res.decode(t, &queued)
	if queued.Instance == nil || *queued.Instance == "" {
		t.Fatal("response has no instance id")
	}
	location := res.header.Get("Location")
	if location != "/api/v1/jobs/"+queued.ID {
		t.Fatalf("Location = %q, want the job's URL", location)
	}

	// Bounded polling of the job's state, as a client would do.
	var job pool.Job
	deadline := time.Now().Add(awaitTimeout)
	for !job.State.Final() {
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after %s", job.State, awaitTimeout)
		}
		b.awaitJob(t, queued.ID) // returns once the job ended
		got := b.get(t, location)
		if got.status != http.StatusOK {
			t.Fatalf("GET %s: status %d", location, got.status)
		}
		got.decode(t, &job)
	}
	if job.State != pool.StateCompleted {
		t.Fatalf("state = %s, want COMPLETED", job.State)
	}
	checkWeatherRows(t, &job, expectedWeather(t, b.filesDir, "fog", 2014))
}

func TestInvokeSnapshotsDefinition(t *testing.T) {
	b := setup(t, options{gated: true})
	job := b.invoke(t, "seattle-weather", map[string]any{
		"parameters": map[string]any{"weather": "snow", "year": 2012}, "deleteExecutionOnFinish": false,
	}, http.StatusAccepted)
	b.gate.nextStart(t)
	// The template changes while the instance runs; the instance does not.
	res := b.do(t, http.MethodDelete, "/api/v1/projects/seattle-weather", "", nil)
	if res.status != http.StatusNoContent {
		t.Fatalf("deleting project: status %d", res.status)
	}
	b.gate.releaseOne(t)
	final := b.awaitJob(t, job.ID)
	if final.State != pool.StateCompleted {
		t.Fatalf("state = %s, want COMPLETED: %+v", final.State, final.Error)
	}
	checkWeatherRows(t, final, expectedWeather(t, b.filesDir, "snow", 2012))

	var inst lambda.InstanceResponse
	got := b.get(t, "/api/v1/instances/"+*job.Instance)
	if got.status != http.StatusOK {
		t.Fatalf("GET instance: status %d, body %s", got.status, got.body)
	}
	got.decode(t, &inst)
	if len(inst.Definition) == 0 || inst.Project != "seattle-weather" || inst.Job != job.ID {
		t.Errorf("instance = %+v, want the definition of seattle-weather and job %s", inst, job.ID)
	}
	if fmt.Sprint(inst.Parameters["weather"]) != "snow" || fmt.Sprint(inst.Parameters["year"]) != "2012" {
		t.Errorf("instance parameters = %v, want snow and 2012", inst.Parameters)
	}
}

func TestIdempotencyKeyQueuesOneJob(t *testing.T) {
	b := setup(t, options{})
	body := map[string]any{"parameters": map[string]any{"weather": "rain", "year": 2015}, "idempotencyKey": "order-42"}
	first := b.invoke(t, "seattle-weather", body, http.StatusAccepted)

	res := b.post(t, "/api/v1/projects/seattle-weather/lambda", body)
	if res.status != http.StatusAccepted {
		t.Fatalf("repeat status = %d, want 202; body %s", res.status, res.body)
	}
	var second pool.Job
	res.decode(t, &second)
	if second.ID != first.ID {
		t.Errorf("repeat returned job %s, want the first job %s", second.ID, first.ID)
	}
	if res.header.Get(lambda.HeaderIdempotentReplayed) != "true" {
		t.Errorf("%s header = %q, want true", lambda.HeaderIdempotentReplayed, res.header.Get(lambda.HeaderIdempotentReplayed))
	}

	waited := b.post(t, "/api/v1/projects/seattle-weather/lambda", map[string]any{
		"parameters": map[string]any{"weather": "rain", "year": 2015}, "idempotencyKey": "order-42", "wait": "30s",
	})
	if waited.status != http.StatusOK && waited.status != http.StatusAccepted {
		t.Errorf("same key with a longer wait: status %d, want the first job; body %s", waited.status, waited.body)
	}
	var third pool.Job
	waited.decode(t, &third)
	if third.ID != first.ID {
		t.Errorf("same key with a longer wait returned job %s, want the first job %s", third.ID, first.ID)
	}
	changed := b.post(t, "/api/v1/projects/seattle-weather/lambda", map[string]any{
		"parameters": map[string]any{"weather": "sun", "year": 2015}, "idempotencyKey": "order-42",
	})
	if changed.status != http.StatusConflict {
		t.Errorf("same key with other parameters: status %d, want 409; body %s", changed.status, changed.body)
	}

	b.awaitJob(t, first.ID)
	var list pool.JobList
	b.get(t, "/api/v1/jobs?project=seattle-weather").decode(t, &list)
	if list.Total != 1 {
		t.Errorf("project has %d jobs, want 1", list.Total)
	}
}
