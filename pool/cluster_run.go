package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// dispatchLoop starts jobs whenever something may have freed a slot or a
// lock: a wake-up from this node or a notification, or the slow poll.
func (c *Cluster) dispatchLoop(ctx context.Context) {
	ticker := time.NewTicker(c.cfg.Poll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-ticker.C:
		}
		c.dispatch(ctx)
	}
}

// dispatch claims jobs from the shared queue while this node has a free
// slot. Only the dispatcher claims, so the node never claims more jobs
// than its limit.
func (c *Cluster) dispatch(ctx context.Context) {
	for {
		// A node whose renewals fail would lose the jobs it claims, so it
		// claims none until a renewal succeeds.
		stale := time.Since(time.Unix(0, c.renewed.Load())) > 2*c.cfg.Lease/3
		c.failing.check("claiming jobs while lease renewals are late", staleError(stale))
		c.mu.Lock()
		free := c.started && !c.closing && !stale && len(c.local) < c.limitLocked()
		// A job this node still runs may be queued again after the
		// node lost its lease on it, and must not run twice here.
		running := make([]string, 0, len(c.local))
		for id := range c.local {
			running = append(running, id)
		}
		c.mu.Unlock()
		if !free {
			return
		}
		job, err := c.cs.claim(ctx, running)
		if ctx.Err() != nil {
			return
		}
		c.failing.check("claiming a job", err)
		if err != nil || job == nil {
			return
		}
		c.launch(job)
	}
}

// errRenewalsLate reports that the node's last lease renewal is too old
// for it to claim jobs.
var errRenewalsLate = errors.New("the last lease renewal is older than two thirds of a lease")

func staleError(stale bool) error {
	if stale {
		return errRenewalsLate
	}
	return nil
}

// launch runs job, which this node just claimed.
func (c *Cluster) launch(job *Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithCancelCause(context.Background())
	aj := &activeJob{job: job, cancel: cancel, claimedAt: time.Now()}
	c.local[job.ID] = aj
	run := job.Clone()
	c.log.Debug("job started", "job_id", job.ID, "project", job.Project, "attempt", job.Attempt)
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		defer cancel(nil)
		if job.TimeoutMs > 0 {
			var cancelTimeout context.CancelFunc
			ctx, cancelTimeout = context.WithTimeoutCause(ctx, time.Duration(job.TimeoutMs)*time.Millisecond, errJobTimeout)
			defer cancelTimeout()
		}
		outcome, err := execute(ctx, c.cfg.Config, c.runner, run, func(b BlockRun) { c.updateBlock(aj, b) }, c.log)
		c.finish(aj, outcome, err, context.Cause(ctx))
	}()
}

// updateBlock applies a block run's change to a job this node runs and
// stores the block list at most every blockWriteInterval, like
// Pool.updateBlock.
func (c *Cluster) updateBlock(aj *activeJob, run BlockRun) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if aj.ended {
		return
	}
	next := aj.job.Clone()
	next.Blocks = replaceBlock(next.Blocks, run)
	c.emitLocked(changeEvents(aj.job, next, time.Now()))
	aj.job = next
	if aj.blockWrite != nil {
		return
	}
	wait := blockWriteInterval - time.Since(aj.blocksStoredAt)
	if wait <= 0 {
		c.writeBlocksLocked(aj)
		return
	}
	c.runs.Add(1)
	aj.blockWrite = time.AfterFunc(wait, func() {
		defer c.runs.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		aj.blockWrite = nil
		if !aj.ended {
			c.writeBlocksLocked(aj)
		}
	})
}

func (c *Cluster) writeBlocksLocked(aj *activeJob) {
	aj.blocksStoredAt = time.Now()
	if err := c.cs.writeBlocks(context.Background(), aj.job); err != nil {
		c.log.Error("storing block update failed", "job_id", aj.job.ID, "error", err)
	}
}

// finish stores the end of a run and frees its slot.
func (c *Cluster) finish(aj *activeJob, outcome Outcome, runErr, cause error) {
	c.mu.Lock()
	final := c.cfg.finalRecord(aj, outcome, runErr, cause)
	aj.ended = true
	if aj.blockWrite != nil && aj.blockWrite.Stop() {
		c.runs.Done()
	}
	aj.blockWrite = nil
	lost := aj.leaseLost
	c.mu.Unlock()

	var err error
	if !lost {
		_, err = c.storeEnd(final)
	}
	switch {
	case lost || errors.Is(err, errLeaseLost):
		c.log.Warn("dropping the end of a job whose lease this node lost; another node queued it again or ended it",
			"job_id", final.ID, "state", final.State)
	case err != nil:
		c.log.Error("storing the end of a job failed; when its lease expires another node queues it again",
			"job_id", final.ID, "error", err)
	default:
		c.log.Debug("job finished", "job_id", final.ID, "state", final.State)
	}
	c.mu.Lock()
	if c.local[final.ID] == aj {
		delete(c.local, final.ID)
	}
	c.mu.Unlock()
	c.wakeDispatcher()
}

