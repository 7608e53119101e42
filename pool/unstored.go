package pool

import (
	"context"
	"time"
)

// Backoff bounds of the retries of an end the store could not take.
const (
	endRetryFirst = 50 * time.Millisecond
	endRetryMax   = 2 * time.Second
)

// keepUnstoredLocked remembers final, the end of a job that the store
// rejected, and retries its write until it is stored or the pool shuts
// down. Until then Job, Await and StopJob use the remembered record, so
// the job reads as ended, not as the RUNNING job the store still holds.
func (p *Pool) keepUnstoredLocked(final *Job) {
	if p.unstored == nil {
		p.unstored = make(map[string]*Job)
	}
	p.unstored[final.ID] = final
	p.runs.Add(1)
	go p.retryEnd(final)
}

// retryEnd writes final with a growing delay between attempts. It gives
// up when the pool shuts down; the next Start then finds the job RUNNING
// and queues it again.
func (p *Pool) retryEnd(final *Job) {
	defer p.runs.Done()
	delay := endRetryFirst
	for {
		time.Sleep(delay)
		p.mu.Lock()
		if p.closing {
			p.log.Error("shutting down before the end of a job was stored; the next start queues it again",
				"job_id", final.ID, "state", final.State)
			delete(p.unstored, final.ID)
			p.mu.Unlock()
			return
		}
		err := p.store.UpdateJobs(context.Background(), final)
		if err != nil {
			// As in finish: a result the store cannot encode must not
			// keep the job RUNNING forever.
			err = p.store.UpdateJobs(context.Background(), withoutResult(final, err))
		}
		if err == nil {
			delete(p.unstored, final.ID)
			p.mu.Unlock()
			p.log.Info("stored the end of a job after retrying", "job_id", final.ID, "state", final.State)
			return
		}
		p.mu.Unlock()
		delay = min(2*delay, endRetryMax)
	}
}

// unstoredLocked returns a copy of the remembered end of the job with the
// given id, or nil when its end is stored or it has not ended.
func (p *Pool) unstoredLocked(id string) *Job {
	if final := p.unstored[id]; final != nil {
		return normalize(final.Clone())
	}
	return nil
}
