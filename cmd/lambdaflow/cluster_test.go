package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClusterKillLosesNoJob runs three nodes on one PostgreSQL database
// and data directory, submits jobs through all of them, kills one with
// SIGKILL while it runs jobs and goes on submitting through the other
// two. Every accepted job must end exactly once, and the jobs the dead
// node ran must run again once its lease expires. The runs must respect
// the locks, the queue order and each node's slots.
func TestClusterKillLosesNoJob(t *testing.T) {
	began := time.Now()
	seed := *crashSeed
	t.Logf("seed %d; rerun with -crash-seed N to vary the jobs", seed)
	c := newCluster(t)
	debug := []string{"--log-level", "debug"}
	a := c.start("node-a", debug...)
	c.start("node-b", debug...)
	c.startFromEnv("node-c", debug...)
	slots := c.slots()

	// Each sleeper is created through a different node, and every node
	// must see it.
	delays := []float64{0.05, 0.1, 0.2, 0.3}
	clients := make([]*crashClient, len(delays))
	for i, delay := range delays {
		name := fmt.Sprintf("sleeper-%d", i)
		c.live()[i%3].createSleeper(name, delay)
		clients[i] = &crashClient{project: name, rng: rand.New(rand.NewPCG(seed, uint64(i+1))),
			httpClient: &http.Client{Timeout: 10 * time.Second, Transport: newSpecValidator(t, false)},
			ownLambdas: true, interval: 60 * time.Millisecond}
	}
	for _, n := range c.live() {
		for i := range delays {
			expectStatus(t, n.do("GET", fmt.Sprintf("/api/v1/projects/sleeper-%d", i), nil, nil), http.StatusOK)
		}
	}

	// The clients submit about 60 jobs a second, more than the nodes run,
	// so the queue grows. node-c dies after 150 accepted jobs, and the
	// clients go on until 300.
	var l ledger
	stop := make(chan struct{})
	counts := make(chan int, 4096)
	wg := runClients(t, c.target, clients, &l, stop, counts)
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopClients()
	awaitAccepted(t, counts, 150, 60*time.Second)
	k := c.killMidRun("node-c", slots["node-c"])
	c.watchRequeue(k)
	awaitAccepted(t, counts, 300, 60*time.Second)
	stopClients()
	submitted := time.Since(began)

	subs := l.all()
	drain := c.waitDrained(120 * time.Second)
	jobs := waitAllFinal(t, a.instance, subs, 10*time.Second)
	logOutcomes(t, jobs)
	checkEndedOnce(t, c.processes(), subs, jobs)
	checkProjectOrder(t, subs, jobs)

	all := c.jobs(a.instance)
	firstRequeue, lastRequeue := checkRequeued(t, all, k)
	checkNodeSlots(t, all, k, slots)
	checkLockHolds(t, all, k)
	checkQueueOrder(t, all, k)
	c.checkSameOnLiveNodes(all)
	c.checkIdle()
	c.waitInstancesRemoved()
	checkIdle(t, a.instance, delays)

	// The killed node's name may join again, and its node takes jobs.
	restarted := c.start("node-c", debug...)
	checkIdle(t, restarted.instance, delays)

	t.Logf("%d jobs accepted by the clients, %d in the database; node-c held %d when killed, "+
		"started again %s to %s after the kill", len(subs), len(all), len(k.held), firstRequeue, lastRequeue)
	t.Logf("submitting took %s, draining %s more; the test ran %s", submitted, drain, time.Since(began))
}

// awaitAccepted reads counts until the clients have had n jobs accepted,
// and fails the test when limit passes first.
func awaitAccepted(t *testing.T, counts <-chan int, n int, limit time.Duration) {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case got := <-counts:
			if got >= n {
				return
			}
		case <-timeout:
			t.Fatalf("the nodes did not accept %d jobs within %s", n, limit)
		}
	}
}

