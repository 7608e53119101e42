// Package pool runs jobs through one FIFO pool of slots. Each job takes
// the lock named by its LockKey, so at most one job per lock runs at a
// time, and jobs start in submission order among those whose lock is
// free. The pool stores every job transition through a Store and serves
// the /jobs and /settings endpoints.
package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// Pool schedules and runs jobs. Create it with New, call Start before
// submitting, and Shutdown or Stop when done. Its methods are safe for
// concurrent use.
type Pool struct {
	cfg    Config
	store  Store
	runner Runner
	log    *slog.Logger

	// runs tracks the goroutines that run jobs, so that Shutdown can wait
	// for them.
	runs sync.WaitGroup

	// mu guards the fields below and the activeJob and lockLine records
	// they reach. Job transitions are written to the store while mu is
	// held, so the store receives them in the order memory applies them.
	mu      sync.Mutex
	started bool
	closing bool
	// requestedJobs is the requested slot limit. The limit in force is
	// capped at cfg.MaxConcurrentJobs.
	requestedJobs int
	queueLimit    int
	nextSeq       int64
	// jobs holds every active job by id.
	jobs map[string]*activeJob
	// lines holds the lock line of every lock key with an active job.
	lines map[string]*lockLine
	// ready holds the lines whose lock is free and whose head can start.
	ready readyHeap
	// order ranks the waiting jobs for Position.
	order waitOrder
	// unstored holds the final records of ended jobs whose end the store
	// rejected, by id, while retryEnd retries them.
	unstored map[string]*Job
	// running counts the jobs holding a slot, RUNNING or CANCELLING.
	running   int
	durations durationWindow
	hooks     testHooks
	// observers receive every job and block state change; see Observe.
	observers []func(Event)
}

// testHooks lets tests observe scheduling decisions. Both run with mu held
// and must not call the pool.
type testHooks struct {
	// beforeStart is called before a job starts.
	beforeStart func(*activeJob)
	// final is called with a copy of each job that reached a final state.
	final func(*Job)
}

var errNotStarted = errors.New("pool has not been started")

// New returns a pool that keeps jobs in store and runs them with runner.
// It starts nothing until Start.
func New(cfg Config, store Store, runner Runner) (*Pool, error) {
	if store == nil {
		return nil, errors.New("invalid pool: store is nil")
	}
	if runner == nil {
		return nil, errors.New("invalid pool: runner is nil")
	}
	cfg = cfg.withDefaults(usableCores)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Pool{
		cfg:           cfg,
		store:         store,
		runner:        runner,
		log:           cfg.Logger.With("component", "pool"),
		requestedJobs: cfg.ConcurrentJobs,
		queueLimit:    cfg.QueueLimit,
		jobs:          make(map[string]*activeJob),
		lines:         make(map[string]*lockLine),
	}, nil
}

// Submit stores a new job and queues it. The job gets a UUIDv7 id and the
// next sequence number, and may already be RUNNING when Submit returns.
// Its Parameters are stored as JSON, and the runner receives them decoded
// from JSON with numbers as json.Number.
// Submit returns a *QueueFullError when QueueLimit jobs already wait and
// ErrClosed once shutdown began.
func (p *Pool) Submit(ctx context.Context, sub Submission) (*Job, error) {
	sub, err := p.cfg.applyJobTimeout(sub)
	if err != nil {
		return nil, err
	}
	job, err := newJob(sub)
	if err != nil {
		return nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return nil, ErrClosed
	}
	if !p.started {
		return nil, errNotStarted
	}
	if depth := p.order.live; depth >= p.queueLimit {
		return nil, &QueueFullError{Depth: depth, Limit: p.queueLimit, RetryAfter: p.retryAfterLocked()}
	}

	job.Seq = p.nextSeq
	job.State = StateQueued
	if p.lines[job.LockKey] != nil {
		// A line exists only while its lock is held or a job waits.
		job.State = StateBlocked
	}
	// A job that the dispatch below would start at once is stored as
	// RUNNING in its first write, which saves a transaction per job on an
	// idle pool. Observers still see QUEUED and then RUNNING.
	stored := job
	startsNow := job.State == StateQueued && p.canStartAtOnceLocked()
	if startsNow {
		stored = startedRecord(job)
	}
	if err := p.store.InsertJob(ctx, stored); err != nil {
		return nil, fmt.Errorf("storing job %s: %w", job.ID, err)
	}
	p.nextSeq++
	aj := &activeJob{job: job}
	p.enqueueLocked(aj)
	p.observeLocked(nil, job)
	p.log.Debug("job queued", "job_id", job.ID, "project", job.Project, "lock", job.LockKey, "state", job.State)
	if startsNow {
		p.runStartedLocked(aj, stored)
	}
	p.dispatchLocked()
	return p.viewLocked(aj), nil
}

