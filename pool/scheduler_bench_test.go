package pool

import (
	"fmt"
	"testing"
)

// BenchmarkSchedulerCycle measures the scheduler's data structures alone,
// without goroutines or a store: take the oldest runnable job, let it
// hold its lock, release the lock, and queue a new job. waiting/100 locks
// hold 100 jobs each, so 99% of the jobs are BLOCKED.
func BenchmarkSchedulerCycle(b *testing.B) {
	for _, waiting := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("waiting=%d", waiting), func(b *testing.B) {
			p := &Pool{jobs: map[string]*activeJob{}, lines: map[string]*lockLine{}}
			locks := waiting / 100
			enqueue := func(i int) {
				lock := fmt.Sprintf("lock-%d", i%locks)
				state := StateBlocked
				if p.lines[lock] == nil {
					state = StateQueued
				}
				p.enqueueLocked(&activeJob{job: &Job{ID: fmt.Sprint(i), Seq: int64(i), LockKey: lock, State: state}})
			}
			for i := range waiting {
				enqueue(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				line := p.ready[0]
				aj := line.head
				p.unlinkLocked(aj)
				line.holder = aj
				p.refreshLineLocked(line)

				line.holder = nil
				applyChanges(promotion(line.head))
				delete(p.jobs, aj.job.ID)
				p.refreshLineLocked(line)
				enqueue(waiting + i)
			}
		})
	}
}
