package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// Stop records of jobs cancelled because the server shuts down.
const (
	shutdownStopBy     = "system"
	shutdownStopReason = "server shutdown"
)

// Start loads the stored settings, recovers the jobs that were active when
// the pool last stopped, and starts dispatching. It returns once the pool
// runs. Start fails when called twice or after Shutdown.
//
// A slot limit or queue limit stored through SetConcurrentJobs or
// UpdateSettings replaces the Config value. Recovered jobs keep their
// place: a job that was RUNNING is queued again at its original Seq with
// Attempt 2, or fails as INTERRUPTED when it was already on its second
// attempt, and a CANCELLING job becomes CANCELLED.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closing {
		return errors.New("pool cannot start: it was already started")
	}
	if err := p.loadSettingsLocked(ctx); err != nil {
		return err
	}
	maxSeq, err := p.store.MaxSeq(ctx)
	if err != nil {
		return fmt.Errorf("reading the last job sequence number: %w", err)
	}
	p.nextSeq = maxSeq + 1
	p.loadHistoryLocked(ctx)

	counts, err := p.recoverLocked(ctx)
	if err != nil {
		p.resetLocked()
		return fmt.Errorf("recovering jobs: %w", err)
	}
	p.started = true
	p.log.Info("pool started",
		"concurrent_jobs", p.effectiveLimitLocked(), "requested_concurrent_jobs", p.requestedJobs,
		"max_concurrent_jobs", p.cfg.MaxConcurrentJobs, "queue_limit", p.queueLimit,
		"waiting_jobs", p.order.live, "requeued_jobs", counts.requeued,
		"interrupted_jobs", counts.interrupted, "cancelled_jobs", counts.cancelled)
	p.dispatchLocked()
	return nil
}

// resetLocked drops the jobs a failed Start had loaded.
func (p *Pool) resetLocked() {
	p.jobs = make(map[string]*activeJob)
	p.lines = make(map[string]*lockLine)
	p.ready = nil
	p.order = waitOrder{}
}

// loadHistoryLocked seeds the wait estimate with the durations of the most
// recently finished jobs. A failure only leaves the estimate empty.
func (p *Pool) loadHistoryLocked(ctx context.Context) {
	filter := JobFilter{States: []State{StateCompleted, StateFailed, StateCancelled}, Limit: durationWindowSize}
	jobs, _, err := p.store.ListJobs(ctx, filter)
	if err != nil {
		p.log.Warn("loading recent job durations failed, so wait estimates start empty", "error", err)
		return
	}
	// ListJobs returns the newest first, and the window keeps the last
	// added.
	for i := len(jobs) - 1; i >= 0; i-- {
		p.recordDurationLocked(jobs[i])
	}
}

// Shutdown stops the pool in two phases. It first stops intake: Submit
// returns ErrClosed and no waiting job starts. It then waits for the
// running jobs to end until ctx is done, cancels the rest with a stop
// record by "system" for "server shutdown", and waits for their runners
// to return. Waiting jobs stay in the store for the next Start.
//
// Shutdown returns nil when the running jobs ended on their own, and an
// error wrapping ctx's error when it had to cancel some. It may be called
// more than once, also after Stop.
//
// NOTE: a runner that ignores the cancellation of its context keeps
// Shutdown waiting, because Shutdown waits for every run to return.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	// Only the first call of a started pool logs, so that Stop after
	// Shutdown adds no lines.
	logged := p.started && !p.closing
	if logged {
		p.log.Info("pool shutting down", "running_jobs", p.running, "waiting_jobs", p.order.live)
	}
	p.closing = true
	p.mu.Unlock()

	// No run starts once closing is set, so runs.Wait cannot race with
	// runs.Add. This goroutine ends when the last run does, and Shutdown
	// waits for that on every path.
	drained := make(chan struct{})
	go func() {
		p.runs.Wait()
		close(drained)
	}()
	cancelled := 0
	select {
	case <-drained:
	case <-ctx.Done():
		cancelled = p.cancelRunning()
		<-drained
	}
	if logged {
		p.log.Info("pool stopped", "cancelled_jobs", cancelled)
	}
	if cancelled > 0 {
		return fmt.Errorf("shutdown cancelled %d running jobs: %w", cancelled, ctx.Err())
	}
	return nil
}

// Stop shuts the pool down at once: it is Shutdown with a context that is
// already done, so running jobs are cancelled. It blocks until every run
// has returned and is safe to call more than once.
func (p *Pool) Stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.Shutdown(ctx)
}

// cancelRunning stops every RUNNING job for shutdown and returns how many
// it stopped. Jobs already CANCELLING are on their way out.
func (p *Pool) cancelRunning() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	count := 0
	for _, line := range p.lines {
		aj := line.holder
		if aj == nil || aj.job.State != StateRunning {
			continue
		}
		record := &StopRecord{By: shutdownStopBy, Reason: shutdownStopReason, At: timestamp.From(time.Now())}
		if err := p.stopRunningLocked(context.Background(), aj, record); err != nil {
			// Shutdown goes on. The job is cancelled without the stored
			// CANCELLING step, and its final record carries the stop.
			p.log.Error("storing shutdown stop failed", "job_id", aj.job.ID, "error", err)
			p.cancelRunLocked(aj, cancellingRecord(aj.job, record))
		}
		count++
	}
	return count
}
