package pool

import (
	"container/heap"
	"context"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// The scheduler picks the next job to start without scanning the queue.
//
// Every lock key has a lockLine: the job holding the lock (RUNNING or
// CANCELLING), if any, and a FIFO list of the jobs waiting for it in Seq
// order. Only the head of a line can start, and only while its lock is
// free, so the runnable jobs are exactly the heads of the lines whose lock
// is free. Those lines sit in ready, a min-heap keyed by the head's Seq.
// A dispatch pops the line with the smallest head Seq, which is the
// oldest runnable job, in O(log L) for L ready lines. Submitting,
// stopping and finishing a job change one line and fix its heap entry,
// also O(log L). BLOCKED jobs never enter the heap, so however many wait
// behind busy locks, they cost a dispatch nothing.

// activeJob is the pool's in-memory record of a job that is not final.
type activeJob struct {
	// job is the current stored record. A transition replaces it with a
	// new value once the store has the new value, and never changes it in
	// place, so a reader may keep the pointer.
	job *Job
	// line is the lock line the job waits in or holds.
	line *lockLine
	// prev and next link the waiting jobs of line in Seq order.
	prev, next *activeJob
	// orderSlot is the job's slot in Pool.order while it waits, else 0.
	orderSlot int

	// cancel ends the run's context. It is set while the job holds a slot.
	cancel context.CancelCauseFunc
	// stopRequested is set once a stop by a client or by shutdown was
	// accepted. The job then ends CANCELLED.
	stopRequested bool
	// ended is set once the job's slot and lock were released.
	ended bool
	// done, created by the first Await on the job, is closed when the
	// job reaches its final state.
	done chan struct{}
	// blocksStoredAt is when the block list of the running job was last
	// written alone, and blockWrite is the pending delayed write, if any.
	blocksStoredAt time.Time
	blockWrite     *time.Timer
	// claimedAt and leaseLost serve a cluster node: when it claimed the
	// job, and whether it lost its lease on the job since.
	claimedAt time.Time
	leaseLost bool
}

// lockLine is the lock of one lock key and the jobs waiting for it.
type lockLine struct {
	key string
	// holder is the RUNNING or CANCELLING job that holds the lock.
	holder *activeJob
	// head and tail are the first and last waiting jobs.
	head, tail *activeJob
	// heapIndex is the line's index in Pool.ready, or -1 when the line is
	// not ready.
	heapIndex int
}

// readyHeap is a container/heap of the lines that can start a job now,
// ordered by the Seq of their head.
type readyHeap []*lockLine

func (h readyHeap) Len() int { return len(h) }

func (h readyHeap) Less(i, j int) bool {
	return h[i].head.job.Seq < h[j].head.job.Seq
}

func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}

func (h *readyHeap) Push(x any) {
	line := x.(*lockLine)
	line.heapIndex = len(*h)
	*h = append(*h, line)
}

func (h *readyHeap) Pop() any {
	old := *h
	line := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	line.heapIndex = -1
	return line
}

// enqueueLocked appends a waiting job to the end of its lock's line and to
// the wait order.
func (p *Pool) enqueueLocked(aj *activeJob) {
	line := p.lines[aj.job.LockKey]
	if line == nil {
		line = &lockLine{key: aj.job.LockKey, heapIndex: -1}
		p.lines[line.key] = line
	}
	aj.line = line
	aj.prev = line.tail
	if line.tail != nil {
		line.tail.next = aj
	} else {
		line.head = aj
	}
	line.tail = aj
	p.order.add(aj)
	p.jobs[aj.job.ID] = aj
	p.refreshLineLocked(line)
}

// unlinkLocked takes a waiting job out of its line and the wait order. The
// caller fixes the line's heap entry.
func (p *Pool) unlinkLocked(aj *activeJob) {
	line := aj.line
	if aj.prev != nil {
		aj.prev.next = aj.next
	} else {
		line.head = aj.next
	}
	if aj.next != nil {
		aj.next.prev = aj.prev
	} else {
		line.tail = aj.prev
	}
	aj.prev, aj.next = nil, nil
	p.order.remove(aj)
}

// refreshLineLocked restores the heap invariant for line after its head
// or holder changed: a line is in ready exactly when its lock is free and
// a job waits. An idle, empty line is deleted.
func (p *Pool) refreshLineLocked(line *lockLine) {
	ready := line.holder == nil && line.head != nil
	switch {
	case ready && line.heapIndex < 0:
		heap.Push(&p.ready, line)
	case ready:
		heap.Fix(&p.ready, line.heapIndex)
	case line.heapIndex >= 0:
		heap.Remove(&p.ready, line.heapIndex)
	}
	if line.holder == nil && line.head == nil {
		delete(p.lines, line.key)
	}
}