// storeEnd writes the end of a job, retrying a failing database for up
// to one lease: after that another node may have queued the job again.
func (c *Cluster) storeEnd(final *Job) (*Job, error) {
	deadline := time.Now().Add(c.cfg.Lease)
	delay := endRetryFirst
	for {
		stored, err := c.cs.end(context.Background(), final)
		if err == nil || errors.Is(err, errLeaseLost) || time.Now().Add(delay).After(deadline) {
			return stored, err
		}
		c.log.Warn("storing the end of a job failed; retrying", "job_id", final.ID, "error", err, "retry_in", delay)
		time.Sleep(delay)
		delay = min(2*delay, endRetryMax)
	}
}

// listenLoop receives the notifications of the other nodes until ctx
// ends, listening again after a lost connection.
func (c *Cluster) listenLoop(ctx context.Context) {
	for {
		err := c.db.Listen(ctx, c.caughtUp, c.receive)
		if ctx.Err() != nil {
			return
		}
		c.failing.check("listening for notifications", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// caughtUp runs once the node listens, when notifications may have been
// missed: it looks for new settings, work and ended jobs.
func (c *Cluster) caughtUp() {
	c.failing.check("listening for notifications", nil)
	c.listening.Do(func() { close(c.listened) })
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Lease)
	defer cancel()
	c.poll(ctx)
}

// poll catches up on what notifications may have missed: new settings,
// work and ended jobs.
func (c *Cluster) poll(ctx context.Context) {
	c.failing.check("loading settings", c.loadSettings(ctx))
	c.wakeDispatcher()
	c.checkWaiters(ctx)
}

// receive handles one notification.
func (c *Cluster) receive(payload string) {
	var n note
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		c.log.Warn("ignoring a notification that does not decode", "error", err)
		return
	}
	if n.Node == c.cfg.Node {
		return
	}
	switch {
	case n.Event != nil:
		c.mu.Lock()
		c.emitLocked([]Event{*n.Event})
		if n.Event.FinishedAt != nil {
			c.endedLocked(n.Event.JobID)
			if n.Event.StartedAt != nil {
				c.durations.add(n.Event.FinishedAt.Sub(*n.Event.StartedAt).Milliseconds())
			}
		}
		c.mu.Unlock()
		c.wakeDispatcher()
	case n.Stop != "" && n.StopNode == c.cfg.Node:
		c.stopFromDatabase(n.Stop)
	case n.Settings:
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Lease)
		defer cancel()
		c.failing.check("loading new settings", c.loadSettings(ctx))
		c.wakeDispatcher()
	}
}

// stopFromDatabase cancels the run of a job that another node stopped,
// with the stop record stored for it.
func (c *Cluster) stopFromDatabase(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Lease)
	defer cancel()
	record, err := c.cs.stoppedBy(ctx, id)
	if err != nil {
		c.log.Error("reading the stop of a job failed; the run stops without its record", "job_id", id, "error", err)
	}
	c.stopRun(id, record, true)
}

// leaseLoop renews this node's leases every third of a lease and queues
// again the jobs of nodes whose leases expired, and polls every Poll,
// until ctx ends.
func (c *Cluster) leaseLoop(ctx context.Context) {
	ticker := time.NewTicker(c.cfg.Lease / 3)
	defer ticker.Stop()
	poll := time.NewTicker(c.cfg.Poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			// A renewal that takes longer than the time between two
			// renewals is given up, so that a hung connection cannot stop
			// the loop.
			tickCtx, cancel := context.WithTimeout(ctx, c.cfg.Lease/3)
			c.renew(tickCtx)
			c.reap(tickCtx)
			cancel()
		case <-poll.C:
			c.poll(ctx)
		}
	}
}

