package pool

import (
	"time"
)

// durationWindowSize is the number of recent job durations that wait
// estimates average over.
const durationWindowSize = 50

// retryAfterWithoutHistory is the Retry-After of a full queue before any
// job has finished, when the pool has nothing to estimate from.
const retryAfterWithoutHistory = 5 * time.Second

// durationWindow keeps the run times of the most recently finished jobs
// that ran, in milliseconds.
type durationWindow struct {
	values [durationWindowSize]int64
	count  int
	next   int
	sum    int64
}

func (w *durationWindow) add(ms int64) {
	if w.count == len(w.values) {
		w.sum -= w.values[w.next]
	} else {
		w.count++
	}
	w.values[w.next] = ms
	w.sum += ms
	w.next = (w.next + 1) % len(w.values)
}

// mean returns the mean duration in milliseconds and whether any job was
// recorded.
func (w *durationWindow) mean() (int64, bool) {
	if w.count == 0 {
		return 0, false
	}
	return w.sum / int64(w.count), true
}

// recordDurationLocked adds the run time of a job that ran to the window.
func (p *Pool) recordDurationLocked(job *Job) {
	p.durations.addJob(job)
}

// estimateWaitLocked estimates how long the job at a queue position waits
// for a slot; see durationWindow.estimateWait.
func (p *Pool) estimateWaitLocked(position int) *int64 {
	return p.durations.estimateWait(position, p.effectiveLimitLocked())
}

// retryAfterLocked estimates when a full queue has room again; see
// durationWindow.retryAfter.
func (p *Pool) retryAfterLocked() time.Duration {
	return p.durations.retryAfter(p.effectiveLimitLocked())
}

// estimateWait estimates how long the job at a queue position waits for
// one of limit slots: the mean duration of recent jobs times the number
// of rounds of the slot limit ahead of it, ceil(position / limit). It
// ignores lock waits and how long the running jobs have already run. It
// returns nil when no job has finished yet.
func (w *durationWindow) estimateWait(position, limit int) *int64 {
	mean, ok := w.mean()
	if !ok {
		return nil
	}
	rounds := int64((position + limit - 1) / limit)
	wait := mean * rounds
	return &wait
}

// retryAfter estimates when a full queue has room again: a waiting job
// starts, on average, every mean duration divided by the slot limit. The
// result is rounded up to whole seconds and is at least one second.
func (w *durationWindow) retryAfter(limit int) time.Duration {
	mean, ok := w.mean()
	if !ok {
		return retryAfterWithoutHistory
	}
	perStart := time.Duration(mean) * time.Millisecond / time.Duration(limit)
	seconds := (perStart + time.Second - 1) / time.Second
	return max(seconds, 1) * time.Second
}

// addJob adds the run time of a job that ran to the window.
func (w *durationWindow) addJob(job *Job) {
	if job.StartedAt == nil || job.FinishedAt == nil {
		return
	}
	w.add(job.FinishedAt.Sub(job.StartedAt.Time).Milliseconds())
}