// TestClusterLimitCapsAllNodes sets clusterConcurrentJobs through one
// node of three: the running jobs of all nodes together must never exceed
// it, and once it is cleared the nodes must use all their slots again.
func TestClusterLimitCapsAllNodes(t *testing.T) {
	c := newCluster(t)
	a := c.start("node-a")
	b := c.start("node-b")
	third := c.start("node-c")
	slots := c.slots()
	a.createSleeper("sleeper", 0.3)

	expectStatus(t, b.do("PATCH", "/api/v1/settings", map[string]any{"clusterConcurrentJobs": 0}, nil),
		http.StatusUnprocessableEntity)
	const limit = 3
	var set clusterSettings
	expectStatus(t, b.do("PATCH", "/api/v1/settings", map[string]any{"clusterConcurrentJobs": limit}, &set), http.StatusOK)
	if set.ClusterConcurrentJobs == nil || *set.ClusterConcurrentJobs != limit {
		t.Fatalf("PATCH clusterConcurrentJobs %d returned %s", limit, formatLimit(set.ClusterConcurrentJobs))
	}
	want := limit
	c.waitClusterLimit(&want)

	submitSleepers(t, c, "sleeper", 60)
	c.waitDrained(120 * time.Second)
	capped := c.jobs(a.instance)
	runs := clusterRuns(capped, nil)
	checkMaxRunning(t, "the cluster", runs, limit)
	if peak := peakRunning(runs); peak < limit {
		t.Errorf("at most %d jobs ran at once, so the limit of %d was never reached", peak, limit)
	}
	checkNodeSlots(t, capped, nil, slots)
	checkLockHolds(t, capped, nil)
	checkQueueOrder(t, capped, nil)

	expectStatus(t, third.do("PATCH", "/api/v1/settings", map[string]any{"clusterConcurrentJobs": nil}, &set), http.StatusOK)
	if set.ClusterConcurrentJobs != nil {
		t.Fatalf("PATCH clusterConcurrentJobs null returned %d", *set.ClusterConcurrentJobs)
	}
	c.waitClusterLimit(nil)
	submitSleepers(t, c, "sleeper", 24)
	c.waitDrained(60 * time.Second)
	free := c.jobs(a.instance)[len(capped):]
	if peak := peakRunning(clusterRuns(free, nil)); peak <= limit {
		t.Errorf("after the limit was cleared at most %d jobs ran at once, want more than the old limit %d", peak, limit)
	}
	checkNodeSlots(t, free, nil, slots)

	// The slot limit is shared too: set through one node, it caps all.
	expectStatus(t, a.do("PATCH", "/api/v1/settings", map[string]any{"concurrentJobs": 1}, nil), http.StatusOK)
	c.waitSettings("concurrentJobs 1", func(s clusterSettings) bool { return s.ConcurrentJobs == 1 })
	submitSleepers(t, c, "sleeper", 12)
	c.waitDrained(60 * time.Second)
	single := c.jobs(a.instance)[len(capped)+len(free):]
	checkNodeSlots(t, single, nil, map[string]int{"node-a": 1, "node-b": 1, "node-c": 1})
	c.checkIdle()
	c.waitInstancesRemoved()
}

// TestClusterShutdownLeavesQueueToOthers stops one of two nodes with
// SIGINT while it runs jobs and more wait. The node must start no job
// after the signal, finish or cancel its running ones, and exit cleanly,
// and the other node must run every waiting job once.
func TestClusterShutdownLeavesQueueToOthers(t *testing.T) {
	c := newCluster(t)
	a := c.start("node-a", "--shutdown-grace", "1s")
	a.createSleeper("long", 60)
	a.createSleeper("short", 0.2)
	long := a.execute("long", nil)
	a.waitState(long.ID, "RUNNING")

	b := c.start("node-b")
	var ids []string
	for i := range 12 {
		ids = append(ids, submitLambda(t, []*clusterNode{a, b}[i%2].instance, "short").ID)
	}
	signal := time.Now()
	c.terminateNode("node-a")

	handedOn := 0
	for _, id := range ids {
		b.waitFinal(id)
		var j crashJob
		expectStatus(t, b.do("GET", "/api/v1/jobs/"+id, nil, &j), http.StatusOK)
		if j.State != "COMPLETED" || j.Attempt != 1 {
			t.Errorf("short job %s: state %s on attempt %d, error %+v; want COMPLETED on attempt 1",
				id, j.State, j.Attempt, j.Error)
		}
		if !j.StartedAt.After(signal.Add(clockTolerance)) {
			continue
		}
		handedOn++
		if j.Node == nil || *j.Node != "node-b" {
			t.Errorf("short job %s started at %s on %v, after node-a was signalled at %s; want node-b",
				id, clock(j.StartedAt), j.Node, clock(&signal))
		}
	}
	// 12 jobs of 0.2s on four slots cannot all have started by the
	// signal, so some waited through it.
	if handedOn == 0 {
		t.Errorf("every short job started before node-a was signalled, so none was left to node-b")
	}
	t.Logf("%d of %d short jobs started after node-a was signalled", handedOn, len(ids))
	var j crashJob
	expectStatus(t, b.do("GET", "/api/v1/jobs/"+long.ID, nil, &j), http.StatusOK)
	if j.State != "CANCELLED" || j.Stop == nil || j.Stop.By != "system" {
		t.Errorf("long job, running past node-a's grace period: state %s, stop %+v; want CANCELLED by system",
			j.State, j.Stop)
	}
	c.checkIdle()
	c.waitInstancesRemoved()
}

