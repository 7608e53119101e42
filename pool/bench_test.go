package pool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// BenchmarkDispatch measures one scheduling cycle with a deep queue: a job
// finishes, the pool stores its end, dispatches the oldest runnable job
// and runs it, and the benchmark submits a new job so the queue keeps its
// depth. The jobs are spread over waiting/100 locks with 100 jobs each, so
// 99% of them are BLOCKED. With the min-heap of runnable lock lines, the
// time per cycle grows with log(locks), not with the number of waiting
// jobs: compare waiting=1000 with waiting=100000.
func BenchmarkDispatch(b *testing.B) {
	for _, waiting := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("waiting=%d", waiting), func(b *testing.B) {
			benchmarkDispatch(b, waiting, waiting/100)
		})
	}
}

func benchmarkDispatch(b *testing.B, waiting, locks int) {
	runner := &handoffRunner{started: make(chan struct{})}
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 1, QueueLimit: waiting + 1}, pooltest.NewMemoryStore(), runner)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatalf("Start: %v", err)
	}
	defer p.Stop()

	submit := func(i int) {
		lock := fmt.Sprintf("lock-%d", i%locks)
		if _, err := p.Submit(context.Background(), pool.Submission{Project: lock, LockKey: lock}); err != nil {
			b.Fatalf("Submit: %v", err)
		}
	}
	// The first job takes the only slot and waits in handoffRunner until
	// the loop receives from started, so the rest stay queued.
	for i := range waiting + 1 {
		submit(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Receiving lets the running job finish, which dispatches the
		// next one; submitting keeps the queue at its depth.
		<-runner.started
		submit(waiting + 1 + i)
	}
	b.StopTimer()
	b.ReportMetric(float64(p.Internals().Waiting), "waiting")
}

// handoffRunner completes each job as soon as the benchmark loop has
// received from started.
type handoffRunner struct {
	started chan struct{}
}

func (r *handoffRunner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	select {
	case r.started <- struct{}{}:
		return pool.Outcome{}, nil
	case <-ctx.Done():
		return pool.Outcome{}, ctx.Err()
	}
}
