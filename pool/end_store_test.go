package pool_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// TestUnstorableResultFailsJob completes a job with a result that JSON
// cannot encode: the job must end FAILED in the store, not stay RUNNING.
func TestUnstorableResultFailsJob(t *testing.T) {
	ctx := context.Background()
	runner := pooltest.NewRunner()
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 1}, newSQLStore(t), runner)
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
	run.Complete(pool.Outcome{Result: &pool.Result{Rows: []map[string]any{{"r": math.Inf(1)}}, Total: 1}})
	got, err := p.Await(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != pool.StateFailed {
		t.Errorf("state = %s, want FAILED", got.State)
	}
	stored, err := p.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != pool.StateFailed || stored.Error == nil || stored.Error.Type != pool.ErrorInternal {
		t.Errorf("stored job: state %s, error %+v; want FAILED with INTERNAL", stored.State, stored.Error)
	}
}

func TestReserveChecksQueueRoom(t *testing.T) {
	ctx := context.Background()
	runner := pooltest.NewRunner()
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 1, QueueLimit: 3}, pooltest.NewMemoryStore(), runner)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		runner.EndAll(nil)
		p.Stop()
	}()

	for _, lock := range []string{"a", "b", "c"} {
		if _, err := p.Submit(ctx, pool.Submission{Project: lock}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runner.Next(ctx); err != nil {
		t.Fatal(err)
	}
	// One job runs and two wait, so one more fits.
	if err := p.Reserve(1, 0); err != nil {
		t.Errorf("Reserve(1, 0) with room for one: %v", err)
	}
	var full *pool.QueueFullError
	if err := p.Reserve(2, 0); !errors.As(err, &full) {
		t.Errorf("Reserve(2, 0) with room for one: %v, want a QueueFullError", err)
	}
}
