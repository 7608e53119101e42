package pool

import "time"

// Reserve checks that Submit would admit n more jobs with the given
// timeout now: it returns the 422 problem Submit gives a timeout above
// MaxJobTimeout (zero means the default JobTimeout), and a
// *QueueFullError when n more jobs do not fit in the queue. A batch calls
// it before submitting its jobs one by one, so that a batch too large for
// the queue queues nothing, and cancelExisting calls it before stopping
// the jobs that the new one replaces.
//
// NOTE: Reserve holds no place. A submission from another client between
// Reserve and the batch's own submissions can still fill the queue. The
// batch then stops the jobs it already queued.
func (p *Pool) Reserve(n int, timeout time.Duration) error {
	if _, err := p.cfg.applyJobTimeout(Submission{Timeout: timeout}); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	if depth := p.order.live; depth+n > p.queueLimit {
		return &QueueFullError{Depth: depth, Limit: p.queueLimit, RetryAfter: p.retryAfterLocked()}
	}
	return nil
}