// submitSleepers submits n jobs of project through the live nodes in
// turn: every third an execute, the others lambda invocations, whose
// instances run in parallel.
func submitSleepers(t *testing.T, c *cluster, project string, n int) {
	t.Helper()
	for i := range n {
		s := c.live()[i%len(c.live())]
		path := "/api/v1/projects/" + project + "/lambda"
		if i%3 == 0 {
			path = "/api/v1/projects/" + project + "/execute"
		}
		expectStatus(t, s.do("POST", path, map[string]any{}, nil), http.StatusAccepted)
	}
}

// TestClusterStopReachesAnyNode stops jobs through a node that does not
// run them: a running job, a waiting one, and one whose node was killed.
// It also downloads an output through a node that did not write it.
func TestClusterStopReachesAnyNode(t *testing.T) {
	c := newCluster(t)
	a := c.start("node-a")
	c.start("node-b")
	a.createSleeper("long", 60)

	j := a.execute("long", nil)
	j = a.waitState(j.ID, "RUNNING")
	if j.Node == nil {
		t.Fatalf("running job %s names no node", j.ID)
	}
	runner := c.node(*j.Node)
	other := c.other(runner.name)
	sent := time.Now()
	stopThrough(t, other.instance, j.ID, "stopped through the other node", "CANCELLING", "CANCELLED")
	other.waitFinal(j.ID)
	stopped := checkStopped(t, other.instance, j.ID, "stopped through the other node")
	if took := stopped.FinishedAt.Sub(sent); took > 10*time.Second {
		t.Errorf("the running job ended %s after the stop, want well before its 60s delay", took)
	}
	checkStopped(t, runner.instance, j.ID, "stopped through the other node")

	// A job waiting for the lock of a running job is cancelled at once.
	holder := runner.execute("long", nil)
	runner.waitState(holder.ID, "RUNNING")
	waiting := runner.execute("long", nil)
	stopThrough(t, other.instance, waiting.ID, "waiting job stopped through the other node", "CANCELLED")
	checkStopped(t, runner.instance, waiting.ID, "waiting job stopped through the other node")

	// Any node serves the outputs of a job that another node ran.
	out := other.execute("seattle-weather", nil)
	out = other.waitFinal(out.ID)
	if out.State != "COMPLETED" || len(out.Outputs) == 0 || out.Node == nil {
		t.Fatalf("seattle-weather job: state %s, %d outputs, node %v; want COMPLETED with outputs and a node",
			out.State, len(out.Outputs), out.Node)
	}
	reader := c.other(*out.Node)
	for _, o := range out.Outputs {
		resp := reader.do("GET", o.URL, nil, nil)
		expectStatus(t, resp, http.StatusOK)
		body, _ := io.ReadAll(resp.Body)
		if int64(len(body)) != o.Bytes || !bytes.Contains(body, []byte(",")) {
			t.Errorf("output %s of a job on %s, read through %s: %d bytes, want %d of CSV",
				o.Name, *out.Node, reader.name, len(body), o.Bytes)
		}
	}

	// The job of a killed node, stopped through a survivor, ends
	// CANCELLED once the node's lease expires, and never runs again.
	holder = runner.job(holder.ID)
	if holder.State != "RUNNING" || holder.Node == nil {
		t.Fatalf("job %s: state %s on node %v, want RUNNING on a node", holder.ID, holder.State, holder.Node)
	}
	survivor := c.other(*holder.Node)
	killed := time.Now()
	c.killNode(*holder.Node)
	stopThrough(t, survivor.instance, holder.ID, "stopped after its node died", "CANCELLING", "CANCELLED")
	survivor.waitFinal(holder.ID)
	orphan := checkStopped(t, survivor.instance, holder.ID, "stopped after its node died")
	if orphan.Attempt != 1 {
		t.Errorf("job of the killed node, stopped: attempt %d, want 1", orphan.Attempt)
	}
	t.Logf("the stopped job of the killed node ended %s after the kill, with a lease of %s",
		orphan.FinishedAt.Sub(killed).Round(time.Millisecond), clusterLease)
	c.checkIdle()
}

