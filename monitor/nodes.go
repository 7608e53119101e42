package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
)

// LocalNodeName is the name GET /monitor/nodes gives the one node outside
// a cluster when Config.Node is empty. A fixed name, unlike the host
// name, stays the same when the service moves to another machine or
// container, and reveals nothing about the host.
const LocalNodeName = "local"

// Cluster is the part of a cluster of nodes that the monitor uses. Its
// methods must be safe for concurrent use.
type Cluster interface {
	// Nodes returns every node of the cluster, alive or not, in name
	// order.
	Nodes(ctx context.Context) ([]pool.NodeStatus, error)
	// PublishResources registers fn, which the cluster's heartbeat calls
	// at every heartbeat, storing the JSON it returns as this node's
	// resources in the nodes table. fn returns nil before the first
	// sample.
	PublishResources(fn func() json.RawMessage)
}

// NodeList lists the nodes that run jobs.
type NodeList struct {
	// Nodes lists every node of the cluster, alive or not, in name order.
	// Outside a cluster it contains one node built from this server,
	// named "local". A node's resources have the shape of a bucket of GET
	// /monitor/resources that contains only the node's latest sample.
	Nodes []pool.NodeStatus `json:"nodes"`
}

// getNodes returns the nodes.
//
//	@ID				listNodes
//	@Summary		List the nodes
//	@Description	Returns every node of the cluster, alive or not, in name order, with its slot limit, the jobs it runs and its latest resource sample. A node is dead once its heartbeat is older than its lease. Outside a cluster the list contains one node, named "local", which is this server: it is alive, its heartbeatAt is the time of the response, and its startedAt is when the service started. A node's resources have the shape of a bucket of GET /monitor/resources holding only its latest sample, or null before its first sample.
//	@Tags			monitor
//	@Produce		json
//	@Success		200	{object}	NodeList
//	@Security		BearerAuth
//	@Router			/api/v1/monitor/nodes [get]
func (m *Monitor) getNodes(c *gin.Context) error {
	nodes, err := m.nodes(c.Request.Context())
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, NodeList{Nodes: nodes})
	return nil
}

// nodes returns the cluster's nodes, or the local node outside a cluster.
func (m *Monitor) nodes(ctx context.Context) ([]pool.NodeStatus, error) {
	if m.cfg.Cluster == nil {
		return []pool.NodeStatus{m.localNode(time.Now())}, nil
	}
	nodes, err := m.cfg.Cluster.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the cluster's nodes: %w", err)
	}
	if nodes == nil {
		nodes = []pool.NodeStatus{}
	}
	for i := range nodes {
		n := &nodes[i]
		if n.RunningJobs == nil {
			n.RunningJobs = []string{}
		}
		// A node's resources come from the database. Text that is not
		// JSON would make encoding the whole response fail.
		if !json.Valid(n.Resources) {
			n.Resources = nil
		}
	}
	return nodes, nil
}

// localNode describes this server as the one node outside a cluster.
func (m *Monitor) localNode(now time.Time) pool.NodeStatus {
	snap := m.jobs.Snapshot(0)
	running := make([]string, len(snap.Running))
	for i, job := range snap.Running {
		running[i] = job.ID
	}
	name := m.cfg.Node
	if name == "" {
		name = LocalNodeName
	}
	return pool.NodeStatus{
		Name:              name,
		Alive:             true,
		StartedAt:         timestamp.From(m.createdAt),
		HeartbeatAt:       timestamp.From(now),
		ConcurrentJobs:    snap.Settings.ConcurrentJobs,
		MaxConcurrentJobs: snap.Settings.MaxConcurrentJobs,
		RunningJobs:       running,
		Resources:         m.latestResources(),
	}
}

// latestResources returns the newest sample as a ResourceBucket of that
// one sample in JSON, or nil before the first sample. It is safe for
// concurrent use, so the cluster's heartbeat may call it.
func (m *Monitor) latestResources() json.RawMessage {
	s, ok := m.history.latest()
	if !ok {
		return nil
	}
	// JSON has no infinities, so an infinite value counts as unmeasured.
	for i, v := range s.Values {
		if math.IsInf(v, 0) {
			s.Values[i] = math.NaN()
		}
	}
	var acc bucketAccumulator
	acc.add(s)
	data, err := json.Marshal(acc.bucket(s.Time))
	if err != nil {
		// Unreachable: a bucket of finite numbers always encodes.
		return nil
	}
	return data
}
