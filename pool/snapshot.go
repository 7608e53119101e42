package pool

import (
	"cmp"
	"slices"
)

// Counts are the numbers of active jobs by state, with the limits in
// force.
type Counts struct {
	// Running counts the jobs holding a slot, RUNNING or CANCELLING.
	Running int
	Queued  int
	Blocked int
	// ConcurrentJobs is the slot limit in force.
	ConcurrentJobs int
}

// Snapshot is a consistent view of the active jobs.
type Snapshot struct {
	Settings Settings
	Counts   Counts
	// Running lists the RUNNING and CANCELLING jobs in start order.
	Running []*Job
	// Waiting lists the first waiting jobs in queue order, which is the
	// submission order, each with Position and WaitingFor set.
	Waiting []*Job
}

// Counts returns the numbers of active jobs by state. It takes time
// linear in the number of active jobs.
func (p *Pool) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	counts := Counts{Running: p.running, ConcurrentJobs: p.effectiveLimitLocked()}
	for _, aj := range p.jobs {
		switch aj.job.State {
		case StateQueued:
			counts.Queued++
		case StateBlocked:
			counts.Blocked++
		}
	}
	return counts
}

// Snapshot returns the running jobs and the first maxWaiting waiting
// jobs, all taken at one instant. A maxWaiting of 0 or less lists no
// waiting job; Counts still counts them all.
func (p *Pool) Snapshot(maxWaiting int) Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	counts, running, waiting := p.activeLocked()

	slices.SortFunc(running, func(a, b *activeJob) int {
		if c := a.job.StartedAt.Compare(b.job.StartedAt.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.job.Seq, b.job.Seq)
	})
	slices.SortFunc(waiting, func(a, b *activeJob) int { return cmp.Compare(a.job.Seq, b.job.Seq) })
	waiting = waiting[:min(len(waiting), max(maxWaiting, 0))]

	snap := Snapshot{Settings: p.settingsLocked(), Counts: counts,
		Running: make([]*Job, len(running)), Waiting: make([]*Job, len(waiting))}
	for i, aj := range running {
		snap.Running[i] = p.viewLocked(aj)
	}
	for i, aj := range waiting {
		snap.Waiting[i] = p.viewLocked(aj)
	}
	return snap
}

// activeLocked counts the active jobs and splits them into the ones
// holding a slot and the waiting ones, in no particular order.
func (p *Pool) activeLocked() (Counts, []*activeJob, []*activeJob) {
	counts := Counts{ConcurrentJobs: p.effectiveLimitLocked()}
	var running, waiting []*activeJob
	for _, aj := range p.jobs {
		switch aj.job.State {
		case StateQueued:
			counts.Queued++
			waiting = append(waiting, aj)
		case StateBlocked:
			counts.Blocked++
			waiting = append(waiting, aj)
		case StateRunning, StateCancelling:
			counts.Running++
			running = append(running, aj)
		}
	}
	return counts, running, waiting
}
