package pool

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// The reads of a cluster come from the database, since the queue is
// shared: these queries fill in what a waiting job's view shows and what
// the monitor lists.

// waitingFor returns the reason a waiting job waits and its 1-based place
// among all waiting jobs.
func (s *clusterStore) waitingFor(ctx context.Context, job *Job) (*WaitingFor, int, error) {
	var position int
	var blockedBy sql.NullString
	err := s.db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM jobs WHERE state IN "+waitingStates+" AND seq <= ?), "+
		"(SELECT id FROM jobs WHERE lock_key = ? AND id <> ? AND "+
		"(state IN "+holdingStates+" OR (state IN "+waitingStates+" AND seq < ?)) "+
		"ORDER BY state IN "+holdingStates+", seq DESC LIMIT 1)",
		job.Seq, job.LockKey, job.ID, job.Seq).Scan(&position, &blockedBy)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the place of job %s: %w", job.ID, err)
	}
	if blockedBy.Valid {
		return &WaitingFor{Reason: ReasonProjectLock, BlockedBy: &blockedBy.String}, position, nil
	}
	return &WaitingFor{Reason: ReasonSlot}, position, nil
}

// activeJobIDs returns the ids of the active jobs of a lock key: the
// holder first, then the waiting jobs in queue order.
func (s *clusterStore) activeJobIDs(ctx context.Context, key string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM jobs WHERE lock_key = ? AND state IN "+activeStates+
		" ORDER BY state IN "+waitingStates+", seq", key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// counts returns the numbers of active jobs of the cluster by state.
func (s *clusterStore) counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, "SELECT "+
		"COUNT(*) FILTER (WHERE state IN "+holdingStates+"), "+
		"COUNT(*) FILTER (WHERE state = 'QUEUED'), "+
		"COUNT(*) FILTER (WHERE state = 'BLOCKED') "+
		"FROM jobs WHERE state IN "+activeStates).Scan(&c.Running, &c.Queued, &c.Blocked)
	return c, err
}

// running returns the jobs every node holds, in start order.
func (s *clusterStore) running(ctx context.Context) ([]*Job, error) {
	return s.jobs(ctx, selectJobs+" WHERE state IN "+holdingStates+" ORDER BY started_at, seq")
}

// waiting returns the first limit waiting jobs in queue order.
func (s *clusterStore) waiting(ctx context.Context, limit int) ([]*Job, error) {
	return s.jobs(ctx, selectJobs+" WHERE state IN "+waitingStates+" ORDER BY seq LIMIT ?", limit)
}

func (s *clusterStore) jobs(ctx context.Context, query string, args ...any) ([]*Job, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	defer rows.Close()
	var jobs []*Job
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("reading job: %w", err)
		}
		jobs = append(jobs, job)
	}
	return jobs, rows.Err()
}

// nodes returns every node that ran in the cluster, by name, with the
// jobs each holds.
func (s *clusterStore) nodes(ctx context.Context) ([]NodeStatus, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, started_at, heartbeat_at, "+
		"heartbeat_at > now() - lease_ms * interval '1 millisecond', concurrent_jobs, max_concurrent_jobs, resources "+
		"FROM nodes ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	defer rows.Close()
	var nodes []NodeStatus
	index := map[string]int{}
	for rows.Next() {
		var n NodeStatus
		var started, heartbeat time.Time
		var resources sql.NullString
		if err := rows.Scan(&n.Name, &started, &heartbeat, &n.Alive, &n.ConcurrentJobs, &n.MaxConcurrentJobs, &resources); err != nil {
			return nil, fmt.Errorf("listing nodes: %w", err)
		}
		n.StartedAt, n.HeartbeatAt = timestamp.From(started), timestamp.From(heartbeat)
		n.RunningJobs = []string{}
		if resources.Valid {
			n.Resources = json.RawMessage(resources.String)
		}
		index[n.Name] = len(nodes)
		nodes = append(nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	running, err := s.running(ctx)
	if err != nil {
		return nil, err
	}
	for _, job := range running {
		if i, ok := index[deref(job.Node)]; ok {
			nodes[i].RunningJobs = append(nodes[i].RunningJobs, job.ID)
		}
	}
	return nodes, nil
}
