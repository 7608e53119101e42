package pool

import (
	"context"
	"fmt"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// StopJob stops a job and records who asked (by) and why (reason). A
// QUEUED or BLOCKED job becomes CANCELLED at once. A RUNNING job becomes
// CANCELLING, its run's context is cancelled, and it ends CANCELLED when
// the runner returns. A CANCELLING job is returned unchanged. A finished
// job returns ErrJobFinished and is not changed, and an unknown id
// returns ErrJobNotFound.
func (p *Pool) StopJob(ctx context.Context, id, by, reason string) (*Job, error) {
	p.mu.Lock()
	aj := p.jobs[id]
	if aj == nil {
		started := p.started
		ended := p.unstored[id] != nil
		p.mu.Unlock()
		if ended {
			return nil, ErrJobFinished
		}
		return nil, p.stopInactive(ctx, id, started)
	}
	defer p.mu.Unlock()

	record := &StopRecord{By: by, Reason: reason, At: timestamp.Now()}
	var err error
	switch aj.job.State {
	case StateCancelling:
		return p.viewLocked(aj), nil
	case StateRunning:
		err = p.stopRunningLocked(ctx, aj, record)
	default:
		err = p.stopWaitingLocked(ctx, aj, record)
	}
	if err != nil {
		return nil, err
	}
	p.log.Debug("job stopped", "job_id", id, "by", by, "reason", reason, "state", aj.job.State)
	return p.viewLocked(aj), nil
}

// stopInactive returns the error of StopJob for a job the pool does not
// hold in memory.
func (p *Pool) stopInactive(ctx context.Context, id string, started bool) error {
	job, err := p.store.GetJob(ctx, id)
	if err != nil {
		return err
	}
	if job.State.Final() {
		return ErrJobFinished
	}
	if !started {
		return errNotStarted
	}
	// Only a job whose end could not be stored gets here, after the pool
	// gave up retrying that write at shutdown.
	return fmt.Errorf("job %s is %s in the store but no longer active in the pool, and the next restart recovers it", id, job.State)
}

// stopWaitingLocked cancels a QUEUED or BLOCKED job.
func (p *Pool) stopWaitingLocked(ctx context.Context, aj *activeJob, record *StopRecord) error {
	final := cancelledRecord(aj.job, record)
	changes := []change{{aj: aj, next: final}}
	if aj.line.head == aj && aj.line.holder == nil {
		changes = append(changes, promotion(aj.next)...)
	}
	if err := p.commitLocked(ctx, changes); err != nil {
		return fmt.Errorf("storing stop of job %s: %w", aj.job.ID, err)
	}
	p.removeWaitingLocked(aj)
	// The next job of the line may now be runnable.
	p.dispatchLocked()
	return nil
}

// stopRunningLocked makes a RUNNING job CANCELLING and cancels its run.
func (p *Pool) stopRunningLocked(ctx context.Context, aj *activeJob, record *StopRecord) error {
	next := cancellingRecord(aj.job, record)
	if err := p.store.UpdateJobs(ctx, next); err != nil {
		return fmt.Errorf("storing stop of job %s: %w", aj.job.ID, err)
	}
	p.cancelRunLocked(aj, next)
	return nil
}

func cancellingRecord(job *Job, record *StopRecord) *Job {
	next := job.Clone()
	next.State = StateCancelling
	next.Stop = record
	return next
}

// cancelRunLocked makes next, a CANCELLING record, aj's current record and
// cancels aj's run.
func (p *Pool) cancelRunLocked(aj *activeJob, next *Job) {
	p.observeLocked(aj.job, next)
	aj.job = next
	aj.stopRequested = true
	aj.cancel(errStopRequested)
}
