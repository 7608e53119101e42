package pool

// Reserve checks that n more jobs fit in the queue now and returns a
// *QueueFullError when they do not. A batch calls it before submitting
// its jobs one by one, so that a batch too large for the queue queues
// nothing.
//
// NOTE: Reserve holds no place. A submission from another client between
// Reserve and the batch's own submissions can still fill the queue. The
// batch then stops the jobs it already queued.
func (p *Pool) Reserve(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if depth := p.order.live; depth+n > p.queueLimit {
		return &QueueFullError{Depth: depth, Limit: p.queueLimit, RetryAfter: p.retryAfterLocked()}
	}
	return nil
}
