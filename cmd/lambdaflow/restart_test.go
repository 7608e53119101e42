package main

import (
	"net/http"
	"testing"
)

// TestKilledServerLosesNoJob kills the server while one job runs and two
// wait, then starts it again on the same data directory. Every job must
// end exactly once. The running one is re-queued in its place as attempt
// 2, and the waiting ones run once, in their order.
func TestKilledServerLosesNoJob(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.createSleeper("slow", 1)
	s.createSleeper("fast", 0)

	a := s.execute("slow", nil)
	b := s.execute("fast", nil)
	c := s.execute("seattle-weather", nil)
	s.waitState(a.ID, "RUNNING")
	s.kill()

	s = startServer(t, dir)
	a, b, c = s.waitFinal(a.ID), s.waitFinal(b.ID), s.waitFinal(c.ID)
	for _, j := range []job{a, b, c} {
		if j.State != "COMPLETED" {
			t.Errorf("job %s of %s: state %s, error %+v; want COMPLETED", j.ID, j.Project, j.State, j.Error)
		}
	}
	if a.Attempt != 2 {
		t.Errorf("interrupted job: attempt %d, want 2", a.Attempt)
	}
	if b.Attempt != 1 || c.Attempt != 1 {
		t.Errorf("waiting jobs: attempts %d and %d, want 1 each", b.Attempt, c.Attempt)
	}
	if *a.StartedAt > *b.StartedAt || *b.StartedAt > *c.StartedAt {
		t.Errorf("start order after restart: %s, %s, %s; want submission order", *a.StartedAt, *b.StartedAt, *c.StartedAt)
	}

	var list struct {
		Total int `json:"total"`
	}
	expectStatus(t, s.do("GET", "/api/v1/jobs", nil, &list), http.StatusOK)
	if list.Total != 3 {
		t.Errorf("the server lists %d jobs, want 3", list.Total)
	}
}

// TestJobInterruptedTwiceFails kills the server twice while the same job
// runs; the second time the job fails as INTERRUPTED instead of running a
// third time.
func TestJobInterruptedTwiceFails(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.createSleeper("slow", 3600)

	a := s.execute("slow", nil)
	s.waitState(a.ID, "RUNNING")
	s.kill()

	s = startServer(t, dir)
	a = s.waitJob(a.ID, "running again", func(j job) bool { return j.State == "RUNNING" && j.Attempt == 2 })
	s.kill()

	s = startServer(t, dir)
	a = s.waitFinal(a.ID)
	if a.State != "FAILED" || a.Error == nil || a.Error.Type != "INTERRUPTED" {
		t.Fatalf("job: state %s, error %+v; want FAILED with INTERRUPTED", a.State, a.Error)
	}
}

// TestGracefulShutdownKeepsQueue stops the server with SIGINT while a
// short job runs and another waits: the running job finishes within the
// grace period and the waiting one runs after the next start.
func TestGracefulShutdownKeepsQueue(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.createSleeper("slow", 1)
	s.createSleeper("fast", 0)

	a := s.execute("slow", nil)
	s.waitState(a.ID, "RUNNING")
	b := s.execute("fast", nil)
	s.terminate()

	s = startServer(t, dir)
	if a = s.job(a.ID); a.State != "COMPLETED" {
		t.Fatalf("running job after graceful stop: state %s, want COMPLETED", a.State)
	}
	if b = s.waitFinal(b.ID); b.State != "COMPLETED" || b.Attempt != 1 {
		t.Fatalf("waiting job: state %s attempt %d, want COMPLETED on attempt 1", b.State, b.Attempt)
	}
}
