package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// Defaults of ClusterConfig.
const (
	DefaultLease = 15 * time.Second
	DefaultPoll  = 5 * time.Second
)

// errLeaseExpired ends the run of a job whose lease the node lost.
var errLeaseExpired = errors.New("the node lost its lease on the job")

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	Config
	// Node is the node's name, unique among the running nodes of the
	// cluster.
	Node string
	// Lease is how long the node holds a running job without renewing
	// it. The node renews its leases every third of it; when a node
	// dies, its jobs wait this long before another node queues them
	// again. The default is DefaultLease.
	Lease time.Duration
	// Poll is the interval of the slow poll that catches up on what
	// notifications may have missed. The default is DefaultPoll.
	Poll time.Duration
}

// Cluster is one node of a cluster of lambdaflow servers that share one
// PostgreSQL database and so one queue. It offers what a Pool offers, but
// the queue lives in the database: the node keeps in memory only the jobs
// it runs, and every scheduling decision is a transaction (see
// clusterStore). Other nodes' changes arrive as PostgreSQL
// notifications, with a slow poll as a safety net.
//
// Create it with NewCluster, call Start before submitting, and Shutdown or
// Stop when done. Its methods are safe for concurrent use.
type Cluster struct {
	cfg    ClusterConfig
	db     *database.DB
	store  *SQLStore
	cs     *clusterStore
	runner Runner
	log    *slog.Logger

	// runs tracks the goroutines that run jobs and write their blocks.
	runs sync.WaitGroup
	// dispatching and background track the dispatcher and the listener
	// and lease loops, which their cancel functions end.
	dispatching, background         sync.WaitGroup
	stopDispatching, stopBackground context.CancelFunc
	wake                            chan struct{}
	// listened is closed once the node first listens for notifications.
	listened  chan struct{}
	listening sync.Once
	startedAt time.Time
	// renewed is when the last successful lease renewal began, in Unix
	// nanoseconds.
	renewed atomic.Int64
	failing failureLog

	// mu guards the fields below and the activeJob records of local.
	mu               sync.Mutex
	started, closing bool
	// requestedJobs, queueLimit and clusterN are the stored settings;
	// clusterN is 0 for no cluster-wide limit.
	requestedJobs, queueLimit, clusterN int
	// resources returns the sample that each heartbeat stores.
	resources func() json.RawMessage
	// local holds the jobs this node runs, until their end is stored.
	local map[string]*activeJob
	// waiters holds a channel per awaited job, closed when it ends.
	waiters   map[string]*waiter
	observers []func(Event)
	durations durationWindow
}

// waiter is the channel that Await calls on one job share.
type waiter struct {
	done  chan struct{}
	calls int
}

// NewCluster returns a node of a cluster on db, a PostgreSQL database
// opened with database.OpenPostgresClusterNode, that runs jobs with
// runner. It starts nothing until Start.
func NewCluster(cfg ClusterConfig, db *database.DB, runner Runner) (*Cluster, error) {
	if db == nil || db.Dialect() != database.Postgres {
		return nil, errors.New("invalid cluster: the database must be PostgreSQL")
	}
	if runner == nil {
		return nil, errors.New("invalid cluster: runner is nil")
	}
	if cfg.Node == "" {
		return nil, errors.New("invalid cluster: Node is empty")
	}
	cfg.Config = cfg.Config.withDefaults(usableCores)
	if err := cfg.Config.validate(); err != nil {
		return nil, err
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Lease < 300*time.Millisecond || cfg.Poll < 10*time.Millisecond {
		return nil, fmt.Errorf("invalid cluster: Lease %s must be at least 300ms and Poll %s at least 10ms", cfg.Lease, cfg.Poll)
	}

	log := cfg.Logger.With("component", "pool", "node", cfg.Node)
	c := &Cluster{
		cfg:           cfg,
		db:            db,
		store:         NewSQLStore(db),
		cs:            &clusterStore{db: db, node: cfg.Node, lease: cfg.Lease, channel: db.Channel()},
		runner:        runner,
		log:           log,
		wake:          make(chan struct{}, 1),
		listened:      make(chan struct{}),
		failing:       failureLog{log: log},
		requestedJobs: cfg.ConcurrentJobs,
		queueLimit:    cfg.QueueLimit,
		local:         make(map[string]*activeJob),
		waiters:       make(map[string]*waiter),
	}
	c.cs.applied = c.applied
	return c, nil
}

// Register adds the job and settings endpoints to rg, the /api/v1 group.
func (c *Cluster) Register(rg *gin.RouterGroup) {
	handlers{svc: c, outputRoot: c.cfg.OutputRoot}.register(rg)
}

// Observe registers fn to receive job and block state changes: the job
// changes of every node, and the block changes of the jobs this node
// runs. The changes of other nodes arrive in the order their
// transactions committed, but may interleave with this node's own
// changes a little out of that order. fn runs with the node's mutex held
// and must return quickly and not call the cluster.
func (c *Cluster) Observe(fn func(Event)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observers = append(c.observers, fn)
}

// PublishResources sets the function whose result the node stores with
// each heartbeat, for Nodes to show.
func (c *Cluster) PublishResources(fn func() json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resources = fn
}

// Nodes returns every node that ran in the cluster, alive or not, by
// name.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeStatus, error) {
	return c.cs.nodes(ctx)
}

