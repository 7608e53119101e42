package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// clockTolerance is how far apart two nodes may stamp one instant in
// the queue order check. A node stamps a job's end before the commit that
// frees the job's lock for the other nodes, and stamps a start after the
// commit that took the job.
const clockTolerance = 50 * time.Millisecond

// clusterRuns returns the runs of the jobs, one per attempt. The first
// attempt of a job the killed node held ran there until the node died.
func clusterRuns(jobs []clusterJob, k *killRecord) []run {
	var runs []run
	for _, j := range jobs {
		if j.StartedAt != nil && j.FinishedAt != nil {
			runs = append(runs, run{id: j.ID, node: j.node(), start: *j.StartedAt, end: *j.FinishedAt})
		}
		if h := k.job(j.ID); h != nil {
			runs = append(runs, run{id: j.ID, node: k.node, start: h.firstStart, end: k.exitedAt})
		}
	}
	return runs
}

// checkRequeued checks the jobs the killed node held: each ran again as
// attempt 2 on another node, not before the node's lease could have
// expired, and completed. Every other job ran once. It returns how long
// after the kill the first and the last of them started again.
func checkRequeued(t *testing.T, jobs []clusterJob, k *killRecord) (first, last time.Duration) {
	t.Helper()
	// A node renews its lease every third of it, so the lease of a node
	// killed at sentAt expires no earlier than two thirds of it later.
	earliest := k.sentAt.Add(clusterLease / 3)
	seen := 0
	first = time.Duration(1<<63 - 1)
	for _, j := range jobs {
		h := k.job(j.ID)
		if h == nil {
			if j.Attempt != 1 {
				t.Errorf("job %s of %s: attempt %d, but the killed node did not hold it; want 1", j.ID, j.Project, j.Attempt)
			}
			continue
		}
		seen++
		if j.State != "COMPLETED" || j.Attempt != 2 {
			t.Errorf("job %s of %s, running on the killed node: state %s on attempt %d, error %+v; want COMPLETED on attempt 2",
				j.ID, j.Project, j.State, j.Attempt, j.Error)
			continue
		}
		if j.node() == k.node {
			t.Errorf("job %s of %s ran again on %s, the node that was killed", j.ID, j.Project, k.node)
		}
		if j.StartedAt.Before(earliest) {
			t.Errorf("job %s of %s started again at %s, %s after the kill, before the lease of %s could expire",
				j.ID, j.Project, clock(j.StartedAt), j.StartedAt.Sub(k.sentAt), clusterLease)
		}
		delay := j.StartedAt.Sub(k.sentAt)
		first, last = min(first, delay), max(last, delay)
	}
	if seen != len(k.held) {
		t.Errorf("the killed node held %d jobs, %d of them are listed", len(k.held), seen)
	}
	return first, last
}

// checkNodeSlots checks that every job that ran names a node of the
// cluster, and that no node ran more jobs at once than its slots.
func checkNodeSlots(t *testing.T, jobs []clusterJob, k *killRecord, slots map[string]int) {
	t.Helper()
	byNode := map[string][]run{}
	for _, r := range clusterRuns(jobs, k) {
		if _, ok := slots[r.node]; !ok {
			t.Errorf("job %s ran on node %q, want one of %v", r.id, r.node, slices.Sorted(maps.Keys(slots)))
			continue
		}
		byNode[r.node] = append(byNode[r.node], r)
	}
	for node, runs := range byNode {
		checkMaxRunning(t, "node "+node, runs, slots[node])
	}
}

