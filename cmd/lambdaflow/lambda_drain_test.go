package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestWaitedLambdaAnswersOnShutdown checks that an invocation waiting for
// its job gets the job, 202, when the server begins to shut down, instead
// of losing its connection when the server closes it.
func TestWaitedLambdaAnswersOnShutdown(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("sleepy", 600)
	running := s.execute("sleepy", nil)
	s.waitState(running.ID, "RUNNING")

	type answer struct {
		status int
		job    job
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := http.Post(s.base+"/api/v1/projects/sleepy/lambda", "application/json", strings.NewReader(`{"wait":"60s"}`))
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var a answer
		a.status = resp.StatusCode
		a.err = json.NewDecoder(resp.Body).Decode(&a.job)
		answers <- a
	}()
	// The invocation's job waits for the only slot once it is queued.
	s.waitJob(running.ID, "a queued lambda job", func(job) bool {
		var list struct {
			Jobs []job `json:"jobs"`
		}
		s.do("GET", "/api/v1/jobs?state=QUEUED", nil, &list)
		return len(list.Jobs) == 1
	})

	s.terminate()
	a := <-answers
	if a.err != nil {
		t.Fatalf("waited invocation got no answer: %v", a.err)
	}
	if a.status != http.StatusAccepted {
		t.Errorf("status = %d, want 202", a.status)
	}
	if a.job.ID == "" || a.job.State != "QUEUED" {
		t.Errorf("job = %+v, want the QUEUED lambda job", a.job)
	}
}
