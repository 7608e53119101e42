package monitor

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// QueueView shows the pool at one instant: its limits, the running and
// waiting jobs, and the most recently finished jobs.
type QueueView struct {
	// ConcurrentJobs is the slot limit in force.
	ConcurrentJobs int `json:"concurrentJobs"`
	// RequestedConcurrentJobs is the slot limit that was requested.
	RequestedConcurrentJobs int `json:"requestedConcurrentJobs"`
	// MaxConcurrentJobs is the cap on the slot limit, the usable cores.
	MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	// QueueLimit is the maximum number of waiting jobs.
	QueueLimit int `json:"queueLimit"`
	// ClusterConcurrentJobs caps the running jobs of all nodes of a
	// cluster together, or is null for no cap and outside a cluster.
	ClusterConcurrentJobs *int `json:"clusterConcurrentJobs" extensions:"x-nullable"`
	// Counts counts the active jobs by state.
	Counts QueueCounts `json:"counts"`
	// Running lists the RUNNING and CANCELLING jobs in start order. A
	// running block's durationMs is its run time so far. In a cluster, a
	// job's node names the node that runs it. Outside a cluster, node is
	// null.
	Running []*pool.Job `json:"running"`
	// Waiting lists the first 500 QUEUED and BLOCKED jobs in the order
	// they will start, which is submission order. Each has position and
	// waitingFor.
	Waiting []*pool.Job `json:"waiting"`
	// Recent lists the most recently finished jobs, newest first.
	Recent []*pool.Job `json:"recent"`
}

// QueueCounts counts the active jobs by state.
type QueueCounts struct {
	// Running counts the RUNNING and CANCELLING jobs.
	Running int `json:"running"`
	Queued  int `json:"queued"`
	Blocked int `json:"blocked"`
}

// finalStates are the states of finished jobs.
var finalStates = []pool.State{pool.StateCompleted, pool.StateFailed, pool.StateCancelled}

// getQueue returns the queue view.
//
//	@ID				getQueue
//	@Summary		Show the queue
//	@Description	Returns the pool's limits, the running jobs in start order, the waiting jobs in the order they will start (at most 500, each with position and waitingFor) and the most recently finished jobs. Jobs have the shape of GET /jobs/{job}; a running block's durationMs is its run time so far. In a cluster, each job's node names the node that runs or ran it. Outside a cluster, node is null.
//	@Tags			monitor
//	@Produce		json
//	@Param			recent	query		int	false	"Number of recently finished jobs, 0 to 200; the default is set by --monitor-recent-jobs"	minimum(0)	maximum(200)
//	@Success		200		{object}	QueueView
//	@Failure		400		{object}	httpapi.Problem	"An invalid recent parameter"
//	@Security		BearerAuth
//	@Router			/api/v1/monitor/queue [get]
func (m *Monitor) getQueue(c *gin.Context) error {
	recent := m.cfg.RecentJobs
	if value, ok := c.GetQuery("recent"); ok {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > MaxRecentJobs {
			return httpapi.BadRequest("recent", fmt.Sprintf("recent must be an integer from 0 to %d, not %q", MaxRecentJobs, value))
		}
		recent = n
	}

	view, err := m.queueView(c, recent)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, view)
	return nil
}

func (m *Monitor) queueView(c *gin.Context, recent int) (*QueueView, error) {
	snap := m.jobs.Snapshot(MaxWaitingJobs)
	now := time.Now()
	for _, job := range snap.Running {
		durationsSoFar(job, now)
	}
	view := &QueueView{
		ConcurrentJobs:          snap.Settings.ConcurrentJobs,
		RequestedConcurrentJobs: snap.Settings.RequestedConcurrentJobs,
		MaxConcurrentJobs:       snap.Settings.MaxConcurrentJobs,
		QueueLimit:              snap.Settings.QueueLimit,
		ClusterConcurrentJobs:   snap.Settings.ClusterConcurrentJobs,
		Counts:                  QueueCounts{Running: snap.Counts.Running, Queued: snap.Counts.Queued, Blocked: snap.Counts.Blocked},
		Running:                 nonNilJobs(snap.Running),
		Waiting:                 nonNilJobs(snap.Waiting),
		Recent:                  []*pool.Job{},
	}
	if recent == 0 {
		return view, nil
	}

	jobs, _, err := m.jobs.Jobs(c.Request.Context(), pool.JobFilter{States: finalStates, Limit: recent})
	if err != nil {
		return nil, fmt.Errorf("listing recent jobs: %w", err)
	}
	// Jobs come newest submitted first; a job that ran longer may have
	// finished after a later one.
	slices.SortStableFunc(jobs, func(a, b *pool.Job) int {
		return cmp.Compare(finishedAt(b), finishedAt(a))
	})
	view.Recent = nonNilJobs(jobs)
	return view, nil
}

// durationsSoFar sets the durationMs of job's running blocks to their run
// time until now.
func durationsSoFar(job *pool.Job, now time.Time) {
	for i := range job.Blocks {
		b := &job.Blocks[i]
		if b.State == pool.BlockRunning && b.StartedAt != nil && b.DurationMs == nil {
			ms := max(now.Sub(b.StartedAt.Time).Milliseconds(), 0)
			b.DurationMs = &ms
		}
	}
}

func finishedAt(job *pool.Job) int64 {
	if job.FinishedAt == nil {
		return 0
	}
	return job.FinishedAt.UnixMilli()
}

func nonNilJobs(jobs []*pool.Job) []*pool.Job {
	if jobs == nil {
		return []*pool.Job{}
	}
	return jobs
}
