// Package monitor samples the machine's and the service's resources,
// keeps their history in memory and in the database, and serves the
// queue view, resource history, SVG charts, a server-sent event stream
// of job and block state changes, and Prometheus metrics.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
)

// Default values of Config fields left at zero.
const (
	DefaultInterval     = 5 * time.Second
	DefaultHistory      = 24 * time.Hour
	DefaultRecentJobs   = 20
	DefaultEventBacklog = 1000
	DefaultClientBuffer = 256
	DefaultPingInterval = 15 * time.Second
)

// Limits of the monitor.
const (
	// MaxRecentJobs caps the recent jobs of the queue view.
	MaxRecentJobs = 200
	// MaxWaitingJobs caps the waiting jobs the queue view lists; its
	// counts still count them all.
	MaxWaitingJobs = 500
	// MaxHistorySamples caps the samples held in memory. With a short
	// interval the in-memory history then covers less than History.
	MaxHistorySamples = 100_000
	// pruneEvery is how often samples older than History are deleted
	// from the store.
	pruneEvery = 10 * time.Minute
)

// Config configures a Monitor. The zero value of each field selects its
// default.
type Config struct {
	// Interval is the time between two resource samples; default 5s.
	Interval time.Duration
	// History is how long samples are kept, in memory and in the store;
	// default 24h.
	History time.Duration
	// RecentJobs is the number of finished jobs the queue view lists
	// when the request gives no number; default 20, at most
	// MaxRecentJobs.
	RecentJobs int
	// DataDir is the directory whose file system the disk metrics
	// measure; default the working directory.
	DataDir string
	// EventBacklog is the number of events kept for clients that resume
	// a stream with Last-Event-ID; default 1000.
	EventBacklog int
	// ClientBuffer is the number of events buffered for each stream. A
	// stream whose buffer fills up, because its client reads too slowly,
	// is ended. Default 256.
	ClientBuffer int
	// PingInterval is the time between two ": ping" comments on an idle
	// stream; default 15s.
	PingInterval time.Duration
	// Logger receives the monitor's logs. Nil discards them.
	Logger *slog.Logger
	// Node is this node's name in a cluster of nodes that share one
	// PostgreSQL database, or empty outside a cluster. The monitor's logs
	// include it under the key node. It must be set when Cluster is.
	Node string
	// Cluster is the cluster this node belongs to, or nil outside a
	// cluster. With it, GET /monitor/nodes lists the cluster's nodes and
	// the cluster's heartbeat publishes this node's latest sample. A nil
	// pointer stored in this interface counts as set, so leave the field
	// unset rather than storing one.
	Cluster Cluster
}

