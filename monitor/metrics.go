package monitor

import (
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// durationBuckets are the histogram buckets of job, block and wait
// durations, in seconds, from 5ms to one hour.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// metrics holds the Prometheus metrics on a registry of their own, so
// that nothing else registered in the process leaks into /metrics.
type metrics struct {
	registry      *prometheus.Registry
	finished      *prometheus.CounterVec
	jobDuration   *prometheus.HistogramVec
	blockDuration *prometheus.HistogramVec
	queueWait     prometheus.Histogram
}

func newMetrics(jobs Counter, events *hub) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lambdaflow_jobs_finished_total",
			Help: "Jobs that reached a final state since the server started, by state.",
		}, []string{"state"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lambdaflow_job_duration_seconds",
			Help:    "Run time of finished jobs that started, from start to finish, by final state.",
			Buckets: durationBuckets,
		}, []string{"state"}),
		blockDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lambdaflow_block_duration_seconds",
			Help:    "Run time of block runs that ended (completed, failed or cancelled), by block type.",
			Buckets: durationBuckets,
		}, []string{"type"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lambdaflow_queue_wait_seconds",
			Help:    "Time from a job's submission to the start of its run.",
			Buckets: durationBuckets,
		}),
	}
	for _, state := range finalStates {
		m.finished.WithLabelValues(string(state))
	}
	m.registry.MustRegister(
		m.finished, m.jobDuration, m.blockDuration, m.queueWait,
		&poolCollector{jobs: jobs, events: events},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// observe updates the metrics for one state change. It runs with the
// pool's mutex held; the updates are atomic and do not block.
func (m *metrics) observe(e pool.Event) {
	switch e.Type {
	case pool.EventJob:
		m.observeJob(e)
	case pool.EventBlock:
		switch pool.BlockState(e.State) {
		case pool.BlockCompleted, pool.BlockFailed, pool.BlockCancelled:
			if e.DurationMs != nil {
				m.blockDuration.WithLabelValues(e.BlockType).Observe(float64(*e.DurationMs) / 1000)
			}
		}
	}
}

func (m *metrics) observeJob(e pool.Event) {
	state := pool.State(e.State)
	switch {
	case state == pool.StateRunning && e.StartedAt != nil:
		m.queueWait.Observe(e.StartedAt.Sub(e.SubmittedAt).Seconds())
	case state.Final():
		m.finished.WithLabelValues(e.State).Inc()
		if e.StartedAt != nil && e.FinishedAt != nil {
			m.jobDuration.WithLabelValues(e.State).Observe(e.FinishedAt.Sub(*e.StartedAt).Seconds())
		}
	}
}

// poolCollector reads the pool's gauges when /metrics is scraped.
type poolCollector struct {
	jobs   Counter
	events *hub
}

var (
	queueDepthDesc = prometheus.NewDesc("lambdaflow_queue_depth",
		"Waiting jobs by state: QUEUED waits for a slot, BLOCKED for its project's lock.", []string{"state"}, nil)
	runningJobsDesc = prometheus.NewDesc("lambdaflow_running_jobs",
		"Jobs holding a slot, RUNNING or CANCELLING.", nil, nil)
	slotLimitDesc = prometheus.NewDesc("lambdaflow_concurrent_jobs",
		"Slot limit in force: the requested concurrentJobs capped at the usable cores.", nil, nil)
	eventStreamsDesc = prometheus.NewDesc("lambdaflow_event_streams",
		"Open GET /api/v1/events streams.", nil, nil)
	droppedStreamsDesc = prometheus.NewDesc("lambdaflow_event_streams_dropped_total",
		"Event streams ended because their client read too slowly.", nil, nil)
)

// Describe sends the descriptions of the gauges.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- runningJobsDesc
	ch <- slotLimitDesc
	ch <- eventStreamsDesc
	ch <- droppedStreamsDesc
}

// Collect reads the pool's counts and the event streams.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.jobs.Counts()
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(counts.Queued), string(pool.StateQueued))
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(counts.Blocked), string(pool.StateBlocked))
	ch <- prometheus.MustNewConstMetric(runningJobsDesc, prometheus.GaugeValue, float64(counts.Running))
	ch <- prometheus.MustNewConstMetric(slotLimitDesc, prometheus.GaugeValue, float64(counts.ConcurrentJobs))
	streams, dropped := c.events.stats()
	ch <- prometheus.MustNewConstMetric(eventStreamsDesc, prometheus.GaugeValue, float64(streams))
	ch <- prometheus.MustNewConstMetric(droppedStreamsDesc, prometheus.CounterValue, float64(dropped))
}

// metricsHandler serves the metrics in the Prometheus text format.
//
//	@ID				getMetrics
//	@Summary		Get Prometheus metrics
//	@Description	Returns the metrics in the Prometheus text exposition format: lambdaflow_jobs_finished_total{state}, lambdaflow_queue_depth{state}, lambdaflow_running_jobs, lambdaflow_concurrent_jobs, the histograms lambdaflow_job_duration_seconds{state}, lambdaflow_block_duration_seconds{type} and lambdaflow_queue_wait_seconds, the event stream gauges, and the Go runtime and process collectors (go_*, process_*).
//	@Tags			monitor
//	@Produce		plain
//	@Success		200	{string}	string	"metrics in the Prometheus text format"
//	@Security		BearerAuth
//	@Router			/metrics [get]
func (m *metrics) handler() gin.HandlerFunc {
	h := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return func(c *gin.Context) { h.ServeHTTP(c.Writer, c.Request) }
}

// Register adds the monitor endpoints to rg, the /api/v1 group.
func (m *Monitor) Register(rg *gin.RouterGroup) {
	rg.GET("/monitor/queue", httpapi.Handle(m.getQueue))
	rg.GET("/monitor/resources", httpapi.Handle(m.getResources))
	rg.GET("/monitor/charts/:metric", httpapi.Handle(m.getChart))
	rg.GET("/monitor/nodes", httpapi.Handle(m.getNodes))
	rg.GET("/events", httpapi.Handle(m.streamEvents))
}

// RegisterMetrics adds GET /metrics to r, the root router.
func (m *Monitor) RegisterMetrics(r gin.IRoutes) {
	r.GET("/metrics", m.metrics.handler())
}
