package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

// clusterLease is the --node-lease of the test nodes. It is short so
// that a killed node's jobs return to the queue within seconds.
const clusterLease = 2 * time.Second

// clusterSweep is the --lambda-sweep-interval of the test nodes: the
// sweep removes the instances whose submitting node died before their
// jobs ended.
const clusterSweep = time.Second

// clusterSlots is the --concurrent-jobs of the test nodes; a node with
// fewer usable cores has fewer slots.
const clusterSlots = 2

// activeStates lists the states of a job that has not ended, as SQL.
const activeStates = "('QUEUED', 'BLOCKED', 'RUNNING', 'CANCELLING')"

// cluster is a set of lambdaflow nodes that a test started on one fresh
// PostgreSQL database and one shared data directory. db is the test's own
// connection to that database, to read what the nodes stored.
type cluster struct {
	t   *testing.T
	url string
	dir string
	db  *sql.DB

	mu    sync.Mutex // guards nodes
	nodes []*clusterNode
	// next counts submissions, to spread them over the live nodes.
	next atomic.Uint64
}

// clusterNode is one node process. A node started again under the name
// of a stopped one is a second clusterNode.
type clusterNode struct {
	*instance
	name string
	// stopped is set once the node is stopped, by SIGKILL or SIGINT.
	stopped bool
}

// clusterSettings is the part of GET /api/v1/settings the cluster tests
// read.
type clusterSettings struct {
	ConcurrentJobs        int  `json:"concurrentJobs"`
	ClusterConcurrentJobs *int `json:"clusterConcurrentJobs"`
}

// newCluster creates a database of the test's own on the PostgreSQL test
// server and a data directory, and starts no node yet. Without a server
// the test is skipped, or fails on CI.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	url := databasetest.DatabaseURL(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &cluster{t: t, url: url, dir: t.TempDir(), db: db}
}

// start starts a node named name with the cluster flags and args.
func (c *cluster) start(name string, args ...string) *clusterNode {
	c.t.Helper()
	all := append(serveArgs(c.dir), "--database", c.url, "--cluster", "--node-name", name,
		"--node-lease", clusterLease.String(), "--concurrent-jobs", fmt.Sprint(clusterSlots),
		"--lambda-sweep-interval", clusterSweep.String())
	return c.launch(name, append(all, args...), nil)
}

// startFromEnv starts a node named name that reads its database and
// cluster settings from environment variables instead of flags.
func (c *cluster) startFromEnv(name string, args ...string) *clusterNode {
	c.t.Helper()
	env := []string{"LAMBDAFLOW_DATABASE_URL=" + c.url, "LAMBDAFLOW_CLUSTER=true",
		"LAMBDAFLOW_NODE_NAME=" + name, "LAMBDAFLOW_NODE_LEASE=" + clusterLease.String(),
		"LAMBDAFLOW_CONCURRENT_JOBS=" + fmt.Sprint(clusterSlots),
		"LAMBDAFLOW_LAMBDA_SWEEP_INTERVAL=" + clusterSweep.String()}
	return c.launch(name, append(serveArgs(c.dir), args...), env)
}

func (c *cluster) launch(name string, args, env []string) *clusterNode {
	c.t.Helper()
	n := &clusterNode{instance: startProcess(c.t, c.dir, args, env), name: name}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, n)
	return n
}

// live returns the nodes not stopped, in start order.
func (c *cluster) live() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*clusterNode
	for _, n := range c.nodes {
		if !n.stopped {
			live = append(live, n)
		}
	}
	return live
}

// processes returns every node process started, stopped ones too.
func (c *cluster) processes() []*instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []*instance
	for _, n := range c.nodes {
		all = append(all, n.instance)
	}
	return all
}

