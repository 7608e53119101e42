package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
)

// fakeCluster is a Cluster whose nodes the test sets. It records the
// function the monitor publishes.
type fakeCluster struct {
	mu      sync.Mutex
	nodes   []pool.NodeStatus
	err     error
	publish func() json.RawMessage
}

func (f *fakeCluster) Nodes(context.Context) ([]pool.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.nodes), nil
}

func (f *fakeCluster) PublishResources(fn func() json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publish = fn
}

func (f *fakeCluster) published() func() json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.publish
}

// getNodeList requests GET /monitor/nodes and decodes the 200 response.
func (b *bundle) getNodeList(t *testing.T) NodeList {
	t.Helper()
	resp, body := b.get(t, "/api/v1/monitor/nodes")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /monitor/nodes: status %d: %s", resp.StatusCode, body)
	}
	var list NodeList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return list
}

func TestNodesListLocalNode(t *testing.T) {
	b := setup(t, Config{})
	job := b.submit(t, "x")
	b.awaitRun(t, job.ID)
	waitFor(t, "a sample", func() bool { return b.monitor.history.len() >= 1 })

	list := b.getNodeList(t)
	if len(list.Nodes) != 1 {
		t.Fatalf("%d nodes, want the local node only", len(list.Nodes))
	}
	node := list.Nodes[0]
	if node.Name != LocalNodeName {
		t.Errorf("name = %q, want %q", node.Name, LocalNodeName)
	}
	if !node.Alive {
		t.Error("the local node is not alive")
	}
	if node.ConcurrentJobs != 1 || node.MaxConcurrentJobs != 4 {
		t.Errorf("slots %d of at most %d, want the pool's 1 of at most 4", node.ConcurrentJobs, node.MaxConcurrentJobs)
	}
	if !slices.Equal(node.RunningJobs, []string{job.ID}) {
		t.Errorf("running jobs = %v, want [%s]", node.RunningJobs, job.ID)
	}
	if node.StartedAt.After(node.HeartbeatAt.Time) {
		t.Errorf("startedAt %s is after heartbeatAt %s", node.StartedAt, node.HeartbeatAt)
	}
	var resources ResourceBucket
	if err := json.Unmarshal(node.Resources, &resources); err != nil {
		t.Fatalf("resources %s: %v", node.Resources, err)
	}
	if resources.Count != 1 {
		t.Errorf("resources count = %d, want the one latest sample", resources.Count)
	}
	if resources.MemoryTotalBytes == nil {
		t.Errorf("resources lack memoryTotalBytes: %s", node.Resources)
	}
}

func TestNodesLocalNodeUsesConfigName(t *testing.T) {
	b := setup(t, Config{Node: "worker-1"})
	if name := b.getNodeList(t).Nodes[0].Name; name != "worker-1" {
		t.Errorf("name = %q, want Config.Node worker-1", name)
	}
}

func TestNodesListClusterNodes(t *testing.T) {
	started := timestamp.From(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cluster := &fakeCluster{nodes: []pool.NodeStatus{
		{Name: "node-a", Alive: true, StartedAt: started, HeartbeatAt: started, ConcurrentJobs: 2,
			MaxConcurrentJobs: 8, RunningJobs: []string{"job-1"}, Resources: json.RawMessage(`{"count":1}`)},
		// A dead node with nothing running and resources that are not
		// JSON.
		{Name: "node-b", StartedAt: started, HeartbeatAt: started, ConcurrentJobs: 1, MaxConcurrentJobs: 1,
			Resources: json.RawMessage(`{"count":`)},
	}}
	b := setup(t, Config{Node: "node-a", Cluster: cluster})

	list := b.getNodeList(t)
	if len(list.Nodes) != 2 || list.Nodes[0].Name != "node-a" || list.Nodes[1].Name != "node-b" {
		t.Fatalf("nodes = %+v, want node-a and node-b", list.Nodes)
	}
	a, dead := list.Nodes[0], list.Nodes[1]
	if !a.Alive || a.ConcurrentJobs != 2 || a.MaxConcurrentJobs != 8 || !slices.Equal(a.RunningJobs, []string{"job-1"}) {
		t.Errorf("node-a = %+v, want it as the cluster returned it", a)
	}
	if string(a.Resources) != `{"count":1}` {
		t.Errorf("node-a resources = %s, want the published JSON", a.Resources)
	}
	if dead.Alive {
		t.Error("node-b is alive, want dead")
	}
	if dead.RunningJobs == nil || len(dead.RunningJobs) != 0 {
		t.Errorf("node-b running jobs = %#v, want an empty list", dead.RunningJobs)
	}
	if string(dead.Resources) != "null" {
		t.Errorf("node-b resources = %s, want null in place of invalid JSON", dead.Resources)
	}
}

func TestNodesReportClusterError(t *testing.T) {
	b := setup(t, Config{Node: "node-a", Cluster: &fakeCluster{err: errors.New("database is down")}})
	resp, body := b.get(t, "/api/v1/monitor/nodes")
	expectProblemField(t, resp, body, http.StatusInternalServerError, "")
}

func TestPublishedResourcesAreLatestSample(t *testing.T) {
	cluster := &fakeCluster{}
	b := setup(t, Config{Node: "node-a", Cluster: cluster})
	publish := cluster.published()
	if publish == nil {
		t.Fatal("Start did not call PublishResources")
	}

	waitFor(t, "two samples", func() bool { return b.monitor.history.len() >= 2 })
	// The sampler may add samples during the call, so the published one
	// is the latest before the call, the latest after it, or one between.
	first, _ := b.monitor.history.latest()
	data := publish()
	last, _ := b.monitor.history.latest()
	var got ResourceBucket
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("published %s: %v", data, err)
	}
	if got.Time.Before(first.Time.Truncate(time.Millisecond)) || got.Time.After(last.Time) {
		t.Errorf("published sample at %s, want the latest, from %s to %s", got.Time, first.Time, last.Time)
	}
	if got.Count != 1 || got.MemoryTotalBytes == nil || got.MemoryTotalBytes.Min != got.MemoryTotalBytes.Max {
		t.Errorf("published bucket = %s, want one sample with memoryTotalBytes", data)
	}
}

func TestPublishedResourcesNullBeforeFirstSample(t *testing.T) {
	b := setup(t, Config{})
	// A monitor that has not started has taken no sample.
	m, err := New(Config{}, b.pool, b.store)
	if err != nil {
		t.Fatal(err)
	}
	if data := m.latestResources(); data != nil {
		t.Errorf("latestResources before the first sample = %s, want nil", data)
	}
}

func TestConfigRejectsClusterWithoutNode(t *testing.T) {
	b := setup(t, Config{})
	_, err := New(Config{Cluster: &fakeCluster{}}, b.pool, b.store)
	if err == nil {
		t.Fatal("New accepted a Cluster without a Node name")
	}
}
