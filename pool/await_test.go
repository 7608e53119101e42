package pool_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lambdaflow/lambdaflow/pool"
)

// awaitAsync calls Await in a goroutine and returns a channel that
// delivers its result. The test waits on the channel, so the goroutine
// always ends before the test does.
func awaitAsync(ctx context.Context, p *pool.Pool, id string) <-chan awaitResult {
	ch := make(chan awaitResult, 1)
	go func() {
		job, err := p.Await(ctx, id)
		ch <- awaitResult{job, err}
	}()
	return ch
}

type awaitResult struct {
	job *pool.Job
	err error
}

func TestAwaitReturnsFinalRecord(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	first := awaitAsync(awaitContext(t), b.pool, job.ID)
	second := awaitAsync(awaitContext(t), b.pool, job.ID)

	run.Complete(pool.Outcome{Result: &pool.Result{Rows: []map[string]any{{"n": 1}}, Total: 1}})
	for i, ch := range []<-chan awaitResult{first, second} {
		got := <-ch
		if got.err != nil {
			t.Fatalf("Await %d: %v", i, got.err)
		}
		if got.job.State != pool.StateCompleted {
			t.Errorf("Await %d: state = %s, want COMPLETED", i, got.job.State)
		}
		if got.job.Result == nil || got.job.Result.Total != 1 {
			t.Errorf("Await %d: result = %+v, want one row", i, got.job.Result)
		}
		if got.job.FinishedAt == nil {
			t.Errorf("Await %d: finishedAt is null", i)
		}
	}
}

func TestAwaitFinishedJobReturnsAtOnce(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	b.awaitRun(t, job.ID).Fail(errors.New("broken"))
	b.awaitFinal(t, job.ID)

	got, err := b.pool.Await(awaitContext(t), job.ID)
	if err != nil {
		t.Fatalf("Await: %v", err)
	}
	if got.State != pool.StateFailed {
		t.Errorf("state = %s, want FAILED", got.State)
	}
}

func TestAwaitStoppedWaitingJob(t *testing.T) {
	b := setup(t, func(cfg *pool.Config) { cfg.ConcurrentJobs = 1 })
	running := b.submit(t, "a")
	b.awaitRun(t, running.ID)
	queued := b.submit(t, "b")
	ch := awaitAsync(awaitContext(t), b.pool, queued.ID)

	if _, err := b.pool.StopJob(t.Context(), queued.ID, "alice", "not needed"); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	got := <-ch
	if got.err != nil {
		t.Fatalf("Await: %v", got.err)
	}
	if got.job.State != pool.StateCancelled {
		t.Errorf("state = %s, want CANCELLED", got.job.State)
	}
}

func TestAwaitContextEndLeavesJobRunning(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)

	ctx, cancel := context.WithCancel(t.Context())
	ch := awaitAsync(ctx, b.pool, job.ID)
	cancel()
	got := <-ch
	if !errors.Is(got.err, context.Canceled) {
		t.Fatalf("Await error = %v, want context.Canceled", got.err)
	}
	if state := b.job(t, job.ID).State; state != pool.StateRunning {
		t.Errorf("state after the awaiting context ended = %s, want RUNNING", state)
	}

	run.Complete(pool.Outcome{})
	final, err := b.pool.Await(awaitContext(t), job.ID)
	if err != nil {
		t.Fatalf("second Await: %v", err)
	}
	if final.State != pool.StateCompleted {
		t.Errorf("state = %s, want COMPLETED", final.State)
	}
}

func TestAwaitUnknownJob(t *testing.T) {
	b := setup(t)
	_, err := b.pool.Await(awaitContext(t), "0193aaaa-0000-7000-8000-000000000000")
	if !errors.Is(err, pool.ErrJobNotFound) {
		t.Errorf("Await error = %v, want ErrJobNotFound", err)
	}
}