// checkLockHolds checks that the jobs of one lock key (the project of an
// execute job, the instance of a lambda job) held it one at a time and
// took it in queue order. The job a killed node held keeps the lock at
// least until the test last saw it held.
func checkLockHolds(t *testing.T, jobs []clusterJob, k *killRecord) {
	t.Helper()
	holds := map[string][]run{}
	for _, j := range jobs {
		if h := k.job(j.ID); h != nil {
			holds[j.lockKey] = append(holds[j.lockKey], run{id: j.ID, start: h.firstStart, end: h.lastHeld})
		}
		if j.StartedAt != nil && j.FinishedAt != nil {
			holds[j.lockKey] = append(holds[j.lockKey], run{id: j.ID, start: *j.StartedAt, end: *j.FinishedAt})
		}
	}
	for key, list := range holds {
		slices.SortFunc(list, func(a, b run) int { return a.start.Compare(b.start) })
		holder := list[0]
		for _, r := range list[1:] {
			if r.id != holder.id && r.start.Before(holder.end) {
				t.Errorf("lock %s: job %s took it at %s while job %s held it until %s",
					key, r.id, clock(&r.start), holder.id, clock(&holder.end))
			}
			if r.end.After(holder.end) {
				holder = r
			}
		}
	}

	// Jobs arrive in seq order, so the first starts of one lock key must
	// follow it.
	last := map[string]clusterJob{}
	for _, j := range jobs {
		start := firstStart(j, k)
		if start == nil {
			continue
		}
		if prev, ok := last[j.lockKey]; ok && start.Before(*firstStart(prev, k)) {
			t.Errorf("lock %s: job %s (seq %d) started at %s, before job %s (seq %d), queued ahead of it, started at %s",
				j.lockKey, j.ID, j.seq, clock(start), prev.ID, prev.seq, clock(firstStart(prev, k)))
		}
		last[j.lockKey] = j
	}
}

// firstStart returns when the job's first attempt started, or nil if it
// never started.
func firstStart(j clusterJob, k *killRecord) *time.Time {
	if h := k.job(j.ID); h != nil {
		return &h.firstStart
	}
	return j.StartedAt
}

// span is an interval of time.
type span struct{ from, to time.Time }

// queueSpans returns when each job waited in the queue, by job id, and
// when some job held each lock key, by key.
func queueSpans(jobs []clusterJob, k *killRecord) (waits, held map[string][]span) {
	waits, held = map[string][]span{}, map[string][]span{}
	for _, j := range jobs {
		h := k.job(j.ID)
		// A job cancelled while it waited ends its wait when it ends.
		if until := firstStart(j, k); until != nil {
			waits[j.ID] = append(waits[j.ID], span{j.SubmittedAt, *until})
		} else if j.FinishedAt != nil {
			waits[j.ID] = append(waits[j.ID], span{j.SubmittedAt, *j.FinishedAt})
		}
		if h != nil && j.StartedAt != nil {
			// The killed node's job keeps its lock until it is re-queued.
			// Then it waits again, first of its lock key, until it starts.
			if h.requeued.IsZero() {
				held[j.lockKey] = append(held[j.lockKey], span{h.firstStart, *j.StartedAt})
			} else {
				held[j.lockKey] = append(held[j.lockKey], span{h.firstStart, h.requeued})
				waits[j.ID] = append(waits[j.ID], span{h.requeued, *j.StartedAt})
			}
		}
		if j.StartedAt != nil && j.FinishedAt != nil {
			held[j.lockKey] = append(held[j.lockKey], span{*j.StartedAt, *j.FinishedAt})
		}
	}
	return waits, held
}

// checkQueueOrder checks that no job started while a job ahead of it in
// the queue waited with its lock free: whichever node had the free slot
// should have started the job ahead. A wait or a lock hold counts from
// clockTolerance before to clockTolerance after its stamps.
func checkQueueOrder(t *testing.T, jobs []clusterJob, k *killRecord) {
	t.Helper()
	waits, held := queueSpans(jobs, k)
	place := map[string]int{}
	for i, j := range jobs {
		place[j.ID] = i
	}
	lockFree := func(key string, at time.Time) bool {
		for _, s := range held[key] {
			if !at.Before(s.from.Add(-clockTolerance)) && !at.After(s.to.Add(clockTolerance)) {
				return false
			}
		}
		return true
	}

	var violations []string
	for _, r := range clusterRuns(jobs, k) {
		for _, ahead := range jobs[:place[r.id]] {
			for _, w := range waits[ahead.ID] {
				if r.start.After(w.from.Add(clockTolerance)) && r.start.Before(w.to.Add(-clockTolerance)) &&
					lockFree(ahead.lockKey, r.start) {
					violations = append(violations, fmt.Sprintf(
						"job %s (seq %d) started at %s on %s while job %s (seq %d, lock %s free) waited from %s to %s",
						r.id, jobs[place[r.id]].seq, clock(&r.start), r.node, ahead.ID, ahead.seq, ahead.lockKey,
						clock(&w.from), clock(&w.to)))
					break
				}
			}
		}
	}
	if len(violations) > 0 {
		t.Errorf("%d starts broke the queue order; the first ones:\n  %s", len(violations),
			strings.Join(violations[:min(5, len(violations))], "\n  "))
	}
}