// node returns the live node named name.
func (c *cluster) node(name string) *clusterNode {
	c.t.Helper()
	for _, n := range c.live() {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no live node is named %q", name)
	return nil
}

// other returns a live node that is not named name.
func (c *cluster) other(name string) *clusterNode {
	c.t.Helper()
	for _, n := range c.live() {
		if n.name != name {
			return n
		}
	}
	c.t.Fatalf("no live node other than %q", name)
	return nil
}

// target returns the base URL of the next live node, round robin, so
// that submissions spread over all of them.
func (c *cluster) target() string {
	live := c.live()
	return live[c.next.Add(1)%uint64(len(live))].base
}

// slots returns the slot limit in force on each live node, by name.
func (c *cluster) slots() map[string]int {
	c.t.Helper()
	slots := map[string]int{}
	for _, n := range c.live() {
		var s clusterSettings
		expectStatus(c.t, n.do("GET", "/api/v1/settings", nil, &s), http.StatusOK)
		if s.ConcurrentJobs < 1 || s.ConcurrentJobs > clusterSlots {
			c.t.Fatalf("node %s: concurrentJobs %d, want 1 to %d", n.name, s.ConcurrentJobs, clusterSlots)
		}
		slots[n.name] = s.ConcurrentJobs
	}
	return slots
}

// poll calls cond every 10ms until it returns true, and fails the test
// when limit passes first.
func (c *cluster) poll(limit time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("waited %s for %s", limit, what)
		}
		<-tick.C
	}
}

// count runs a SELECT count(*) query on the database.
func (c *cluster) count(query string, args ...any) int {
	c.t.Helper()
	var n int
	if err := c.db.QueryRowContext(c.t.Context(), query, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// killNode kills the live node named name with SIGKILL, waits for it to
// exit, and takes it out of the live nodes.
func (c *cluster) killNode(name string) {
	c.t.Helper()
	c.leave(name).kill()
}

// terminateNode stops the live node named name with SIGINT, waits for a
// clean exit, and takes it out of the live nodes.
func (c *cluster) terminateNode(name string) {
	c.t.Helper()
	c.leave(name).terminate()
}

// leave takes the live node named name out of the live nodes, so that
// no more requests go to it, and returns it.
func (c *cluster) leave(name string) *clusterNode {
	c.t.Helper()
	n := c.node(name)
	c.mu.Lock()
	n.stopped = true
	c.mu.Unlock()
	return n
}

// killRecord is what a test saw of a node it killed: when it sent
// SIGKILL, when the process had exited, and the jobs the node held then.
type killRecord struct {
	node     string
	sentAt   time.Time
	exitedAt time.Time
	held     map[string]*heldJob
}

// heldJob is a job that ran on a node when the node was killed.
type heldJob struct {
	// firstStart is when its first attempt started.
	firstStart time.Time
	// lastHeld is the last time the test saw it RUNNING on attempt 1: it
	// was re-queued later.
	lastHeld time.Time
	// requeued is the first time the test saw it waiting on attempt 2: it
	// was re-queued before. It is zero when the test saw it only after
	// it had started again.
	requeued time.Time
}

// job returns the held job id, or nil when k is nil or the node did not
// hold the job.
func (k *killRecord) job(id string) *heldJob {
	if k == nil {
		return nil
	}
	return k.held[id]
}

// killMidRun waits until node name runs at least want jobs, kills it with
// SIGKILL and reads from the database which jobs it held at its death.
func (c *cluster) killMidRun(name string, want int) *killRecord {
	c.t.Helper()
	c.poll(30*time.Second, fmt.Sprintf("node %s to run %d jobs", name, want), func() bool {
		return c.count(`SELECT count(*) FROM jobs WHERE node = $1 AND state = 'RUNNING'`, name) >= want
	})

	k := &killRecord{node: name, sentAt: time.Now(), held: map[string]*heldJob{}}
	c.killNode(name)
	k.exitedAt = time.Now()

	// The dead node changes nothing any more, and no other node may
	// touch its jobs before its lease expires.
	rows, err := c.db.QueryContext(c.t.Context(),
		`SELECT id, started_at FROM jobs WHERE node = $1 AND state IN ('RUNNING', 'CANCELLING')`, name)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var started sql.NullString
		if err := rows.Scan(&id, &started); err != nil {
			c.t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, started.String)
		if err != nil {
			c.t.Fatalf("job %s held by the killed node: started_at %q: %v", id, started.String, err)
		}
		k.held[id] = &heldJob{firstStart: at, lastHeld: k.exitedAt}
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return k
}

// watchRequeue polls the database until every job the killed node held
// has started again or ended, and records when it saw each one still
// held and when it first saw it waiting again.
func (c *cluster) watchRequeue(k *killRecord) {
	c.t.Helper()
	ids := slices.Collect(maps.Keys(k.held))
	c.poll(10*clusterLease+30*time.Second, "the killed node's jobs to start again", func() bool {
		before := time.Now()
		rows, err := c.db.QueryContext(c.t.Context(), `SELECT id, state, attempt FROM jobs WHERE id = ANY($1)`, ids)
		if err != nil {
			c.t.Fatal(err)
		}
		defer rows.Close()
		after := time.Now()
		done := true
		for rows.Next() {
			var id, state string
			var attempt int
			if err := rows.Scan(&id, &state, &attempt); err != nil {
				c.t.Fatal(err)
			}
			h := k.held[id]
			switch {
			case attempt == 1 && (state == "RUNNING" || state == "CANCELLING"):
				h.lastHeld = before
				done = false
			case attempt == 2 && (state == "QUEUED" || state == "BLOCKED"):
				if h.requeued.IsZero() {
					h.requeued = after
				}
				done = false
			}
		}
		if err := rows.Err(); err != nil {
			c.t.Fatal(err)
		}
		return done
	})
}

// waitDrained waits until the database holds no job that has not ended,
// returns how long that took, and fails the test with the jobs left when
// limit passes first.
func (c *cluster) waitDrained(limit time.Duration) time.Duration {
	c.t.Helper()
	began := time.Now()
	deadline := began.Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.count(`SELECT count(*) FROM jobs WHERE state IN `+activeStates) > 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("jobs still active %s after the last submission:\n%s", limit, c.activeJobs())
		}
		<-tick.C
	}
	return time.Since(began)
}