// Start loads the stored settings, queues again the jobs this node's name
// held in a previous process, registers the node and starts taking jobs.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started || c.closing {
		c.mu.Unlock()
		return errors.New("cluster node cannot start: it was already started")
	}
	c.mu.Unlock()
	if err := c.loadSettings(ctx); err != nil {
		return err
	}
	c.loadHistory(ctx)
	c.startedAt = time.Now()
	c.renewed.Store(c.startedAt.UnixNano())
	ids, err := c.cs.expired(ctx, true)
	if err != nil {
		return fmt.Errorf("finding the jobs of this node's previous process: %w", err)
	}
	for _, id := range ids {
		if err := c.requeue(ctx, id, true); err != nil {
			return fmt.Errorf("queueing job %s of this node's previous process again: %w", id, err)
		}
	}
	if _, err := c.cs.renew(ctx, nil, c.Settings().ConcurrentJobs, c.cfg.MaxConcurrentJobs, nil, c.startedAt); err != nil {
		return err
	}

	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	dispatchCtx, stopDispatching := context.WithCancel(context.Background())
	backgroundCtx, stopBackground := context.WithCancel(context.Background())
	c.stopDispatching, c.stopBackground = stopDispatching, stopBackground
	c.dispatching.Add(1)
	go func() {
		defer c.dispatching.Done()
		c.dispatchLoop(dispatchCtx)
	}()
	c.background.Add(2)
	go func() {
		defer c.background.Done()
		c.listenLoop(backgroundCtx)
	}()
	go func() {
		defer c.background.Done()
		c.leaseLoop(backgroundCtx)
	}()
	// Waiting until the node listens means that every change committed
	// after Start returns reaches it by notification.
	select {
	case <-c.listened:
	case <-ctx.Done():
		c.Stop()
		return ctx.Err()
	case <-time.After(c.cfg.Lease):
		c.log.Warn("not listening for notifications yet, so the node relies on its slow poll until it does")
	}
	settings := c.Settings()
	c.log.Info("cluster node started", "concurrent_jobs", settings.ConcurrentJobs,
		"max_concurrent_jobs", settings.MaxConcurrentJobs, "queue_limit", settings.QueueLimit,
		"cluster_concurrent_jobs", c.clusterLimit(), "lease", c.cfg.Lease, "requeued_jobs", len(ids))
	c.wakeDispatcher()
	return nil
}

