package pool

import (
	"testing"

	"pgregory.net/rapid"
)

// TestWaitOrderMatchesNaiveRank adds and removes jobs in Seq order at
// random and compares every position with a count over the live jobs.
func TestWaitOrderMatchesNaiveRank(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var order waitOrder
		var live []*activeJob
		n := rapid.IntRange(0, 3000).Draw(rt, "operations")
		for range n {
			if len(live) == 0 || rapid.Float64Range(0, 1).Draw(rt, "add") < 0.4 {
				j := &activeJob{}
				order.add(j)
				live = append(live, j)
				continue
			}
			i := rapid.IntRange(0, len(live)-1).Draw(rt, "remove")
			order.remove(live[i])
			live = append(live[:i], live[i+1:]...)
		}
		if order.live != len(live) {
			rt.Fatalf("live = %d, want %d", order.live, len(live))
		}
		for want, j := range live {
			if got := order.position(j); got != want+1 {
				rt.Fatalf("position of job %d = %d, want %d", want, got, want+1)
			}
		}
	})
}

func TestWaitOrderCompacts(t *testing.T) {
	var order waitOrder
	jobs := make([]*activeJob, 5000)
	for i := range jobs {
		jobs[i] = &activeJob{}
		order.add(jobs[i])
	}
	for _, j := range jobs[:4990] {
		order.remove(j)
	}
	if len(order.members) > 2000 {
		t.Errorf("slots = %d with %d jobs left, want the slots compacted", len(order.members), order.live)
	}
	for i, j := range jobs[4990:] {
		if got := order.position(j); got != i+1 {
			t.Errorf("position = %d after compaction, want %d", got, i+1)
		}
	}
	order.remove(jobs[0])
	if order.live != 10 {
		t.Errorf("live = %d after removing a job twice, want 10", order.live)
	}
}
