package pool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// TestPoolProperties drives a pool through random submissions on a few
// locks, runner completions, failures and panics, stops and limit changes,
// and checks the scheduling rules after every step.
func TestPoolProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := newPoolModel(rt)
		rt.Repeat(map[string]func(*rapid.T){
			"submit":   m.submit,
			"complete": m.complete,
			"fail":     m.fail,
			"panic":    m.panic,
			"stop":     m.stop,
			"limit":    m.setLimit,
			"":         m.check,
		})
		m.drain(rt)
	})
}

// poolModel is the state a property run tracks beside the pool.
type poolModel struct {
	pool            *pool.Pool
	runner          *checkingRunner
	finals          *finalLog
	startViolations func() []string
	queueLimit      int
	submitted       []string
	// ceiling is the most jobs that may run: the limit, or more while
	// jobs started under a higher limit still run.
	ceiling int
}

func newPoolModel(rt *rapid.T) *poolModel {
	m := &poolModel{
		runner:     newCheckingRunner(),
		finals:     newFinalLog(),
		queueLimit: rapid.IntRange(1, 8).Draw(rt, "queueLimit"),
		ceiling:    1,
	}
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 3, QueueLimit: m.queueLimit}, pooltest.NewMemoryStore(), m.runner)
	if err != nil {
		rt.Fatalf("New: %v", err)
	}
	p.OnFinal(m.finals.record)
	m.startViolations = p.CheckStarts()
	if err := p.Start(context.Background()); err != nil {
		rt.Fatalf("Start: %v", err)
	}
	m.pool = p
	rt.Cleanup(p.Stop)
	rt.Cleanup(func() { m.runner.EndAll(errors.New("property run ended")) })
	return m
}

func (m *poolModel) submit(rt *rapid.T) {
	lock := rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(rt, "lock")
	waiting := m.pool.Internals().Waiting
	job, err := m.pool.Submit(context.Background(), pool.Submission{Project: lock, LockKey: lock})
	var full *pool.QueueFullError
	switch {
	case errors.As(err, &full):
		if waiting < m.queueLimit {
			rt.Fatalf("queue full with %d of %d jobs waiting", waiting, m.queueLimit)
		}
	case err != nil:
		rt.Fatalf("Submit: %v", err)
	default:
		if waiting >= m.queueLimit {
			rt.Fatalf("submission accepted with %d of %d jobs waiting", waiting, m.queueLimit)
		}
		m.submitted = append(m.submitted, job.ID)
	}
}

// jobsIn returns the submitted jobs now in state.
func (m *poolModel) jobsIn(rt *rapid.T, state pool.State) []string {
	var out []string
	for _, id := range m.submitted {
		job, err := m.pool.Job(context.Background(), id)
		if err != nil {
			rt.Fatalf("Job(%s): %v", id, err)
		}
		if job.State == state {
			out = append(out, id)
		}
	}
	return out
}

// endRun picks a running job, ends its run with end and waits until the
// pool has recorded the end.
func (m *poolModel) endRun(rt *rapid.T, end func(*pooltest.Run)) {
	running := m.jobsIn(rt, pool.StateRunning)
	if len(running) == 0 {
		rt.Skip("no job is running")
	}
	id := rapid.SampledFrom(running).Draw(rt, "job")
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	run, err := m.runner.Await(ctx, id)
	if err != nil {
		rt.Fatalf("job %s is RUNNING but its run did not start: %v", id, err)
	}
	end(run)
	if _, err := m.finals.await(ctx, id); err != nil {
		rt.Fatalf("job %s did not end: %v", id, err)
	}
}

func (m *poolModel) complete(rt *rapid.T) {
	m.endRun(rt, func(run *pooltest.Run) { run.Complete(pool.Outcome{}) })
}

func (m *poolModel) fail(rt *rapid.T) {
	m.endRun(rt, func(run *pooltest.Run) { run.Fail(&pool.BlockError{Block: "load", Err: errors.New("bad row")}) })
}

func (m *poolModel) panic(rt *rapid.T) {
	m.endRun(rt, func(run *pooltest.Run) { run.Panic("boom") })
}