// TestClusterJobInterruptedTwiceFails kills the node that runs a job,
// then the node that runs it again: the third node ends it FAILED with
// INTERRUPTED instead of running it a third time.
func TestClusterJobInterruptedTwiceFails(t *testing.T) {
	c := newCluster(t)
	a := c.start("node-a")
	c.start("node-b")
	c.start("node-c")
	a.createSleeper("endless", 3600)

	j := a.execute("endless", nil)
	j = a.waitState(j.ID, "RUNNING")
	if j.Node == nil {
		t.Fatalf("running job %s names no node", j.ID)
	}
	first := *j.Node
	c.killNode(first)

	watcher := c.live()[0]
	j = watcher.waitJob(j.ID, "running again", func(j job) bool { return j.State == "RUNNING" && j.Attempt == 2 })
	if j.Node == nil || *j.Node == first {
		t.Fatalf("attempt 2 of job %s runs on node %v, want a live node", j.ID, j.Node)
	}
	second := *j.Node
	c.killNode(second)

	j = c.live()[0].waitFinal(j.ID)
	if j.State != "FAILED" || j.Error == nil || j.Error.Type != "INTERRUPTED" {
		t.Errorf("job interrupted on %s and %s: state %s, error %+v; want FAILED with INTERRUPTED",
			first, second, j.State, j.Error)
	}
	if j.Attempt != 2 {
		t.Errorf("job interrupted twice: attempt %d, want 2", j.Attempt)
	}
	c.checkIdle()
}

// stopThrough stops job id through s and checks that the returned job is
// in one of the states.
func stopThrough(t *testing.T, s *instance, id, reason string, states ...string) {
	t.Helper()
	var j crashJob
	body := map[string]any{"by": "cluster-test", "reason": reason}
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+id+"/stop", body, &j), http.StatusOK)
	for _, state := range states {
		if j.State == state {
			return
		}
	}
	t.Errorf("stop of job %s (%s) returned state %s, want one of %v", id, reason, j.State, states)
}

// checkStopped checks that s shows job id CANCELLED with the stop record
// of stopThrough, and returns the job.
func checkStopped(t *testing.T, s *instance, id, reason string) crashJob {
	t.Helper()
	var j crashJob
	expectStatus(t, s.do("GET", "/api/v1/jobs/"+id, nil, &j), http.StatusOK)
	if j.State != "CANCELLED" {
		t.Errorf("job %s (%s): state %s, want CANCELLED", id, reason, j.State)
	}
	switch {
	case j.Stop == nil:
		t.Errorf("job %s (%s): stop record is null", id, reason)
	case j.Stop.By != "cluster-test":
		t.Errorf("job %s (%s): stopped by %q, want cluster-test", id, reason, j.Stop.By)
	case j.Stop.Reason != reason:
		t.Errorf("job %s: stop reason %q, want %q", id, j.Stop.Reason, reason)
	}
	if j.FinishedAt == nil {
		t.Fatalf("job %s (%s): finishedAt is null", id, reason)
	}
	return j
}

