package pool

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// recoveryCounts counts what recoverLocked did, for the start log.
type recoveryCounts struct {
	requeued    int
	interrupted int
	cancelled   int
}

func (c *recoveryCounts) countEnded(state State) {
	if state == StateCancelled {
		c.cancelled++
	} else {
		c.interrupted++
	}
}

// recoverLocked loads the active jobs from the store in Seq order, ends
// the ones that cannot go on, and queues the rest in their original
// places. Every change to a job is written in its own transaction before
// the job enters the queue.
func (p *Pool) recoverLocked(ctx context.Context) (recoveryCounts, error) {
	var counts recoveryCounts
	jobs, err := p.store.ActiveJobs(ctx)
	if err != nil {
		return counts, fmt.Errorf("loading active jobs: %w", err)
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return cmp.Compare(a.Seq, b.Seq) })

	for _, job := range jobs {
		next, requeued := recoveredRecord(job)
		if next.State.Final() {
			if err := p.store.UpdateJobs(ctx, next); err != nil {
				return counts, fmt.Errorf("ending job %s: %w", job.ID, err)
			}
			p.observeLocked(job, next)
			counts.countEnded(next.State)
			p.log.Info("job ended by recovery", "job_id", job.ID, "from_state", job.State, "state", next.State)
			continue
		}

		// At start no lock is held, so the first job of each lock key is
		// QUEUED and every later one BLOCKED.
		next.State = StateQueued
		if p.lines[next.LockKey] != nil {
			next.State = StateBlocked
		}
		if requeued || next.State != job.State {
			if err := p.store.UpdateJobs(ctx, next); err != nil {
				return counts, fmt.Errorf("queueing job %s again: %w", job.ID, err)
			}
		}
		if requeued {
			counts.requeued++
			p.log.Info("job queued again after a restart", "job_id", job.ID, "attempt", next.Attempt)
		}
		p.observeRecoveredLocked(job, next)
		p.enqueueLocked(&activeJob{job: next})
	}
	return counts, nil
}

// recoveredRecord returns the record that job, found active at start,
// continues with, and whether a run of it was interrupted and it is to run
// again. A waiting job is returned unchanged.
func recoveredRecord(job *Job) (*Job, bool) {
	next := job.Clone()
	now := timestamp.Ptr(time.Now())
	switch job.State {
	case StateCancelling:
		next.State = StateCancelled
		next.FinishedAt = now
		next.Error = &JobError{Type: ErrorCancelled, Message: stopMessage(job.Stop)}
		next.Blocks = settleBlocks(next.Blocks)
		return next, false
	case StateRunning:
		if job.Attempt >= 2 {
			next.State = StateFailed
			next.FinishedAt = now
			next.Error = &JobError{Type: ErrorInterrupted, Message: fmt.Sprintf("the server stopped while attempt %d of the job ran, and a job is retried only once", job.Attempt)}
			next.Blocks = settleBlocks(next.Blocks)
			return next, false
		}
		next.Attempt = job.Attempt + 1
		next.StartedAt = nil
		next.Result = nil
		next.Outputs = []Output{}
		next.Error = nil
		for i, b := range next.Blocks {
			next.Blocks[i] = BlockRun{Name: b.Name, Type: b.Type, State: BlockPending}
		}
		return next, true
	default:
		return next, false
	}
}