// canStartAtOnceLocked reports whether a new QUEUED job, whose lock is
// free, would be the next job that dispatchLocked starts: a slot is free
// and no older job is runnable.
func (p *Pool) canStartAtOnceLocked() bool {
	return p.running < p.effectiveLimitLocked() && p.ready.Len() == 0
}

// normalizeParameters returns params as they read back from the store:
// decoded from JSON, with numbers as json.Number. The runner then gets the
// same types on a first attempt and on an attempt after a restart.
func normalizeParameters(params map[string]any) (map[string]any, error) {
	normalized := map[string]any{}
	if len(params) == 0 {
		return normalized, nil
	}
	data, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("invalid submission: encoding Parameters as JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&normalized); err != nil {
		return nil, fmt.Errorf("invalid submission: decoding Parameters: %w", err)
	}
	return normalized, nil
}

// newJob builds the record of a submission, without Seq and State.
func newJob(sub Submission) (*Job, error) {
	sub, err := withSubmissionDefaults(sub)
	if err != nil {
		return nil, err
	}
	params, err := normalizeParameters(sub.Parameters)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("creating job id: %w", err)
	}

	blocks := make([]BlockRun, len(sub.Blocks))
	for i, b := range sub.Blocks {
		blocks[i] = BlockRun{Name: b.Name, Type: b.Type, State: BlockPending}
	}
	return &Job{
		ID:          id.String(),
		Project:     sub.Project,
		Instance:    clonePtr(sub.Instance),
		Kind:        sub.Kind,
		Attempt:     1,
		Parameters:  params,
		SubmittedAt: timestamp.Now(),
		Blocks:      blocks,
		Outputs:     []Output{},
		TimeoutMs:   timeoutMs(sub.Timeout),
		LockKey:     sub.LockKey,
		Definition:  sub.Definition,
		Only:        sub.Only,
	}, nil
}

// timeoutMs rounds a timeout up to whole milliseconds, so that a positive
// timeout below 1ms still sets a deadline.
func timeoutMs(timeout time.Duration) int64 {
	return int64((timeout + time.Millisecond - 1) / time.Millisecond)
}

// withSubmissionDefaults validates sub and fills in its defaults: Kind
// execute, and as LockKey the instance id when there is one, else the
// project name.
func withSubmissionDefaults(sub Submission) (Submission, error) {
	if sub.Project == "" {
		return sub, errors.New("invalid submission: Project is empty")
	}
	if sub.Kind == "" {
		sub.Kind = KindExecute
	}
	if sub.Kind != KindExecute && sub.Kind != KindLambda {
		return sub, fmt.Errorf("invalid submission: Kind %q is neither %q nor %q", sub.Kind, KindExecute, KindLambda)
	}
	if sub.Timeout < 0 {
		return sub, fmt.Errorf("invalid submission: Timeout %s is negative", sub.Timeout)
	}
	if sub.LockKey == "" && sub.Instance != nil {
		sub.LockKey = *sub.Instance
	}
	if sub.LockKey == "" {
		sub.LockKey = sub.Project
	}
	return sub, nil
}