// TestClusterRestartedNodeRequeuesAtOnce kills the node that runs a job
// and starts it again under its name. The new process must queue its
// predecessor's job again at once, long before the lease of 30 seconds
// would have let another node do it.
func TestClusterRestartedNodeRequeuesAtOnce(t *testing.T) {
	const lease = "30s"
	c := newCluster(t)
	a := c.start("node-a", "--node-lease", lease)
	c.start("node-b", "--node-lease", lease)
	a.createSleeper("slow", 1)

	j := a.execute("slow", nil)
	j = a.waitState(j.ID, "RUNNING")
	if j.Node == nil {
		t.Fatalf("running job %s names no node", j.ID)
	}
	c.killNode(*j.Node)
	killed := time.Now()
	restarted := c.start(*j.Node, "--node-lease", lease)

	var got crashJob
	restarted.waitFinal(j.ID)
	expectStatus(t, restarted.do("GET", "/api/v1/jobs/"+j.ID, nil, &got), http.StatusOK)
	if got.State != "COMPLETED" || got.Attempt != 2 {
		t.Errorf("job of the restarted node: state %s on attempt %d, error %+v; want COMPLETED on attempt 2",
			got.State, got.Attempt, got.Error)
	}
	if after := got.StartedAt.Sub(killed); after > 10*time.Second {
		t.Errorf("job of the restarted node started again %s after the kill, want well within its lease of %s",
			after, lease)
	}
	c.checkIdle()
}

// TestClusterRejectsConflictingNodes starts nodes that must not join a
// running cluster node: one without --cluster, one under a name in use,
// and one with --cluster but no database. Each must exit with a message
// that names the conflict, and the cluster node must go on running jobs.
func TestClusterRejectsConflictingNodes(t *testing.T) {
	c := newCluster(t)
	a := c.start("node-a")

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"without --cluster", []string{"--database", c.url},
			"several nodes can share one database only when every node runs with --cluster"},
		{"name in use", []string{"--database", c.url, "--cluster", "--node-name", "node-a"},
			`node name "node-a": a running node of this cluster already uses this node name`},
		{"without --database", []string{"--cluster", "--node-name", "node-z"},
			"--cluster needs --database"},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		args := append(serveArgs(t.TempDir()), tc.args...)
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(os.Environ(), "LAMBDAFLOW_DATABASE_URL=")
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("node %s exited 0; output:\n%s", tc.name, out)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("node %s: output does not say %q:\n%s", tc.name, tc.want, out)
		}
		if strings.Contains(string(out), "lambdaflow serving") {
			t.Errorf("node %s served before it exited:\n%s", tc.name, out)
		}
	}

	j := a.execute("seattle-weather", nil)
	if got := a.waitFinal(j.ID); got.State != "COMPLETED" {
		t.Errorf("cluster node's job after the rejections: state %s, want COMPLETED", got.State)
	}
}

// TestClusterIdempotencyKeyQueuesOneJob sends one keyed lambda request to
// every node at once, twice per node, and expects one job per key.
func TestClusterIdempotencyKeyQueuesOneJob(t *testing.T) {
	c := newCluster(t)
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		c.start(name)
	}
	const keys = 8
	for k := range keys {
		key := fmt.Sprintf("key-%d", k)
		body := fmt.Sprintf(`{"parameters":{"weather":"sun","year":2013},"idempotencyKey":%q}`, key)
		var wg sync.WaitGroup
		ids := make(chan string, 6)
		errs := make(chan error, 6)
		for _, n := range c.live() {
			for range 2 {
				wg.Go(func() {
					resp, err := http.Post(n.base+"/api/v1/projects/seattle-weather/lambda", "application/json", strings.NewReader(body))
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					var j job
					if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("node %s: status %d, decode error %v", n.name, resp.StatusCode, err)
						return
					}
					ids <- j.ID
				})
			}
		}
		wg.Wait()
		close(ids)
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", key, err)
		}
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Errorf("%s: the six requests returned %d different jobs, want 1", key, len(seen))
		}
	}
	if n := c.count("SELECT COUNT(*) FROM jobs WHERE project = $1", "seattle-weather"); n != keys {
		t.Errorf("the database holds %d seattle-weather jobs for %d keys, want one per key", n, keys)
	}
}