// loadSettings reads the stored settings, keeping the configured value
// of each one not stored.
func (c *Cluster) loadSettings(ctx context.Context) error {
	values := map[string]*int{
		settingConcurrentJobs: new(int),
		settingQueueLimit:     new(int),
		settingClusterJobs:    new(int),
	}
	for key, target := range values {
		value, ok, err := c.store.LoadSetting(ctx, key)
		if err != nil {
			return fmt.Errorf("loading setting %s: %w", key, err)
		}
		n, convErr := strconv.Atoi(value)
		if !ok || convErr != nil || n < 0 || (n == 0 && key != settingClusterJobs) {
			if ok {
				c.log.Warn("ignoring invalid stored setting", "key", key, "value", value)
			}
			*target = -1
			continue
		}
		*target = n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := *values[settingConcurrentJobs]; n > 0 {
		c.requestedJobs = n
	}
	if n := *values[settingQueueLimit]; n > 0 {
		c.queueLimit = n
	}
	c.clusterN = max(*values[settingClusterJobs], 0)
	return nil
}

// loadHistory seeds the wait estimate with the durations of the most
// recently finished jobs of the cluster.
func (c *Cluster) loadHistory(ctx context.Context) {
	filter := JobFilter{States: []State{StateCompleted, StateFailed, StateCancelled}, Limit: durationWindowSize}
	jobs, _, err := c.store.ListJobs(ctx, filter)
	if err != nil {
		c.log.Warn("loading recent job durations failed, so wait estimates start empty", "error", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(jobs) - 1; i >= 0; i-- {
		c.durations.addJob(jobs[i])
	}
}

// Settings returns the limits in force on this node.
func (c *Cluster) Settings() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settingsLocked()
}

func (c *Cluster) settingsLocked() Settings {
	s := Settings{
		ConcurrentJobs:          c.limitLocked(),
		RequestedConcurrentJobs: c.requestedJobs,
		MaxConcurrentJobs:       c.cfg.MaxConcurrentJobs,
		QueueLimit:              c.queueLimit,
	}
	if c.clusterN > 0 {
		n := c.clusterN
		s.ClusterConcurrentJobs = &n
	}
	return s
}

// limitLocked returns this node's slot limit in force.
func (c *Cluster) limitLocked() int {
	return min(c.requestedJobs, c.cfg.MaxConcurrentJobs)
}

func (c *Cluster) clusterLimit() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clusterN
}

// UpdateSettings stores the set fields of update for every node, applies
// them on this node and notifies the others. An invalid value returns a
// *SettingsError and changes nothing.
func (c *Cluster) UpdateSettings(ctx context.Context, update SettingsUpdate) (Settings, error) {
	values, err := update.values()
	if err != nil {
		return Settings{}, err
	}
	if len(values) == 0 {
		return c.Settings(), nil
	}
	if err := c.store.SaveSettings(ctx, values); err != nil {
		return Settings{}, fmt.Errorf("storing settings: %w", err)
	}
	if err := c.loadSettings(ctx); err != nil {
		return Settings{}, err
	}
	if err := c.cs.notifySettings(ctx); err != nil {
		c.log.Warn("telling the other nodes of new settings failed; they see them at their next poll", "error", err)
	}
	settings := c.Settings()
	c.log.Info("pool settings changed", "concurrent_jobs", settings.ConcurrentJobs,
		"requested_concurrent_jobs", settings.RequestedConcurrentJobs, "queue_limit", settings.QueueLimit,
		"cluster_concurrent_jobs", c.clusterLimit())
	c.wakeDispatcher()
	return settings, nil
}

// Submit stores a new job at the end of the shared queue and returns it,
// QUEUED or BLOCKED. Any node may start it. It returns a *QueueFullError
// when QueueLimit jobs already wait in the cluster and ErrClosed once
// shutdown began.
func (c *Cluster) Submit(ctx context.Context, sub Submission) (*Job, error) {
	sub, err := c.cfg.applyJobTimeout(sub)
	if err != nil {
		return nil, err
	}
	job, err := newJob(sub)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if !c.started {
		c.mu.Unlock()
		return nil, errNotStarted
	}
	limit, retryAfter := c.queueLimit, c.durations.retryAfter(c.limitLocked())
	c.mu.Unlock()

	stored, err := c.cs.insert(ctx, job, limit, retryAfter)
	var full *QueueFullError
	if errors.As(err, &full) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("storing job %s: %w", job.ID, err)
	}
	c.wakeDispatcher()
	view, err := c.view(ctx, stored)
	if err != nil {
		// The job is queued, so the submission succeeded all the same.
		c.log.Warn("reading the place of a new job failed", "job_id", stored.ID, "error", err)
		return normalize(stored), nil
	}
	return view, nil
}

