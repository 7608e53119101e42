package pool_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

func TestShutdownWaitsForRunningJobs(t *testing.T) {
	b := setup(t)
	running := b.submit(t, "a")
	run := b.awaitRun(t, running.ID)
	waiting := b.submit(t, "b")

	result := make(chan error, 1)
	go func() { result <- b.pool.Shutdown(context.Background()) }()
	b.logs.await(t, "pool shutting down")

	if _, err := b.pool.Submit(t.Context(), pool.Submission{Project: "c"}); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Submit during shutdown returned %v, want ErrClosed", err)
	}
	run.Complete(pool.Outcome{})
	if err := <-result; err != nil {
		t.Errorf("Shutdown returned %v, want nil after the job ended on its own", err)
	}
	if got := b.awaitFinal(t, running.ID).State; got != pool.StateCompleted {
		t.Errorf("running job ended %s, want COMPLETED", got)
	}
	stored, err := b.store.GetJob(t.Context(), waiting.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.State != pool.StateQueued {
		t.Errorf("waiting job is %s in the store after shutdown, want QUEUED", stored.State)
	}
	if calls := b.runner.Calls(); len(calls) != 1 {
		t.Errorf("runs = %v, want only the job that ran before shutdown", calls)
	}
}

func TestShutdownCancelsJobsAfterDeadline(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	b.awaitRun(t, job.ID)

	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- b.pool.Shutdown(ctx) }()
	b.logs.await(t, "pool shutting down")
	cancel()

	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown returned %v, want an error wrapping context.Canceled", err)
	}
	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateCancelled {
		t.Fatalf("job ended %s, want CANCELLED", final.State)
	}
	if final.Stop == nil || final.Stop.By != "system" || final.Stop.Reason != "server shutdown" {
		t.Errorf("stop record = %+v, want by system for server shutdown", final.Stop)
	}
	if got := b.pool.Internals(); got.Running != 0 || got.Lines != 0 {
		t.Errorf("internals = %+v after shutdown, want no slot or lock held", got)
	}
}

func TestStopIsSafeToRepeat(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	b.awaitRun(t, job.ID)

	b.pool.Stop()
	b.pool.Stop()
	if err := b.pool.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Stop returned %v, want nil", err)
	}
	if got := b.awaitFinal(t, job.ID).State; got != pool.StateCancelled {
		t.Errorf("job ended %s, want CANCELLED", got)
	}
	if err := b.pool.Start(t.Context()); err == nil {
		t.Error("Start after Stop returned no error")
	}
}

func TestStartTwiceFails(t *testing.T) {
	b := setup(t)
	if err := b.pool.Start(t.Context()); err == nil {
		t.Error("second Start returned no error")
	}
}

func TestStopBeforeStart(t *testing.T) {
	p, err := pool.New(pool.Config{}, pooltest.NewMemoryStore(), pooltest.NewRunner())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := p.Submit(t.Context(), pool.Submission{Project: "a"}); err == nil {
		t.Error("Submit before Start returned no error")
	}
	p.Stop()
}

func TestNewValidatesConfig(t *testing.T) {
	store, runner := pooltest.NewMemoryStore(), pooltest.NewRunner()
	for _, tc := range []struct {
		name string
		cfg  pool.Config
	}{
		{"negative ConcurrentJobs", pool.Config{ConcurrentJobs: -1}},
		{"negative MaxConcurrentJobs", pool.Config{MaxConcurrentJobs: -2}},
		{"negative QueueLimit", pool.Config{QueueLimit: -3}},
		{"BaseURL without scheme", pool.Config{BaseURL: "example.com"}},
	} {
		if _, err := pool.New(tc.cfg, store, runner); err == nil {
			t.Errorf("%s: New returned no error", tc.name)
		}
	}
	if _, err := pool.New(pool.Config{}, nil, runner); err == nil {
		t.Error("New with a nil store returned no error")
	}
	if _, err := pool.New(pool.Config{}, store, nil); err == nil {
		t.Error("New with a nil runner returned no error")
	}
}

func TestConfigDefaults(t *testing.T) {
	p, err := pool.New(pool.Config{}, pooltest.NewMemoryStore(), pooltest.NewRunner())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	settings := p.Settings()
	if settings.RequestedConcurrentJobs != pool.DefaultConcurrentJobs {
		t.Errorf("RequestedConcurrentJobs = %d, want %d", settings.RequestedConcurrentJobs, pool.DefaultConcurrentJobs)
	}
	if settings.QueueLimit != pool.DefaultQueueLimit {
		t.Errorf("QueueLimit = %d, want %d", settings.QueueLimit, pool.DefaultQueueLimit)
	}
	if settings.MaxConcurrentJobs < 1 {
		t.Errorf("MaxConcurrentJobs = %d, want at least 1", settings.MaxConcurrentJobs)
	}
}