// activeJobs describes the jobs that have not ended, one line each, and
// the end of each live node's log.
func (c *cluster) activeJobs() string {
	rows, err := c.db.QueryContext(c.t.Context(),
		`SELECT id, seq, lock_key, state, attempt, coalesce(node, ''), coalesce(started_at, '')
		 FROM jobs WHERE state IN `+activeStates+` ORDER BY seq`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, lock, state, node, started string
		var seq int64
		var attempt int
		if err := rows.Scan(&id, &seq, &lock, &state, &attempt, &node, &started); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "job %s seq %d lock %s: %s attempt %d node %q started %s\n",
			id, seq, lock, state, attempt, node, started)
	}
	for _, n := range c.live() {
		lines := strings.Split(strings.TrimSpace(n.logText()), "\n")
		fmt.Fprintf(&b, "last log lines of %s:\n%s\n", n.name, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	return b.String()
}

// clusterJob is a job as the API shows it, with its queue place and lock
// key, which only the database shows.
type clusterJob struct {
	crashJob
	seq     int64
	lockKey string
}

// node returns the name of the node that ran the job, or "" if none.
func (j clusterJob) node() string {
	if j.Node == nil {
		return ""
	}
	return *j.Node
}

// listJobs returns every job that s lists, by id.
func listJobs(t *testing.T, s *instance) map[string]crashJob {
	t.Helper()
	jobs := map[string]crashJob{}
	for offset := 0; ; offset += 500 {
		var page struct {
			Jobs  []crashJob `json:"jobs"`
			Total int        `json:"total"`
		}
		expectStatus(t, s.do("GET", fmt.Sprintf("/api/v1/jobs?limit=500&offset=%d", offset), nil, &page), http.StatusOK)
		for _, j := range page.Jobs {
			jobs[j.ID] = j
		}
		if len(page.Jobs) == 0 || offset+len(page.Jobs) >= page.Total {
			return jobs
		}
	}
}

// jobs returns every job as s lists it, in queue order, with its seq and
// lock key from the database.
func (c *cluster) jobs(s *instance) []clusterJob {
	c.t.Helper()
	listed := listJobs(c.t, s)
	rows, err := c.db.QueryContext(c.t.Context(), `SELECT id, seq, lock_key FROM jobs ORDER BY seq`)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	var jobs []clusterJob
	for rows.Next() {
		var j clusterJob
		var id string
		if err := rows.Scan(&id, &j.seq, &j.lockKey); err != nil {
			c.t.Fatal(err)
		}
		var ok bool
		if j.crashJob, ok = listed[id]; !ok {
			c.t.Fatalf("job %s is in the database, but %s does not list it", id, s.base)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	if len(jobs) != len(listed) {
		c.t.Fatalf("%s lists %d jobs, the database holds %d", s.base, len(listed), len(jobs))
	}
	return jobs
}

// checkSameOnLiveNodes checks that every live node lists each job in the
// same state, attempt, node and times as jobs.
func (c *cluster) checkSameOnLiveNodes(jobs []clusterJob) {
	c.t.Helper()
	for _, n := range c.live() {
		listed := listJobs(c.t, n.instance)
		if len(listed) != len(jobs) {
			c.t.Errorf("node %s lists %d jobs, want %d", n.name, len(listed), len(jobs))
		}
		var differ []string
		for _, want := range jobs {
			got := listed[want.ID]
			if got.State != want.State || got.Attempt != want.Attempt || !equalPtr(got.Node, want.Node) ||
				!equalPtr(got.StartedAt, want.StartedAt) || !equalPtr(got.FinishedAt, want.FinishedAt) {
				differ = append(differ, want.ID)
			}
		}
		if len(differ) > 0 {
			c.t.Errorf("node %s shows %d jobs otherwise than the first node, such as %s",
				n.name, len(differ), differ[0])
		}
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// checkIdle checks that nothing is left held: no job waits or runs by
// each live node's job list and queue view, nor by the database.
func (c *cluster) checkIdle() {
	c.t.Helper()
	for _, n := range c.live() {
		var active struct {
			Total int `json:"total"`
		}
		expectStatus(c.t, n.do("GET", "/api/v1/jobs?state=QUEUED&state=BLOCKED&state=RUNNING&state=CANCELLING", nil, &active), http.StatusOK)
		if active.Total != 0 {
			c.t.Errorf("node %s lists %d active jobs after the queue drained, want 0", n.name, active.Total)
		}
		var queue struct {
			Counts struct {
				Running int `json:"running"`
				Queued  int `json:"queued"`
				Blocked int `json:"blocked"`
			} `json:"counts"`
			Running []json.RawMessage `json:"running"`
		}
		expectStatus(c.t, n.do("GET", "/api/v1/monitor/queue", nil, &queue), http.StatusOK)
		if q := queue.Counts; q.Running != 0 || q.Queued != 0 || q.Blocked != 0 || len(queue.Running) != 0 {
			c.t.Errorf("node %s queue view: %d running (%d listed), %d queued, %d blocked; want none",
				n.name, q.Running, len(queue.Running), q.Queued, q.Blocked)
		}
	}
	if n := c.count(`SELECT count(*) FROM jobs WHERE state IN ` + activeStates); n != 0 {
		c.t.Errorf("the database holds %d active jobs after the queue drained, want 0:\n%s", n, c.activeJobs())
	}
}

// waitInstancesRemoved waits until the database holds no lambda
// instance: every job has ended, and each instance is removed when its
// job ends, by the node that accepted it or else by a sweep.
func (c *cluster) waitInstancesRemoved() {
	c.t.Helper()
	limit := 5*clusterSweep + 10*time.Second
	c.poll(limit, "the instances of the ended lambda jobs to be removed", func() bool {
		return c.count(`SELECT count(*) FROM instances`) == 0
	})
}

// waitClusterLimit waits until every live node shows want as its
// clusterConcurrentJobs, nil for no limit.
func (c *cluster) waitClusterLimit(want *int) {
	c.t.Helper()
	c.waitSettings(fmt.Sprintf("clusterConcurrentJobs %s", formatLimit(want)), func(s clusterSettings) bool {
		return equalPtr(s.ClusterConcurrentJobs, want)
	})
}

// waitSettings waits until the settings of every live node satisfy ok,
// and fails the test after 10 seconds.
func (c *cluster) waitSettings(what string, ok func(clusterSettings) bool) {
	c.t.Helper()
	c.poll(10*time.Second, "every node to show "+what, func() bool {
		for _, n := range c.live() {
			var s clusterSettings
			expectStatus(c.t, n.do("GET", "/api/v1/settings", nil, &s), http.StatusOK)
			if !ok(s) {
				return false
			}
		}
		return true
	})
}

func formatLimit(limit *int) string {
	if limit == nil {
		return "null"
	}
	return fmt.Sprint(*limit)
}
