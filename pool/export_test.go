package pool

import (
	"fmt"
	"sync"
)

// This file gives the external tests access to scheduler internals.

// OnFinal sets a function that the pool calls, with its lock held, with a
// copy of every job that reaches a final state. Call it before Start.
func (p *Pool) OnFinal(f func(*Job)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hooks.final = f
}

// CheckStarts makes the pool check, before every start, that a slot is
// free, that the job's lock is free and that no runnable job is older. It
// returns a function that lists the violations seen so far.
func (p *Pool) CheckStarts() func() []string {
	var mu sync.Mutex
	var violations []string
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hooks.beforeStart = func(aj *activeJob) {
		if msg := p.startViolationLocked(aj); msg != "" {
			mu.Lock()
			violations = append(violations, msg)
			mu.Unlock()
		}
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), violations...)
	}
}

func (p *Pool) startViolationLocked(aj *activeJob) string {
	if p.running >= p.effectiveLimitLocked() {
		return fmt.Sprintf("job %d started with %d of %d slots taken", aj.job.Seq, p.running, p.effectiveLimitLocked())
	}
	if aj.line.holder != nil {
		return fmt.Sprintf("job %d started while job %d holds lock %q", aj.job.Seq, aj.line.holder.job.Seq, aj.line.key)
	}
	if aj.line.head != aj {
		return fmt.Sprintf("job %d started but is not the first of lock %q", aj.job.Seq, aj.line.key)
	}
	for _, line := range p.lines {
		if line.holder == nil && line.head != nil && line.head.job.Seq < aj.job.Seq {
			return fmt.Sprintf("job %d started before the older runnable job %d", aj.job.Seq, line.head.job.Seq)
		}
	}
	return ""
}

// Internals is a snapshot of the scheduler's counters.
type Internals struct {
	Running    int
	Limit      int
	Waiting    int
	ReadyLines int
	Lines      int
	Active     int
}

// Internals returns the scheduler's counters.
func (p *Pool) Internals() Internals {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Internals{
		Running:    p.running,
		Limit:      p.effectiveLimitLocked(),
		Waiting:    p.order.live,
		ReadyLines: p.ready.Len(),
		Lines:      len(p.lines),
		Active:     len(p.jobs),
	}
}

// CheckInvariants returns the first broken invariant of the scheduler's
// state, or nil.
func (p *Pool) CheckInvariants() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	holders, waiting := 0, 0
	for key, line := range p.lines {
		if line.key != key {
			return fmt.Errorf("line %q is stored under key %q", line.key, key)
		}
		if line.holder == nil && line.head == nil {
			return fmt.Errorf("line %q is empty but kept", key)
		}
		if h := line.holder; h != nil {
			holders++
			if h.job.State != StateRunning && h.job.State != StateCancelling {
				return fmt.Errorf("lock %q is held by job %d in state %s", key, h.job.Seq, h.job.State)
			}
		}
		n, err := p.checkLineLocked(line)
		if err != nil {
			return err
		}
		waiting += n
		inHeap := line.heapIndex >= 0 && line.heapIndex < len(p.ready) && p.ready[line.heapIndex] == line
		if ready := line.holder == nil && line.head != nil; ready != inHeap {
			return fmt.Errorf("line %q: runnable %t but in the ready heap %t", key, ready, inHeap)
		}
	}
	if holders != p.running {
		return fmt.Errorf("%d locks are held but %d jobs run", holders, p.running)
	}
	if waiting != p.order.live {
		return fmt.Errorf("%d jobs wait in lines but the wait order counts %d", waiting, p.order.live)
	}
	if holders+waiting != len(p.jobs) {
		return fmt.Errorf("%d jobs are active but lines hold %d", len(p.jobs), holders+waiting)
	}
	for i := 1; i < len(p.ready); i++ {
		if p.ready.Less(i, (i-1)/2) {
			return fmt.Errorf("ready heap order is broken at index %d", i)
		}
	}
	return p.checkPositionsLocked()
}

// checkLineLocked checks the waiting jobs of line and returns their count.
func (p *Pool) checkLineLocked(line *lockLine) (int, error) {
	n := 0
	var prev *activeJob
	for aj := line.head; aj != nil; aj = aj.next {
		want := waitingState(line, prev == nil)
		if aj.job.State != want {
			return 0, fmt.Errorf("job %d of lock %q is %s, want %s", aj.job.Seq, line.key, aj.job.State, want)
		}
		if aj.prev != prev || aj.line != line {
			return 0, fmt.Errorf("job %d of lock %q is linked wrongly", aj.job.Seq, line.key)
		}
		if prev != nil && prev.job.Seq >= aj.job.Seq {
			return 0, fmt.Errorf("lock %q lists job %d after job %d", line.key, aj.job.Seq, prev.job.Seq)
		}
		if p.jobs[aj.job.ID] != aj {
			return 0, fmt.Errorf("waiting job %d is not in the job map", aj.job.Seq)
		}
		prev = aj
		n++
	}
	if line.tail != prev {
		return 0, fmt.Errorf("lock %q has a wrong tail", line.key)
	}
	return n, nil
}

// checkPositionsLocked compares every waiting job's position with its rank
// by Seq.
func (p *Pool) checkPositionsLocked() error {
	var seqs []int64
	bySeq := map[int64]*activeJob{}
	for _, aj := range p.jobs {
		if aj.job.State.Waiting() {
			seqs = append(seqs, aj.job.Seq)
			bySeq[aj.job.Seq] = aj
		}
	}
	for _, seq := range seqs {
		rank := 1
		for _, other := range seqs {
			if other < seq {
				rank++
			}
		}
		if got := p.order.position(bySeq[seq]); got != rank {
			return fmt.Errorf("job %d has position %d, want %d", seq, got, rank)
		}
	}
	return nil
}

// Freeze makes the node stop renewing its leases, claiming and listening,
// as if its process hung, while its runs go on. Stop still ends it.
func (c *Cluster) Freeze() {
	c.stopDispatching()
	c.dispatching.Wait()
	c.stopBackground()
	c.background.Wait()
}
