package pool

import (
	"encoding/json"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// NodeStatus is one node of a cluster as the monitor shows it.
type NodeStatus struct {
	// Name is the node's unique name, set with --node-name.
	Name string `json:"name"`
	// Alive is false once the node's heartbeat is older than its lease.
	Alive bool `json:"alive"`
	// StartedAt is when the node started and HeartbeatAt when it last
	// renewed its leases.
	StartedAt   timestamp.Time `json:"startedAt" swaggertype:"string" format:"date-time"`
	HeartbeatAt timestamp.Time `json:"heartbeatAt" swaggertype:"string" format:"date-time"`
	// ConcurrentJobs is the slot limit in force on the node, and
	// MaxConcurrentJobs its cap, the node's usable cores.
	ConcurrentJobs    int `json:"concurrentJobs"`
	MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	// RunningJobs lists the ids of the jobs the node holds, RUNNING or
	// CANCELLING, in start order.
	RunningJobs []string `json:"runningJobs"`
	// Resources is the latest resource sample the node published, as the
	// monitor encodes it, or null before its first one.
	Resources json.RawMessage `json:"resources" swaggertype:"object" extensions:"x-nullable"`
}