// renew extends the leases of this node's jobs. A job the node no longer
// holds is cancelled, and a job stopped from another node whose
// notification was lost is stopped.
func (c *Cluster) renew(ctx context.Context) {
	// A job claimed after renewedAt may be missing from running, so its
	// absence from the renewed jobs means nothing.
	c.mu.Lock()
	renewedAt := time.Now()
	slots, resources := c.limitLocked(), c.resources
	running := make([]string, 0, len(c.local))
	for id := range c.local {
		running = append(running, id)
	}
	c.mu.Unlock()

	var sample json.RawMessage
	if resources != nil {
		sample = resources()
	}
	leased, err := c.cs.renew(ctx, running, slots, c.cfg.MaxConcurrentJobs, sample, c.startedAt)
	if ctx.Err() != nil {
		return
	}
	c.failing.check("renewing leases", err)
	if err != nil {
		return
	}
	c.renewed.Store(renewedAt.UnixNano())

	byID := make(map[string]leasedJob, len(leased))
	for _, h := range leased {
		byID[h.id] = h
	}
	var stopped []string
	c.mu.Lock()
	for id, aj := range c.local {
		h, ok := byID[id]
		switch {
		case aj.ended || aj.leaseLost || aj.claimedAt.After(renewedAt):
		case !ok || h.attempt != aj.job.Attempt:
			c.log.Warn("this node lost its lease on a job; cancelling the run", "job_id", id)
			aj.leaseLost = true
			aj.cancel(errLeaseExpired)
		case h.state == StateCancelling && !aj.stopRequested:
			stopped = append(stopped, id)
		}
	}
	c.mu.Unlock()

	for _, id := range stopped {
		c.stopFromDatabase(id)
	}
}

// reap queues again the jobs whose lease expired.
func (c *Cluster) reap(ctx context.Context) {
	ids, err := c.cs.expired(ctx, false)
	if ctx.Err() != nil {
		return
	}
	c.failing.check("finding expired leases", err)
	for _, id := range ids {
		if err := c.requeue(ctx, id, false); err != nil && ctx.Err() == nil {
			c.log.Error("queueing a job with an expired lease again failed", "job_id", id, "error", err)
		}
	}
	if len(ids) > 0 {
		c.wakeDispatcher()
	}
	if err := c.cs.forgetDeadNodes(ctx); ctx.Err() == nil {
		c.failing.check("removing the rows of long dead nodes", err)
	}
}

// requeue queues the job again or ends it; see clusterStore.requeue.
func (c *Cluster) requeue(ctx context.Context, id string, own bool) error {
	next, holder, err := c.cs.requeue(ctx, id, own)
	if err != nil || next == nil {
		return err
	}
	if next.State.Final() {
		c.log.Info("job ended because its node stopped renewing its lease", "job_id", id, "previous_node", holder, "state", next.State)
	} else {
		c.log.Info("job queued again because its node stopped renewing its lease", "job_id", id, "previous_node", holder, "attempt", next.Attempt)
	}
	return nil
}

// checkWaiters wakes the callers of Await whose jobs ended without this
// node hearing of it.
func (c *Cluster) checkWaiters(ctx context.Context) {
	c.mu.Lock()
	ids := make([]string, 0, len(c.waiters))
	for id := range c.waiters {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		job, err := c.store.GetJob(ctx, id)
		if err != nil || !job.State.Final() {
			continue
		}
		c.mu.Lock()
		c.endedLocked(id)
		c.mu.Unlock()
	}
}

// Shutdown stops the node like Pool.Shutdown: it stops taking jobs,
// waits for its running jobs until ctx is done, then cancels them, and
// stops listening. Waiting jobs stay in the queue for the other nodes.
func (c *Cluster) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	logged := c.started && !c.closing
	if logged {
		c.log.Info("cluster node shutting down", "running_jobs", len(c.local))
	}
	c.closing = true
	c.mu.Unlock()
	if c.stopDispatching != nil {
		c.stopDispatching()
	}
	c.dispatching.Wait()

	drained := make(chan struct{})
	go func() {
		c.runs.Wait()
		close(drained)
	}()
	cancelled := 0
	select {
	case <-drained:
	case <-ctx.Done():
		cancelled = c.cancelRunning()
		<-drained
	}
	if c.stopBackground != nil {
		c.stopBackground()
	}
	c.background.Wait()
	if logged {
		c.log.Info("cluster node stopped", "cancelled_jobs", cancelled)
	}
	if cancelled > 0 {
		return fmt.Errorf("shutdown cancelled %d running jobs: %w", cancelled, ctx.Err())
	}
	return nil
}

// Stop shuts the node down at once, cancelling its running jobs.
func (c *Cluster) Stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Shutdown(ctx)
}

// cancelRunning stops every job this node runs for shutdown and returns
// how many it stopped.
func (c *Cluster) cancelRunning() int {
	c.mu.Lock()
	var ids []string
	for id, aj := range c.local {
		if !aj.ended && !aj.stopRequested {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.StopJob(ctx, id, shutdownStopBy, shutdownStopReason)
		cancel()
		if err != nil {
			// The job is cancelled without the stored CANCELLING step,
			// and its final record carries the stop.
			c.log.Error("storing shutdown stop failed", "job_id", id, "error", err)
			c.stopRun(id, &StopRecord{By: shutdownStopBy, Reason: shutdownStopReason, At: timestamp.Now()}, true)
		}
	}
	return len(ids)
}
