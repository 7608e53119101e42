package pool_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// clusterNode is one started node of a test cluster and its runner.
type clusterNode struct {
	name    string
	cluster *pool.Cluster
	runner  *pooltest.Runner
}

// testLease is short so that tests of dead nodes end quickly, and long
// enough that a busy machine still renews in time.
const testLease = 600 * time.Millisecond

// startCluster starts nodes on one fresh PostgreSQL schema, each with one
// slot, and stops them when the test ends.
func startCluster(t *testing.T, names ...string) []*clusterNode {
	t.Helper()
	url := databasetest.SchemaURL(t)
	nodes := make([]*clusterNode, len(names))
	for i, name := range names {
		nodes[i] = startNode(t, url, name)
	}
	return nodes
}

func startNode(t *testing.T, url, name string) *clusterNode {
	t.Helper()
	db, err := database.OpenPostgresClusterNode(t.Context(), url, name)
	if err != nil {
		t.Fatalf("opening node %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	runner := pooltest.NewRunner()
	c, err := pool.NewCluster(pool.ClusterConfig{
		Config: pool.Config{MaxConcurrentJobs: 1, OutputRoot: t.TempDir(), Logger: slog.New(newLogRecorder())},
		Node:   name, Lease: testLease, Poll: 50 * time.Millisecond,
	}, db, runner)
	if err != nil {
		t.Fatalf("NewCluster(%s): %v", name, err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("starting node %s: %v", name, err)
	}
	t.Cleanup(c.Stop)
	t.Cleanup(func() { runner.EndAll(errors.New("test ended")) })
	return &clusterNode{name: name, cluster: c, runner: runner}
}

func clusterSubmit(t *testing.T, n *clusterNode, lock string) *pool.Job {
	t.Helper()
	job, err := n.cluster.Submit(t.Context(), pool.Submission{
		Project: lock, LockKey: lock, Blocks: []pool.BlockRun{{Name: "load", Type: "csv.read"}},
	})
	if err != nil {
		t.Fatalf("Submit(%s) on %s: %v", lock, n.name, err)
	}
	return job
}

// awaitRunOn waits until one of nodes runs job id and returns that node
// and the run.
func awaitRunOn(t *testing.T, id string, nodes ...*clusterNode) (*clusterNode, *pooltest.Run) {
	t.Helper()
	ctx, cancel := context.WithCancel(awaitContext(t))
	defer cancel()
	type found struct {
		node *clusterNode
		run  *pooltest.Run
	}
	result := make(chan found, len(nodes))
	for _, n := range nodes {
		go func() {
			if run, err := n.runner.Await(ctx, id); err == nil {
				result <- found{n, run}
			}
		}()
	}
	select {
	case f := <-result:
		return f.node, f.run
	case <-ctx.Done():
		t.Fatalf("job %s did not run on any node", id)
		return nil, nil
	}
}

func awaitClusterFinal(t *testing.T, n *clusterNode, id string) *pool.Job {
	t.Helper()
	job, err := n.cluster.Await(awaitContext(t), id)
	if err != nil {
		t.Fatalf("awaiting job %s on %s: %v", id, n.name, err)
	}
	return job
}

func TestClusterSharesOneFIFOQueue(t *testing.T) {
	nodes := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	var jobs []*pool.Job
	for _, lock := range []string{"p1", "p2", "p3", "p4"} {
		jobs = append(jobs, clusterSubmit(t, a, lock))
	}
	first, run1 := awaitRunOn(t, jobs[0].ID, a, b)
	second, run2 := awaitRunOn(t, jobs[1].ID, a, b)
	if first == second {
		t.Fatalf("jobs 1 and 2 both run on node %s, which has one slot", first.name)
	}
	if got := b.cluster.Counts(); got.Running != 2 || got.Queued != 2 {
		t.Errorf("counts = %+v, want 2 running and 2 queued", got)
	}
	view, err := b.cluster.Job(t.Context(), jobs[3].ID)
	if err != nil || view.Position == nil || *view.Position != 2 || view.WaitingFor.Reason != pool.ReasonSlot {
		t.Errorf("job 4 = %+v (err %v), want position 2 waiting for a slot", view, err)
	}

	run1.Complete(pool.Outcome{})
	node3, run3 := awaitRunOn(t, jobs[2].ID, a, b)
	if node3 != first {
		t.Errorf("job 3 runs on %s, want %s, the only node with a free slot", node3.name, first.name)
	}
	run2.Complete(pool.Outcome{})
	_, run4 := awaitRunOn(t, jobs[3].ID, a, b)
	run3.Complete(pool.Outcome{})
	run4.Complete(pool.Outcome{})
	for _, job := range jobs {
		final := awaitClusterFinal(t, b, job.ID)
		if final.State != pool.StateCompleted || final.Attempt != 1 || final.Node == nil {
			t.Errorf("job %s ended %s attempt %d on node %v, want COMPLETED attempt 1 with a node", job.ID, final.State, final.Attempt, final.Node)
		}
	}
	if calls := len(a.runner.Calls()) + len(b.runner.Calls()); calls != len(jobs) {
		t.Errorf("the nodes ran %d jobs, want %d: a job ran twice", calls, len(jobs))
	}
}

func TestClusterRunsOneJobPerLockAcrossNodes(t *testing.T) {
	nodes := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	first := clusterSubmit(t, a, "report")
	second := clusterSubmit(t, b, "report")
	other := clusterSubmit(t, b, "other")

	holder, run := awaitRunOn(t, first.ID, a, b)
	// The node without the lock's job takes the later job of another
	// lock, which shows it had a free slot and still left "report" alone.
	_, otherRun := awaitRunOn(t, other.ID, a, b)
	view, err := b.cluster.Job(t.Context(), second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if view.State != pool.StateBlocked || view.WaitingFor == nil || view.WaitingFor.BlockedBy == nil || *view.WaitingFor.BlockedBy != first.ID {
		t.Fatalf("second job = %s waiting for %+v, want BLOCKED by %s", view.State, view.WaitingFor, first.ID)
	}
	otherRun.Complete(pool.Outcome{})
	awaitClusterFinal(t, a, other.ID)
	run.Complete(pool.Outcome{})
	_, secondRun := awaitRunOn(t, second.ID, a, b)
	secondRun.Complete(pool.Outcome{})
	awaitClusterFinal(t, a, second.ID)
	_ = holder
}

func TestClusterStopReachesTheNodeRunningTheJob(t *testing.T) {
	nodes := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	job := clusterSubmit(t, a, "report")
	runner, run := awaitRunOn(t, job.ID, a, b)
	other := a
	if runner == a {
		other = b
	}
	stopped, err := other.cluster.StopJob(t.Context(), job.ID, "operator", "wrong year")
	if err != nil {
		t.Fatalf("StopJob on %s: %v", other.name, err)
	}
	if stopped.State != pool.StateCancelling {
		t.Errorf("StopJob returned %s, want CANCELLING", stopped.State)
	}
	select {
	case <-run.Context().Done():
	case <-awaitContext(t).Done():
		t.Fatalf("the run on %s was not cancelled", runner.name)
	}
	final := awaitClusterFinal(t, other, job.ID)
	if final.State != pool.StateCancelled || final.Stop == nil || final.Stop.By != "operator" {
		t.Errorf("job ended %s with stop %+v, want CANCELLED by operator", final.State, final.Stop)
	}
}

func TestClusterRequeuesJobsOfANodeThatStopsRenewing(t *testing.T) {
	url := databasetest.SchemaURL(t)
	a := startNode(t, url, "a")
	job := clusterSubmit(t, a, "report")
	run, err := a.runner.Await(awaitContext(t), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.cluster.Freeze()
	b := startNode(t, url, "b")

	run2, err := b.runner.Await(awaitContext(t), job.ID)
	if err != nil {
		t.Fatalf("node b never ran the job of the frozen node: %v", err)
	}
	if run2.Job.Attempt != 2 {
		t.Errorf("node b runs attempt %d, want 2", run2.Job.Attempt)
	}
	// The frozen node's late end must not overwrite node b's run.
	run.Complete(pool.Outcome{})
	<-run.Returned()
	view, err := b.cluster.Job(t.Context(), job.ID)
	if err != nil || view.State != pool.StateRunning || view.Node == nil || *view.Node != "b" {
		t.Fatalf("after the frozen node's end, job = %+v (err %v), want RUNNING on b", view, err)
	}
	// A second interruption ends the job as INTERRUPTED.
	b.cluster.Freeze()
	c := startNode(t, url, "c")
	final := awaitClusterFinal(t, c, job.ID)
	if final.State != pool.StateFailed || final.Error == nil || final.Error.Type != pool.ErrorInterrupted {
		t.Errorf("job ended %s with %+v, want FAILED INTERRUPTED", final.State, final.Error)
	}
	run2.Complete(pool.Outcome{})
}

func TestClusterWideLimitCapsAllNodes(t *testing.T) {
	nodes := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	limit := 1
	if _, err := a.cluster.UpdateSettings(t.Context(), pool.SettingsUpdate{ClusterConcurrentJobs: &limit}); err != nil {
		t.Fatal(err)
	}
	first := clusterSubmit(t, a, "p1")
	second := clusterSubmit(t, b, "p2")
	_, run := awaitRunOn(t, first.ID, a, b)
	if got := b.cluster.Counts(); got.Running != 1 || got.Queued != 1 {
		t.Errorf("counts = %+v, want 1 running and 1 queued under a cluster-wide limit of 1", got)
	}
	// Node b learns of the new limit from a notification.
	ctx := awaitContext(t)
	for s := b.cluster.Settings(); s.ClusterConcurrentJobs == nil || *s.ClusterConcurrentJobs != 1; s = b.cluster.Settings() {
		if ctx.Err() != nil {
			t.Fatalf("node b sees cluster limit %v, want 1", s.ClusterConcurrentJobs)
		}
		runtime.Gosched()
	}
	run.Complete(pool.Outcome{})
	_, run2 := awaitRunOn(t, second.ID, a, b)
	run2.Complete(pool.Outcome{})
	awaitClusterFinal(t, a, second.ID)
}

func TestClusterNodeNameIsUnique(t *testing.T) {
	url := databasetest.SchemaURL(t)
	startNode(t, url, "a")
	_, err := database.OpenPostgresClusterNode(t.Context(), url, "a")
	if !errors.Is(err, database.ErrNodeNameTaken) {
		t.Errorf("second node named a: err = %v, want ErrNodeNameTaken", err)
	}
	_, err = database.OpenPostgresNode(t.Context(), url)
	if !errors.Is(err, database.ErrNodeLocked) {
		t.Errorf("single server beside a cluster: err = %v, want ErrNodeLocked", err)
	}
}

func TestClusterRequeuesJobWhoseEndFailedToStore(t *testing.T) {
	url := databasetest.SchemaURL(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := startNode(t, url, "a")
	job := clusterSubmit(t, a, "report")
	run, err := a.runner.Await(awaitContext(t), job.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The database rejects every end, as it would while it is down.
	_, err = db.ExecContext(t.Context(), `
		CREATE FUNCTION reject_ends() RETURNS trigger AS $$ BEGIN
			IF NEW.state IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN RAISE EXCEPTION 'end rejected'; END IF;
			RETURN NEW;
		END $$ LANGUAGE plpgsql;
		CREATE TRIGGER reject_ends BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION reject_ends();`)
	if err != nil {
		t.Fatal(err)
	}
	run.Complete(pool.Outcome{})

	// After one lease of retries the node gives the job up, stops renewing
	// its lease, and then queues it again.
	ctx := awaitContext(t)
	if first, err := a.runner.Next(ctx); err != nil || first != run {
		t.Fatalf("first run = %v (err %v), want attempt 1", first, err)
	}
	run2, err := a.runner.Next(ctx)
	if err != nil {
		t.Fatalf("the job was not run again after its end failed to store: %v", err)
	}
	if run2.Job.ID != job.ID || run2.Job.Attempt != 2 {
		t.Fatalf("next run is job %s attempt %d, want job %s attempt 2", run2.Job.ID, run2.Job.Attempt, job.ID)
	}
	if _, err := db.ExecContext(t.Context(), "DROP TRIGGER reject_ends ON jobs"); err != nil {
		t.Fatal(err)
	}
	run2.Complete(pool.Outcome{})
	if final := awaitClusterFinal(t, a, job.ID); final.State != pool.StateCompleted || final.Attempt != 2 {
		t.Errorf("job ended %s attempt %d, want COMPLETED attempt 2", final.State, final.Attempt)
	}
}
