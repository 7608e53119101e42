//go:build unix

package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// freezeRounds is how often TestClusterFrozenNodeDropsStaleRun freezes
// its node. Whether the frozen node claims its own job again before its
// old run has ended depends on timing, so each round is one more chance
// to catch a mix-up of the two runs.
const freezeRounds = 4

// TestClusterFrozenNodeDropsStaleRun freezes a node with SIGSTOP while it
// runs a job, for longer than its lease, so that the other node queues
// the job again. The other node has no free slot, so once thawed the
// frozen node runs the job's second attempt itself. That attempt must
// stop when a stop is sent through the other node, and the node must
// still shut down within its grace period: its stale first run must not
// take the place of the second one.
func TestClusterFrozenNodeDropsStaleRun(t *testing.T) {
	c := newCluster(t)
	x := c.start("node-x")
	x.createSleeper("endless", 3600)

	// node-x runs a job and a lambda job, so node-y, started next, takes
	// the two lambda jobs after them and has no free slot left.
	current := x.execute("endless", nil)
	x.waitState(current.ID, "RUNNING")
	spare := submitLambda(t, x.instance, "endless")
	x.waitState(spare.ID, "RUNNING")
	y := c.start("node-y")
	for range clusterSlots {
		j := submitLambda(t, y.instance, "endless")
		if j = y.waitState(j.ID, "RUNNING"); j.Node == nil || *j.Node != "node-y" {
			t.Fatalf("lambda job %s runs on %v, want node-y", j.ID, j.Node)
		}
	}
	stopThrough(t, y.instance, spare.ID, "free a slot of node-x", "CANCELLING", "CANCELLED")
	x.waitFinal(spare.ID)

	for round := range freezeRounds {
		x.cmd.Process.Signal(syscall.SIGSTOP)
		c.poll(10*clusterLease, "the frozen node's job to be queued again", func() bool {
			return c.count(`SELECT count(*) FROM jobs WHERE id = $1 AND attempt = 2 AND state IN ('QUEUED', 'BLOCKED')`,
				current.ID) == 1
		})
		x.cmd.Process.Signal(syscall.SIGCONT)
		again := y.waitJob(current.ID, "running again", func(j job) bool { return j.State == "RUNNING" && j.Attempt == 2 })
		if again.Node == nil || *again.Node != "node-x" {
			t.Fatalf("round %d: attempt 2 of job %s runs on %v, want node-x, the only one with a free slot",
				round, current.ID, again.Node)
		}

		reason := "stop the second attempt after a freeze"
		stopThrough(t, y.instance, current.ID, reason, "CANCELLING", "CANCELLED")
		c.poll(10*time.Second, "the second attempt to end CANCELLED after its stop", func() bool {
			return y.job(current.ID).State == "CANCELLED"
		})
		checkStopped(t, y.instance, current.ID, reason)

		current = x.execute("endless", nil)
		if j := x.waitState(current.ID, "RUNNING"); j.Node == nil || *j.Node != "node-x" {
			t.Fatalf("round %d: job %s runs on %v, want node-x", round, current.ID, j.Node)
		}
	}

	// A run the node lost track of would keep the shutdown waiting for
	// the hour of its delay.
	x.terminate()
}

// submitLambda invokes project through s without parameters and returns
// the queued job.
func submitLambda(t *testing.T, s *instance, project string) job {
	t.Helper()
	var j job
	expectStatus(t, s.do("POST", "/api/v1/projects/"+project+"/lambda", map[string]any{}, &j), http.StatusAccepted)
	return j
}