func (cfg Config) withDefaults() Config {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.History == 0 {
		cfg.History = DefaultHistory
	}
	if cfg.RecentJobs == 0 {
		cfg.RecentJobs = DefaultRecentJobs
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "."
	}
	if cfg.EventBacklog == 0 {
		cfg.EventBacklog = DefaultEventBacklog
	}
	if cfg.ClientBuffer == 0 {
		cfg.ClientBuffer = DefaultClientBuffer
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

func (cfg Config) validate() error {
	switch {
	case cfg.Interval < 10*time.Millisecond:
		return fmt.Errorf("invalid monitor config: Interval must be at least 10ms, not %s", cfg.Interval)
	case cfg.History < cfg.Interval:
		return fmt.Errorf("invalid monitor config: History %s is shorter than Interval %s", cfg.History, cfg.Interval)
	case cfg.RecentJobs < 0 || cfg.RecentJobs > MaxRecentJobs:
		return fmt.Errorf("invalid monitor config: RecentJobs must be 0 to %d, not %d", MaxRecentJobs, cfg.RecentJobs)
	case cfg.EventBacklog < 1:
		return fmt.Errorf("invalid monitor config: EventBacklog must be 1 or more, not %d", cfg.EventBacklog)
	case cfg.ClientBuffer < 1:
		return fmt.Errorf("invalid monitor config: ClientBuffer must be 1 or more, not %d", cfg.ClientBuffer)
	case cfg.PingInterval < 0:
		return fmt.Errorf("invalid monitor config: PingInterval must not be negative, not %s", cfg.PingInterval)
	case cfg.Cluster != nil && cfg.Node == "":
		return errors.New("invalid monitor config: Node must name this node when Cluster is set")
	}
	return nil
}

// Jobs is the part of the pool that the monitor uses.
type Jobs interface {
	Counter
	// Observe registers a function that receives every state change.
	Observe(func(pool.Event))
	// Snapshot returns the active jobs at one instant.
	Snapshot(maxWaiting int) pool.Snapshot
	// Jobs lists stored jobs, newest first.
	Jobs(ctx context.Context, filter pool.JobFilter) ([]*pool.Job, int, error)
}

// Monitor samples resources and serves the monitor endpoints. Create it
// with New before the pool starts, so that it receives the events of the
// jobs the pool recovers, then call Start. Its methods are safe for concurrent use.
type Monitor struct {
	cfg     Config
	jobs    Jobs
	store   SampleStore
	log     *slog.Logger
	history *history
	sampler *sampler
	events  *hub
	metrics *metrics

	// streamsDone is closed by CloseStreams to end every event stream.
	streamsDone chan struct{}
	closeOnce   sync.Once

	// lastSave is the error of the last SaveSample. Only the sampling
	// goroutine uses it.
	lastSave error

	// createdAt is when New ran, shown as the start of the local node.
	createdAt time.Time

	// mu guards the sampling goroutine's lifecycle below.
	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a monitor of jobs that persists samples in store, and
// registers it as an observer of jobs. It samples nothing until Start.
func New(cfg Config, jobs Jobs, store SampleStore) (*Monitor, error) {
	if jobs == nil {
		return nil, errors.New("invalid monitor: jobs is nil")
	}
	if store == nil {
		return nil, errors.New("invalid monitor: store is nil")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "monitor")
	if cfg.Node != "" {
		log = log.With("node", cfg.Node)
	}
	m := &Monitor{
		cfg:         cfg,
		jobs:        jobs,
		store:       store,
		log:         log,
		history:     newHistory(historyCapacity(cfg)),
		sampler:     newSampler(cfg.DataDir, jobs, log),
		events:      newHub(cfg.EventBacklog, cfg.ClientBuffer, time.Now()),
		streamsDone: make(chan struct{}),
		createdAt:   time.Now(),
	}
	m.metrics = newMetrics(jobs, m.events)
	jobs.Observe(m.observe)
	return m, nil
}

// historyCapacity returns the number of samples History spans at
// Interval, capped at MaxHistorySamples.
func historyCapacity(cfg Config) int {
	return int(min(int64(cfg.History/cfg.Interval)+1, MaxHistorySamples))
}

// observe receives the pool's events with the pool's mutex held, so it
// only hands them on without blocking.
func (m *Monitor) observe(e pool.Event) {
	m.events.publish(e)
	m.metrics.observe(e)
}

// Start loads the stored history, deletes samples older than History and
// starts sampling every Interval. In a cluster it also hands the
// cluster's heartbeat a function that returns the latest sample. It
// returns once sampling runs. A failure to read the stored history is
// logged and leaves the history empty. Start fails when called twice.
func (m *Monitor) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("monitor cannot start: it was already started")
	}
	m.started = true

	now := time.Now()
	m.prune(ctx, now)
	samples, err := m.store.LoadSamples(ctx, now.Add(-m.cfg.History), historyCapacity(m.cfg))
	if err != nil {
		m.log.Warn("loading the stored resource history failed, so the history starts empty", "error", err)
	}
	for _, s := range samples {
		m.history.add(s)
	}
	if m.cfg.Cluster != nil {
		m.cfg.Cluster.PublishResources(m.latestResources)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.done = make(chan struct{})
	go m.run(runCtx, m.done)
	m.log.Info("monitor started", "interval", m.cfg.Interval, "history", m.cfg.History,
		"stored_samples", len(samples))
	return nil
}

// run takes a sample at once and then every Interval until ctx ends.
func (m *Monitor) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	lastPrune := time.Now()
	m.record(ctx, time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			m.record(ctx, now)
			if now.Sub(lastPrune) >= pruneEvery {
				m.prune(ctx, now)
				lastPrune = now
			}
		}
	}
}

// record takes one sample, adds it to the history and stores it. A
// failing store is logged once until it works again.
func (m *Monitor) record(ctx context.Context, now time.Time) {
	sample := m.sampler.sample(ctx, now.UTC())
	if ctx.Err() != nil {
		// Stop interrupted the measurements, so the sample may be partial.
		return
	}
	m.history.add(sample)
	// A sample in the history is stored even when Stop comes meanwhile,
	// so that the history after a restart matches.
	err := m.store.SaveSample(context.WithoutCancel(ctx), sample)
	switch {
	case err != nil && m.lastSave == nil:
		m.log.Warn("storing resource samples failed; they stay in memory only until it works again", "error", err)
	case err == nil && m.lastSave != nil:
		m.log.Info("storing resource samples works again")
	}
	m.lastSave = err
}

// prune deletes the stored samples older than History.
func (m *Monitor) prune(ctx context.Context, now time.Time) {
	n, err := m.store.DeleteSamplesBefore(ctx, now.Add(-m.cfg.History))
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("deleting old resource samples failed", "error", err)
		}
		return
	}
	if n > 0 {
		m.log.Debug("old resource samples deleted", "count", n)
	}
}

// Stop ends every event stream and stops sampling, waiting for the
// sampling goroutine to return. It is safe to call more than once.
func (m *Monitor) Stop() {
	m.CloseStreams()
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel = nil
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// CloseStreams ends every open event stream and makes new ones end at
// once. http.Server.Shutdown waits for active handlers, so the server
// calls it when shutdown begins (http.Server.RegisterOnShutdown). It is
// safe to call more than once.
func (m *Monitor) CloseStreams() {
	m.closeOnce.Do(func() { close(m.streamsDone) })
}
