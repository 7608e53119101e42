package pooltest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/lambdaflow/lambdaflow/pool"
)

// Runner is a pool.Runner whose runs wait until the test ends them with
// Run.Complete, Run.Fail or Run.Panic. A run whose context ends returns
// the context's error at once, unless Run.HoldAfterCancel was called. The
// zero value is not usable, so call NewRunner.
type Runner struct {
	// mu guards every field below.
	mu   sync.Mutex
	runs []*Run
	// next is the index in runs of the run Next returns next.
	next int
	// changed is closed and replaced whenever a run starts.
	changed chan struct{}
}

// NewRunner returns a runner with no runs.
func NewRunner() *Runner {
	return &Runner{changed: make(chan struct{})}
}

var _ pool.Runner = (*Runner)(nil)

// Run registers a run of job and waits until the test ends it.
func (r *Runner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	run := &Run{
		Job:      job,
		ctx:      ctx,
		update:   update,
		end:      make(chan ending, 1),
		returned: make(chan struct{}),
	}
	defer close(run.returned)
	r.mu.Lock()
	r.runs = append(r.runs, run)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	var e ending
	select {
	case e = <-run.end:
	case <-ctx.Done():
		if !run.hold.Load() {
			return pool.Outcome{}, ctx.Err()
		}
		e = <-run.end
	}
	if e.panicValue != nil {
		panic(e.panicValue)
	}
	return e.outcome, e.err
}

// EndAll makes every run that has started and not ended return err.
func (r *Runner) EndAll(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.runs {
		run.Fail(err)
	}
}

// Next waits for the next run in start order that Next has not returned
// yet, or returns ctx's error.
func (r *Runner) Next(ctx context.Context) (*Run, error) {
	for {
		r.mu.Lock()
		if r.next < len(r.runs) {
			run := r.runs[r.next]
			r.next++
			r.mu.Unlock()
			return run, nil
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Await waits for the latest run of job id to start, or returns ctx's
// error.
func (r *Runner) Await(ctx context.Context, id string) (*Run, error) {
	for {
		r.mu.Lock()
		for i := len(r.runs) - 1; i >= 0; i-- {
			if r.runs[i].Job.ID == id {
				run := r.runs[i]
				r.mu.Unlock()
				return run, nil
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Calls returns the job ids of all runs in start order.
func (r *Runner) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.runs))
	for i, run := range r.runs {
		ids[i] = run.Job.ID
	}
	return ids
}

// Run is one call of Runner.Run.
type Run struct {
	// Job is the copy of the job the pool passed.
	Job *pool.Job

	ctx      context.Context
	update   func(pool.BlockRun)
	end      chan ending
	returned chan struct{}
	hold     atomic.Bool
}

// HoldAfterCancel keeps the run waiting for Complete, Fail or Panic after
// its context ends, so that a test can watch its job stay CANCELLING.
func (r *Run) HoldAfterCancel() {
	r.hold.Store(true)
}

// ending is the result a test gives a run.
type ending struct {
	outcome    pool.Outcome
	err        error
	panicValue any
}

// Complete makes the run return outcome and no error.
func (r *Run) Complete(outcome pool.Outcome) {
	r.finish(ending{outcome: outcome})
}

// Fail makes the run return err.
func (r *Run) Fail(err error) {
	r.finish(ending{err: err})
}

// Panic makes the run panic with value.
func (r *Run) Panic(value any) {
	r.finish(ending{panicValue: value})
}

// finish hands e to the run unless the run already ended.
func (r *Run) finish(e ending) {
	select {
	case r.end <- e:
	default:
	}
}

// Update reports a block run to the pool, as a real runner does when a
// block changes state.
func (r *Run) Update(block pool.BlockRun) {
	r.update(block)
}

// Context returns the context the pool passed to the run.
func (r *Run) Context() context.Context {
	return r.ctx
}

// Returned is closed once the run has returned or panicked.
func (r *Run) Returned() <-chan struct{} {
	return r.returned
}