// Reserve checks that Submit would admit n more jobs with the given
// timeout now; see Pool.Reserve.
func (c *Cluster) Reserve(n int, timeout time.Duration) error {
	if _, err := c.cfg.applyJobTimeout(Submission{Timeout: timeout}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.cs.counts(ctx)
	if err != nil {
		return fmt.Errorf("counting waiting jobs: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if depth := counts.Queued + counts.Blocked; depth+n > c.queueLimit {
		return &QueueFullError{Depth: depth, Limit: c.queueLimit, RetryAfter: c.durations.retryAfter(c.limitLocked())}
	}
	return nil
}

// Job returns the job with the given id, from memory when this node runs
// it and else from the database.
func (c *Cluster) Job(ctx context.Context, id string) (*Job, error) {
	if view := c.localView(id); view != nil {
		return view, nil
	}
	job, err := c.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.view(ctx, job)
}

// localView returns the live record of a job this node runs, or nil.
func (c *Cluster) localView(id string) *Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	if aj := c.local[id]; aj != nil && !aj.ended {
		return normalize(aj.job.Clone())
	}
	return nil
}

// view returns job with the live fields of a waiting job filled in.
func (c *Cluster) view(ctx context.Context, job *Job) (*Job, error) {
	job = normalize(job)
	if !job.State.Waiting() {
		return job, nil
	}
	waiting, position, err := c.cs.waitingFor(ctx, job)
	if err != nil {
		return nil, err
	}
	job.WaitingFor, job.Position = waiting, &position
	c.mu.Lock()
	job.EstimatedWaitMs = c.durations.estimateWait(position, c.limitLocked())
	c.mu.Unlock()
	return job, nil
}

// Jobs returns the jobs that match filter, newest first, and the number
// of all matches.
func (c *Cluster) Jobs(ctx context.Context, filter JobFilter) ([]*Job, int, error) {
	if err := checkFilter(&filter); err != nil {
		return nil, 0, err
	}
	jobs, total, err := c.store.ListJobs(ctx, filter)
	if err != nil {
		return nil, 0, fmt.Errorf("listing jobs: %w", err)
	}
	for i, job := range jobs {
		if view := c.localView(job.ID); view != nil {
			jobs[i] = view
			continue
		}
		if jobs[i], err = c.view(ctx, job); err != nil {
			return nil, 0, err
		}
	}
	return jobs, total, nil
}

// ActiveJobIDs returns the ids of the active jobs of a lock key: the job
// holding the lock, if any, and then the waiting jobs in queue order. It
// returns nil when the database cannot be read, and logs why.
func (c *Cluster) ActiveJobIDs(lockKey string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids, err := c.cs.activeJobIDs(ctx, lockKey)
	if err != nil {
		c.log.Error("reading the active jobs of a lock failed", "lock", lockKey, "error", err)
	}
	return ids
}

// Counts returns the numbers of active jobs of the cluster by state, with
// this node's slot limit. When the database cannot be read it counts this
// node's running jobs alone.
func (c *Cluster) Counts() Counts {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.cs.counts(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.log.Error("counting the active jobs failed", "error", err)
		counts = Counts{Running: len(c.local)}
	}
	counts.ConcurrentJobs = c.limitLocked()
	return counts
}

// Snapshot returns the running jobs of every node and the first
// maxWaiting waiting jobs. The queries run in one after the other, so a
// job that changes between them may show in both lists or in neither.
func (c *Cluster) Snapshot(maxWaiting int) Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap := Snapshot{Settings: c.Settings(), Running: []*Job{}, Waiting: []*Job{}}
	counts, err := c.cs.counts(ctx)
	if err != nil {
		c.log.Error("reading the queue failed", "error", err)
		return snap
	}
	counts.ConcurrentJobs = snap.Settings.ConcurrentJobs
	snap.Counts = counts
	running, err := c.cs.running(ctx)
	if err == nil && maxWaiting > 0 {
		snap.Waiting, err = c.cs.waiting(ctx, maxWaiting)
	}
	if err != nil {
		c.log.Error("reading the queue failed", "error", err)
		return snap
	}
	for i, job := range running {
		if view := c.localView(job.ID); view != nil {
			running[i] = view
		} else {
			running[i] = normalize(job)
		}
	}
	snap.Running = running
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, job := range snap.Waiting {
		position := i + 1
		job.Position = &position
		job.WaitingFor = queueWaitingFor(job, snap.Waiting[:i], running)
		job.EstimatedWaitMs = c.durations.estimateWait(position, c.limitLocked())
		snap.Waiting[i] = normalize(job)
	}
	return snap
}

