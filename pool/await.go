package pool

import (
	"context"
	"fmt"
)

// Await blocks until the job with the given id reaches a final state
// (COMPLETED, FAILED or CANCELLED) and returns its final record. A job
// that is already final returns at once. When ctx ends first, Await
// returns ctx's error and the job goes on unchanged. An unknown id
// returns an error wrapping ErrJobNotFound. A job still waiting when the
// pool shuts down does not end, so Await then returns only when ctx ends.
// Await does not poll: it waits on a channel that is closed when the job
// ends. It is safe for concurrent use.
func (p *Pool) Await(ctx context.Context, id string) (*Job, error) {
	p.mu.Lock()
	aj := p.jobs[id]
	if aj == nil {
		final := p.unstoredLocked(id)
		p.mu.Unlock()
		if final != nil {
			return final, nil
		}
		return p.awaitInactive(ctx, id)
	}
	if aj.done == nil {
		aj.done = make(chan struct{})
	}
	done := aj.done
	p.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	// aj.job is the final record once done is closed, and it is never
	// replaced again. It is read under mu all the same, since it was
	// written under mu.
	p.mu.Lock()
	defer p.mu.Unlock()
	return normalize(aj.job.Clone()), nil
}

// awaitInactive returns the stored record of a job the pool does not hold
// in memory, which is final unless the pool has not started or could not
// store the job's end.
func (p *Pool) awaitInactive(ctx context.Context, id string) (*Job, error) {
	job, err := p.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if !job.State.Final() {
		return nil, fmt.Errorf("job %s is %s in the store but not active in the pool, so its end cannot be awaited", id, job.State)
	}
	return normalize(job), nil
}

// closeDoneLocked wakes the callers of Await on aj, which has just reached
// its final state.
func (aj *activeJob) closeDoneLocked() {
	if aj.done != nil {
		close(aj.done)
	}
}