func (m *poolModel) stop(rt *rapid.T) {
	if len(m.submitted) == 0 {
		rt.Skip("no job was submitted")
	}
	id := rapid.SampledFrom(m.submitted).Draw(rt, "job")
	before, err := m.pool.Job(context.Background(), id)
	if err != nil {
		rt.Fatalf("Job(%s): %v", id, err)
	}
	after, err := m.pool.StopJob(context.Background(), id, "property", "")
	switch {
	case before.State.Final():
		if !errors.Is(err, pool.ErrJobFinished) {
			rt.Fatalf("stopping a %s job returned %v, want ErrJobFinished", before.State, err)
		}
		return
	case err != nil:
		rt.Fatalf("StopJob of a %s job: %v", before.State, err)
	case before.State.Waiting() && after.State != pool.StateCancelled:
		rt.Fatalf("stopping a %s job left it %s, want CANCELLED", before.State, after.State)
	case before.State == pool.StateRunning && after.State != pool.StateCancelling:
		rt.Fatalf("stopping a RUNNING job left it %s, want CANCELLING", after.State)
	}
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	final, err := m.finals.await(ctx, id)
	if err != nil {
		rt.Fatalf("stopped job %s did not end: %v", id, err)
	}
	if final.State != pool.StateCancelled {
		rt.Fatalf("stopped job ended %s, want CANCELLED", final.State)
	}
}

func (m *poolModel) setLimit(rt *rapid.T) {
	n := rapid.IntRange(1, 4).Draw(rt, "limit")
	settings, err := m.pool.SetConcurrentJobs(context.Background(), n)
	if err != nil {
		rt.Fatalf("SetConcurrentJobs(%d): %v", n, err)
	}
	if settings.ConcurrentJobs != min(n, 3) {
		rt.Fatalf("limit in force = %d after requesting %d of max 3", settings.ConcurrentJobs, n)
	}
	m.ceiling = max(m.ceiling, settings.ConcurrentJobs)
}

// check runs after every step.
func (m *poolModel) check(rt *rapid.T) {
	if err := m.pool.CheckInvariants(); err != nil {
		rt.Fatalf("scheduler invariant broken: %v", err)
	}
	for _, v := range m.startViolations() {
		rt.Fatalf("scheduling rule broken: %s", v)
	}
	for _, v := range m.runner.violationList() {
		rt.Fatalf("runner saw a broken rule: %s", v)
	}
	in := m.pool.Internals()
	if in.Running > m.ceiling {
		rt.Fatalf("%d jobs run but at most %d may (limit %d)", in.Running, m.ceiling, in.Limit)
	}
	m.ceiling = max(in.Limit, in.Running)
	if in.Running < in.Limit && in.ReadyLines > 0 {
		rt.Fatalf("%d of %d slots are taken while %d runnable jobs wait", in.Running, in.Limit, in.ReadyLines)
	}
	for _, id := range m.submitted {
		if n := m.finals.count(id); n > 1 {
			rt.Fatalf("job %s ended %d times", id, n)
		}
	}
}

// drain completes running jobs until every submitted job has ended, then
// checks that each ended once and that no slot or lock is left held.
func (m *poolModel) drain(rt *rapid.T) {
	for range len(m.submitted) + 1 {
		if len(m.jobsIn(rt, pool.StateRunning)) == 0 {
			break
		}
		m.complete(rt)
		m.check(rt)
	}
	for _, id := range m.submitted {
		if n := m.finals.count(id); n != 1 {
			rt.Fatalf("job %s ended %d times, want once", id, n)
		}
	}
	if in := m.pool.Internals(); in.Running != 0 || in.Waiting != 0 || in.Lines != 0 || in.ReadyLines != 0 || in.Active != 0 {
		rt.Fatalf("internals = %+v after every job ended, want all zero", in)
	}
}

// checkingRunner wraps the test runner and records broken rules that only
// the runner can see: two runs of one lock at once, or a job run twice.
type checkingRunner struct {
	*pooltest.Runner

	// mu guards every field below.
	mu sync.Mutex
	// lockHolder maps a lock key to the job whose run is in progress.
	lockHolder map[string]string
	runs       map[string]int
	violations []string
}

func newCheckingRunner() *checkingRunner {
	return &checkingRunner{Runner: pooltest.NewRunner(), lockHolder: map[string]string{}, runs: map[string]int{}}
}

func (r *checkingRunner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	r.mu.Lock()
	if other, ok := r.lockHolder[job.LockKey]; ok {
		r.violations = append(r.violations, fmt.Sprintf("job %s of lock %q started while job %s of the same lock runs", job.ID, job.LockKey, other))
	}
	r.lockHolder[job.LockKey] = job.ID
	r.runs[job.ID]++
	if r.runs[job.ID] > 1 {
		r.violations = append(r.violations, fmt.Sprintf("job %s ran %d times", job.ID, r.runs[job.ID]))
	}
	r.mu.Unlock()

	defer func() {
		r.mu.Lock()
		if r.lockHolder[job.LockKey] == job.ID {
			delete(r.lockHolder, job.LockKey)
		}
		r.mu.Unlock()
	}()
	return r.Runner.Run(ctx, job, update)
}

func (r *checkingRunner) violationList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.violations...)
}