// queueWaitingFor returns why job waits, given the waiting jobs ahead of
// it in queue order and the running jobs.
func queueWaitingFor(job *Job, ahead, running []*Job) *WaitingFor {
	for i := len(ahead) - 1; i >= 0; i-- {
		if ahead[i].LockKey == job.LockKey {
			return &WaitingFor{Reason: ReasonProjectLock, BlockedBy: &ahead[i].ID}
		}
	}
	for _, r := range running {
		if r.LockKey == job.LockKey {
			return &WaitingFor{Reason: ReasonProjectLock, BlockedBy: &r.ID}
		}
	}
	return &WaitingFor{Reason: ReasonSlot}
}

// Await blocks until the job with the given id is final and returns its
// final record, or until ctx ends. It learns of the end from this node,
// from a notification, or from the slow poll.
func (c *Cluster) Await(ctx context.Context, id string) (*Job, error) {
	c.mu.Lock()
	w := c.waiters[id]
	if w == nil {
		w = &waiter{done: make(chan struct{})}
		c.waiters[id] = w
	}
	w.calls++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if w.calls--; w.calls == 0 && c.waiters[id] == w {
			delete(c.waiters, id)
		}
	}()

	// The waiter exists before the read, so an end stored after the read
	// closes it.
	job, err := c.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if !job.State.Final() {
		select {
		case <-w.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if job, err = c.store.GetJob(ctx, id); err != nil {
			return nil, err
		}
	}
	return normalize(job), nil
}

// StopJob stops a job whichever node runs it; see Pool.StopJob. A
// running job becomes CANCELLING at once, and its node cancels the run
// when the stop's notification, or its next lease renewal, reaches it.
func (c *Cluster) StopJob(ctx context.Context, id, by, reason string) (*Job, error) {
	record := &StopRecord{By: by, Reason: reason, At: timestamp.Now()}
	job, err := c.cs.stop(ctx, id, record)
	if err != nil {
		return nil, err
	}
	if job.State == StateCancelling && deref(job.Node) == c.cfg.Node {
		// The store reported the CANCELLING state to the observers.
		c.stopRun(id, job.Stop, false)
	}
	if view := c.localView(id); view != nil {
		return view, nil
	}
	return normalize(job), nil
}

// stopRun cancels the run of a job this node runs that was stopped with
// record, and reports the CANCELLING state to the observers when report
// is set.
func (c *Cluster) stopRun(id string, record *StopRecord, report bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	aj := c.local[id]
	if aj == nil || aj.ended || aj.stopRequested {
		return
	}
	next := cancellingRecord(aj.job, record)
	if report {
		c.emitLocked(changeEvents(aj.job, next, time.Now()))
	}
	aj.job = next
	aj.stopRequested = true
	aj.cancel(errStopRequested)
}

// applied reports jobs, whose changes this node just committed, to the
// observers and wakes the callers of Await on those that ended.
func (c *Cluster) applied(jobs ...*Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, job := range jobs {
		c.emitLocked([]Event{jobEvent(job, now)})
		if job.State.Final() {
			c.endedLocked(job.ID)
			c.durations.addJob(job)
		}
	}
}

func (c *Cluster) emitLocked(events []Event) {
	for _, e := range events {
		for _, fn := range c.observers {
			fn(e)
		}
	}
}

// endedLocked wakes the callers of Await on the job with the given id.
func (c *Cluster) endedLocked(id string) {
	if w := c.waiters[id]; w != nil {
		close(w.done)
		delete(c.waiters, id)
	}
}

func (c *Cluster) wakeDispatcher() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// failureLog logs a failing background step once until it works again.
type failureLog struct {
	log *slog.Logger
	mu  sync.Mutex
	on  map[string]bool
}

func (f *failureLog) check(step string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.on == nil {
		f.on = map[string]bool{}
	}
	switch {
	case err != nil && !f.on[step]:
		f.log.Error(step+" failed; retrying", "error", err)
		f.on[step] = true
	case err == nil && f.on[step]:
		f.log.Info(step + " works again")
		f.on[step] = false
	}
}
