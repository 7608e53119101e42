package pool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// outageStore is a MemoryStore whose UpdateJobs fails while down is set,
// as a store whose database is unreachable.
type outageStore struct {
	*pooltest.MemoryStore
	down atomic.Bool
}

func (s *outageStore) UpdateJobs(ctx context.Context, jobs ...*pool.Job) error {
	if s.down.Load() {
		return errors.New("database unreachable")
	}
	return s.MemoryStore.UpdateJobs(ctx, jobs...)
}

func TestUnstoredEndIsRetried(t *testing.T) {
	ctx := context.Background()
	store := &outageStore{MemoryStore: pooltest.NewMemoryStore()}
	runner := pooltest.NewRunner()
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 1}, store, runner)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	job, err := p.Submit(ctx, pool.Submission{Project: "x"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := runner.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	run.Complete(pool.Outcome{})
	ended, err := p.Await(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ended.State != pool.StateCompleted {
		t.Fatalf("awaited state = %s, want COMPLETED", ended.State)
	}

	// While the store is down the pool shows the end it remembers.
	if got, err := p.Job(ctx, job.ID); err != nil || got.State != pool.StateCompleted {
		t.Errorf("Job during the outage = %v, %v; want COMPLETED", got, err)
	}
	if _, err := p.StopJob(ctx, job.ID, "test", "late stop"); !errors.Is(err, pool.ErrJobFinished) {
		t.Errorf("StopJob during the outage = %v, want ErrJobFinished", err)
	}
	if stored, _ := store.GetJob(ctx, job.ID); stored.State != pool.StateRunning {
		t.Fatalf("stored state during the outage = %s, want the stale RUNNING", stored.State)
	}

	store.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, err := store.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.State == pool.StateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored state is still %s 10s after the store came back", stored.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