// Job returns the job with the given id, or ErrJobNotFound. An active job
// comes from memory with its live WaitingFor, Position, EstimatedWaitMs
// and blocks; a finished one from the store.
func (p *Pool) Job(ctx context.Context, id string) (*Job, error) {
	p.mu.Lock()
	if aj := p.jobs[id]; aj != nil {
		view := p.viewLocked(aj)
		p.mu.Unlock()
		return view, nil
	}
	if final := p.unstoredLocked(id); final != nil {
		p.mu.Unlock()
		return final, nil
	}
	p.mu.Unlock()

	job, err := p.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return normalize(job), nil
}

// Jobs returns the jobs that match filter, newest first, and the number of
// all matches. A job that changes state during the call is shown in its
// newer state, even if that no longer matches filter.
func (p *Pool) Jobs(ctx context.Context, filter JobFilter) ([]*Job, int, error) {
	if err := checkFilter(&filter); err != nil {
		return nil, 0, err
	}
	jobs, total, err := p.store.ListJobs(ctx, filter)
	if err != nil {
		return nil, 0, fmt.Errorf("listing jobs: %w", err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for i, job := range jobs {
		if aj := p.jobs[job.ID]; aj != nil {
			jobs[i] = p.viewLocked(aj)
		} else {
			jobs[i] = normalize(job)
		}
	}
	return jobs, total, nil
}

// checkFilter validates filter and applies the list limits.
func checkFilter(filter *JobFilter) error {
	for _, s := range filter.States {
		if !s.valid() {
			return fmt.Errorf("invalid job filter: unknown state %q", s)
		}
	}
	if filter.Limit < 0 {
		return fmt.Errorf("invalid job filter: Limit %d is negative", filter.Limit)
	}
	if filter.Offset < 0 {
		return fmt.Errorf("invalid job filter: Offset %d is negative", filter.Offset)
	}
	if filter.Limit == 0 {
		filter.Limit = DefaultListLimit
	}
	filter.Limit = min(filter.Limit, MaxListLimit)
	return nil
}

func (s State) valid() bool {
	switch s {
	case StateQueued, StateBlocked, StateRunning, StateCancelling, StateCompleted, StateFailed, StateCancelled:
		return true
	}
	return false
}

// ActiveJobIDs returns the ids of the active jobs of a lock key: the job
// holding the lock, if any, and then the waiting jobs in queue order.
func (p *Pool) ActiveJobIDs(lockKey string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := p.lines[lockKey]
	if line == nil {
		return nil
	}
	var ids []string
	if line.holder != nil {
		ids = append(ids, line.holder.job.ID)
	}
	for aj := line.head; aj != nil; aj = aj.next {
		ids = append(ids, aj.job.ID)
	}
	return ids
}

// viewLocked returns a copy of aj's job with the live fields of a waiting
// job filled in.
func (p *Pool) viewLocked(aj *activeJob) *Job {
	job := normalize(aj.job.Clone())
	if aj.ended || !job.State.Waiting() {
		return job
	}

	waiting := &WaitingFor{Reason: ReasonSlot}
	if job.State == StateBlocked {
		ahead := aj.prev
		if ahead == nil {
			ahead = aj.line.holder
		}
		if ahead != nil {
			id := ahead.job.ID
			waiting = &WaitingFor{Reason: ReasonProjectLock, BlockedBy: &id}
		}
	}
	job.WaitingFor = waiting
	position := p.order.position(aj)
	job.Position = &position
	job.EstimatedWaitMs = p.estimateWaitLocked(position)
	return job
}

// normalize gives job's list fields empty values instead of nil, so that
// they encode as [] and {} rather than null.
func normalize(job *Job) *Job {
	if job.Blocks == nil {
		job.Blocks = []BlockRun{}
	}
	if job.Outputs == nil {
		job.Outputs = []Output{}
	}
	if job.Parameters == nil {
		job.Parameters = map[string]any{}
	}
	return job
}