// waitingState returns the state of a job waiting in line at the given
// place: QUEUED when it is the head and the lock is free, else
// BLOCKED.
func waitingState(line *lockLine, isHead bool) State {
	if isHead && line.holder == nil {
		return StateQueued
	}
	return StateBlocked
}

// promotion returns the change that makes aj QUEUED, for a BLOCKED aj
// that is about to become the head of a line whose lock is free. It
// returns no change for a nil or already QUEUED aj.
func promotion(aj *activeJob) []change {
	if aj == nil || aj.job.State != StateBlocked {
		return nil
	}
	next := aj.job.Clone()
	next.State = StateQueued
	return []change{{aj: aj, next: next}}
}

// change is a new record for an active job, written to the store before
// it replaces the job's current record.
type change struct {
	aj   *activeJob
	next *Job
}

// commitLocked writes the new records of changes in one transaction and,
// once written, makes them current.
func (p *Pool) commitLocked(ctx context.Context, changes []change) error {
	if err := p.writeLocked(ctx, changes); err != nil {
		return err
	}
	p.observeChangesLocked(changes)
	applyChanges(changes)
	return nil
}

func (p *Pool) writeLocked(ctx context.Context, changes []change) error {
	jobs := make([]*Job, len(changes))
	for i, c := range changes {
		jobs[i] = c.next
	}
	return p.store.UpdateJobs(ctx, jobs...)
}

func applyChanges(changes []change) {
	for _, c := range changes {
		c.aj.job = c.next
	}
}

// effectiveLimitLocked returns the slot limit in force.
func (p *Pool) effectiveLimitLocked() int {
	return min(p.requestedJobs, p.cfg.MaxConcurrentJobs)
}

// dispatchLocked starts the oldest runnable job while a slot is free. It
// stops early when the store fails, and the next event that can free a
// slot or a lock (a finish, a stop, a submission or a settings change)
// tries again.
func (p *Pool) dispatchLocked() {
	for p.started && !p.closing && p.running < p.effectiveLimitLocked() && p.ready.Len() > 0 {
		if !p.startLocked(p.ready[0].head) {
			return
		}
	}
}

// startLocked makes aj, the head of a ready line, RUNNING and launches its
// run. It returns false when the store failed and dispatching should
// pause.
func (p *Pool) startLocked(aj *activeJob) bool {
	next := startedRecord(aj.job)
	if err := p.store.UpdateJobs(context.Background(), next); err != nil {
		p.log.Error("storing job start failed", "job_id", next.ID, "error", err)
		return p.failUnstartableLocked(aj, err)
	}
	p.runStartedLocked(aj, next)
	return true
}

// startedRecord returns a copy of job RUNNING from now.
func startedRecord(job *Job) *Job {
	next := job.Clone()
	next.State = StateRunning
	next.StartedAt = timestamp.Ptr(time.Now())
	return next
}

// runStartedLocked makes next, the stored RUNNING record of aj, current
// and launches the run. aj is the head of a ready line and a slot is free.
func (p *Pool) runStartedLocked(aj *activeJob, next *Job) {
	if p.hooks.beforeStart != nil {
		p.hooks.beforeStart(aj)
	}
	line := aj.line
	p.unlinkLocked(aj)
	p.observeLocked(aj.job, next)
	aj.job = next
	line.holder = aj
	p.running++
	p.refreshLineLocked(line)
	p.launchLocked(aj)
}

// failUnstartableLocked fails a job whose start could not be stored, so
// that one bad record cannot stall the queue. It returns false when the
// failure cannot be stored either, and the job then keeps waiting.
func (p *Pool) failUnstartableLocked(aj *activeJob, cause error) bool {
	final := aj.job.Clone()
	final.State = StateFailed
	final.FinishedAt = timestamp.Ptr(time.Now())
	final.Error = &JobError{Type: ErrorInternal, Message: "the job's start could not be stored: " + cause.Error()}
	final.Blocks = settleBlocks(final.Blocks)
	changes := []change{{aj: aj, next: final}}
	if aj.line.head == aj {
		changes = append(changes, promotion(aj.next)...)
	}
	if err := p.commitLocked(context.Background(), changes); err != nil {
		p.log.Error("storing job failure failed, so dispatching pauses until the next event", "job_id", aj.job.ID, "error", err)
		return false
	}
	p.removeWaitingLocked(aj)
	return true
}

// removeWaitingLocked drops a waiting job that reached a final state.
func (p *Pool) removeWaitingLocked(aj *activeJob) {
	line := aj.line
	p.unlinkLocked(aj)
	aj.ended = true
	delete(p.jobs, aj.job.ID)
	p.refreshLineLocked(line)
	p.notifyFinalLocked(aj)
}

// notifyFinalLocked wakes the callers of Await and calls the test hook
// for a job that reached a final state.
func (p *Pool) notifyFinalLocked(aj *activeJob) {
	aj.closeDoneLocked()
	if p.hooks.final != nil {
		p.hooks.final(aj.job.Clone())
	}
}
