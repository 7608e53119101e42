package pool_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// eventLog records the events of a pool's observer.
type eventLog struct {
	// mu guards events.
	mu     sync.Mutex
	events []pool.Event
}

func (l *eventLog) observe(e pool.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// of returns the events of job id as "job STATE" and "BLOCK STATE"
// strings, in order.
func (l *eventLog) of(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if e.JobID != id {
			continue
		}
		if e.Type == pool.EventJob {
			out = append(out, "job "+e.State)
		} else {
			out = append(out, e.Block+" "+e.State)
		}
	}
	return out
}

// startObservedPool starts a pool on store with an observer registered
// before Start.
func startObservedPool(t *testing.T, store pool.Store) (*pool.Pool, *pooltest.Runner, *eventLog) {
	t.Helper()
	runner := pooltest.NewRunner()
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 4}, store, runner)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	log := &eventLog{}
	p.Observe(log.observe)
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(p.Stop)
	t.Cleanup(func() { runner.EndAll(errors.New("test ended")) })
	return p, runner, log
}

func TestEventsFollowJobLifecycle(t *testing.T) {
	p, runner, log := startObservedPool(t, pooltest.NewMemoryStore())
	a := submitTo(t, p, "x", 0)
	b := submitTo(t, p, "x", 0)
	run, err := runner.Await(awaitContext(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}

	start := timestamp.Ptr(time.Now())
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockRunning, StartedAt: start})
	ms := int64(5)
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockCompleted, StartedAt: start,
		FinishedAt: timestamp.Ptr(time.Now()), DurationMs: &ms})
	run.Complete(pool.Outcome{})
	if _, err := p.Await(awaitContext(t), a.ID); err != nil {
		t.Fatal(err)
	}
	runB, err := runner.Await(awaitContext(t), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	runB.HoldAfterCancel()
	if _, err := p.StopJob(t.Context(), b.ID, "test", "done"); err != nil {
		t.Fatal(err)
	}
	runB.Fail(errors.New("stopped"))
	if _, err := p.Await(awaitContext(t), b.ID); err != nil {
		t.Fatal(err)
	}

	wantA := []string{"job QUEUED", "job RUNNING", "load RUNNING", "load COMPLETED", "save SKIPPED", "job COMPLETED"}
	if got := log.of(a.ID); !slices.Equal(got, wantA) {
		t.Errorf("events of the first job:\n got %q\nwant %q", got, wantA)
	}
	wantB := []string{"job BLOCKED", "job QUEUED", "job RUNNING", "job CANCELLING",
		"load SKIPPED", "save SKIPPED", "job CANCELLED"}
	if got := log.of(b.ID); !slices.Equal(got, wantB) {
		t.Errorf("events of the second job:\n got %q\nwant %q", got, wantB)
	}
}

func TestEventsCarryJobFields(t *testing.T) {
	p, runner, log := startObservedPool(t, pooltest.NewMemoryStore())
	a := submitTo(t, p, "x", 0)
	run, err := runner.Await(awaitContext(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	ms := int64(7)
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockCompleted, DurationMs: &ms})
	run.Complete(pool.Outcome{})
	if _, err := p.Await(awaitContext(t), a.ID); err != nil {
		t.Fatal(err)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	var final, block *pool.Event
	for i, e := range log.events {
		switch {
		case e.Type == pool.EventJob && e.State == string(pool.StateCompleted):
			final = &log.events[i]
		case e.Type == pool.EventBlock && e.Block == "load":
			block = &log.events[i]
		}
	}
	if final == nil || block == nil {
		t.Fatalf("events lack the final job event or the block event: %+v", log.events)
	}
	if final.Project != "x" || final.StartedAt == nil || final.FinishedAt == nil || final.Attempt != 1 {
		t.Errorf("final job event = %+v, want project x, start, finish and attempt 1", *final)
	}
	if block.BlockType != "csv.read" || block.DurationMs == nil || *block.DurationMs != 7 {
		t.Errorf("block event = %+v, want type csv.read and duration 7ms", *block)
	}
}

func TestEventsReportRecoveredJobs(t *testing.T) {
	store := pooltest.NewMemoryStore()
	running := storedJob(1, "x", pool.StateRunning, 1)
	running.StartedAt = timestamp.Ptr(time.Now())
	running.Blocks[0].State = pool.BlockCompleted
	queued := storedJob(2, "y", pool.StateQueued, 1)
	cancelling := storedJob(3, "z", pool.StateCancelling, 1)
	for _, job := range []*pool.Job{running, queued, cancelling} {
		if err := store.InsertJob(t.Context(), job); err != nil {
			t.Fatalf("InsertJob: %v", err)
		}
	}

	_, runner, log := startObservedPool(t, store)
	if _, err := runner.Await(awaitContext(t), running.ID); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		job  *pool.Job
		want []string
	}{
		{running, []string{"load PENDING", "job QUEUED", "job RUNNING"}},
		{queued, []string{"job QUEUED"}},
		{cancelling, []string{"load SKIPPED", "save SKIPPED", "job CANCELLED"}},
	} {
		if got := log.of(c.job.ID); !slices.Equal(got, c.want) {
			t.Errorf("events of the stored %s job:\n got %q\nwant %q", c.job.State, got, c.want)
		}
	}
}

func TestSnapshotListsQueueOrder(t *testing.T) {
	p, runner, _ := startObservedPool(t, pooltest.NewMemoryStore())
	running := submitTo(t, p, "x", 0)
	if _, err := runner.Await(awaitContext(t), running.ID); err != nil {
		t.Fatal(err)
	}
	blocked := submitTo(t, p, "x", 0)
	queued := submitTo(t, p, "y", 0)
	second := submitTo(t, p, "x", 0)

	snap := p.Snapshot(10)
	wantCounts := pool.Counts{Running: 1, Queued: 1, Blocked: 2, ConcurrentJobs: 1}
	if snap.Counts != wantCounts {
		t.Errorf("snapshot counts = %+v, want %+v", snap.Counts, wantCounts)
	}
	var ids []string
	for _, j := range snap.Waiting {
		ids = append(ids, fmt.Sprintf("%s@%d", j.ID, *j.Position))
	}
	want := []string{blocked.ID + "@1", queued.ID + "@2", second.ID + "@3"}
	if !slices.Equal(ids, want) {
		t.Errorf("waiting = %q, want %q", ids, want)
	}
	if len(snap.Running) != 1 || snap.Running[0].ID != running.ID {
		t.Errorf("running = %v, want only %s", snap.Running, running.ID)
	}
	if got := p.Snapshot(1).Waiting; len(got) != 1 || got[0].ID != blocked.ID {
		t.Errorf("Snapshot(1) lists %d waiting jobs, want the first only", len(got))
	}
	if got := p.Counts(); got != wantCounts {
		t.Errorf("Counts() = %+v, want %+v", got, wantCounts)
	}
}
