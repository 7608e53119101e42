// Package lambda runs a project as ephemeral instances. Each invocation
// clones the project's definition, binds the caller's parameters and
// queues the copy as one job with a lock of its own. Instances of one
// project therefore run side by side up to the pool's slot limit. The package
// serves POST /projects/{project}/lambda, .../lambda/batch and GET
// /instances/{instance}, stores instances and idempotency keys, and
// removes instances once their job ended or their retention ran out. It
// also serves the Omniscope-style routes under /{project}/w/, which run
// through the same code with Omniscope's bodies and error shape.
package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

// Scheduler is the part of the pool that the lambda API uses.
type Scheduler interface {
	Submit(ctx context.Context, sub pool.Submission) (*pool.Job, error)
	Job(ctx context.Context, id string) (*pool.Job, error)
	Await(ctx context.Context, id string) (*pool.Job, error)
	StopJob(ctx context.Context, id, by, reason string) (*pool.Job, error)
	ActiveJobIDs(lockKey string) []string
	Reserve(n int, timeout time.Duration) error
}

// Projects is the part of the project store that the lambda API uses.
type Projects interface {
	Get(ctx context.Context, name string) (*projects.Record, error)
	Update(ctx context.Context, rec *projects.Record, ifVersion int64) error
}

// Service serves the lambda routes and owns the goroutines that remove
// instances: one per active instance, which waits for the instance's job
// to end, and the cleaner, which removes expired instances and keys.
// Create it with New, call Start before serving and Stop when done. Its
// methods are safe for concurrent use.
type Service struct {
	cfg      Config
	store    Store
	sched    Scheduler
	projects Projects
	log      *slog.Logger
	// now returns the current time; tests replace it.
	now func() time.Time

	// draining ends when Drain is called, and drain ends it.
	draining context.Context
	drain    context.CancelFunc
	// keyMu serialises invocations that carry an idempotency key, so that
	// two concurrent requests with one key queue one job.
	keyMu sync.Mutex
	// executeMu serialises the Omniscope-style executions, so that two
	// concurrent requests cannot both find their project idle.
	executeMu sync.Mutex

	// mu guards the fields below.
	mu      sync.Mutex
	started bool
	stopped bool
	// ctx ends when Stop is called; watchers and the cleaner select on
	// it.
	ctx    context.Context
	cancel context.CancelFunc
	// watching holds, for each instance a watcher waits for, a channel
	// that is closed once the watcher settled the instance.
	watching map[string]chan struct{}
	// wg tracks the watchers and the cleaner.
	wg sync.WaitGroup
}

// New returns a Service that stores instances in store, reads projects
// from projectStore and queues jobs with sched.
func New(cfg Config, store Store, projectStore Projects, sched Scheduler) (*Service, error) {
	if store == nil || projectStore == nil || sched == nil {
		return nil, errors.New("invalid lambda service: store, project store and scheduler are required")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	draining, drain := context.WithCancel(context.Background())
	return &Service{
		draining: draining,
		drain:    drain,
		cfg:      cfg,
		store:    store,
		sched:    sched,
		projects: projectStore,
		log:      cfg.Logger.With("component", "lambda"),
		now:      time.Now,
		ctx:      ctx,
		cancel:   cancel,
		watching: map[string]chan struct{}{},
	}, nil
}

// Register adds the lambda routes to rg, the /api/v1 group.
func (s *Service) Register(rg *gin.RouterGroup) {
	rg.POST("/projects/:project/lambda", httpapi.Handle(s.invoke))
	rg.POST("/projects/:project/lambda/batch", httpapi.Handle(s.batch))
	rg.GET("/instances/:instance", httpapi.Handle(s.getInstance))
}

// Start runs a first sweep, which also watches the instances whose jobs
// were queued before a restart, and starts the cleaner. It returns once
// the cleaner runs, and fails when called twice or after Stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.stopped {
		s.mu.Unlock()
		return errors.New("lambda service cannot start: it was already started")
	}
	s.started = true
	s.mu.Unlock()

	if err := s.Sweep(ctx); err != nil {
		return fmt.Errorf("starting lambda service: %w", err)
	}
	if !s.spawn(s.clean) {
		return errors.New("lambda service cannot start: it was stopped")
	}
	s.log.Info("lambda service started", "instance_retention", s.cfg.InstanceRetention,
		"idempotency_retention", s.cfg.IdempotencyRetention, "sweep_interval", s.cfg.SweepInterval)
	return nil
}

// Drain ends the waits of lambda invocations: those waiting respond at
// once with the job as it is (202 unless it ended), and later ones do not
// wait. A server that shuts down calls it, so that it does not hold the
// requests until it closes their connections.
func (s *Service) Drain() {
	s.drain()
}

// Stop ends the cleaner and the watchers and waits for them. Jobs go on:
// an instance whose job ends later is removed by the next Start's sweep.
// Stop is safe to call more than once.
func (s *Service) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// spawn runs fn in a goroutine that Stop waits for, unless Stop was
// called. It returns whether fn was started.
func (s *Service) spawn(fn func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
	return true
}

// clean runs Sweep every SweepInterval until ctx ends.
func (s *Service) clean(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.SweepInterval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			// Logged once until a sweep succeeds again.
			s.log.Error("sweeping expired instances failed", "error", err)
			failing = true
		case err == nil && failing:
			s.log.Info("sweeping expired instances works again")
			failing = false
		}
	}
}

// Sweep removes the instances and idempotency keys that have expired, and
// settles the instances whose job ended without being seen (such as
// before a restart): it removes them or starts their retention. An
// instance whose job is still active gets a watcher. The cleaner calls
// Sweep every SweepInterval; tests call it to clean up at a known time.
func (s *Service) Sweep(ctx context.Context) error {
	// Settling first lets an instance whose job ended long ago expire in
	// the same sweep.
	unfinished, err := s.store.UnfinishedInstances(ctx)
	if err != nil {
		return err
	}
	for _, inst := range unfinished {
		if err := s.settle(ctx, inst); err != nil {
			return err
		}
	}

	now := s.now()
	expired, err := s.store.ExpiredInstances(ctx, now)
	if err != nil {
		return err
	}
	for _, id := range expired {
		if err := s.removeInstance(ctx, id); err != nil {
			return err
		}
	}

	keys, err := s.store.DeleteExpiredKeys(ctx, now)
	if err != nil {
		return err
	}
	if len(expired) > 0 || keys > 0 {
		s.log.Info("expired instances removed", "instances", len(expired), "idempotency_keys", keys)
	}
	return nil
}

// settle handles an instance whose job was not seen to end: it starts a
// watcher for an active job and records the end of a finished one.
func (s *Service) settle(ctx context.Context, inst *Instance) error {
	job, err := s.sched.Job(ctx, inst.Job)
	if errors.Is(err, pool.ErrJobNotFound) {
		// The job record is gone, so nothing can run the instance.
		s.log.Warn("removing instance whose job does not exist", "instance_id", inst.ID, "job_id", inst.Job)
		return s.removeInstance(ctx, inst.ID)
	}
	if err != nil {
		return fmt.Errorf("reading job %s of instance %s: %w", inst.Job, inst.ID, err)
	}
	if job.State.Final() {
		return s.jobEnded(ctx, inst, job)
	}
	s.watch(inst)
	return nil
}

// watch starts a watcher that waits for inst's job to end and then
// removes the instance or starts its retention. One watcher per instance
// runs at a time.
func (s *Service) watch(inst *Instance) {
	s.mu.Lock()
	if s.watching[inst.ID] != nil {
		s.mu.Unlock()
		return
	}
	s.watching[inst.ID] = make(chan struct{})
	s.mu.Unlock()

	started := s.spawn(func(ctx context.Context) {
		defer s.unwatch(inst.ID)
		job, err := s.sched.Await(ctx, inst.Job)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("waiting for the job of an instance failed; the next sweep retries",
					"instance_id", inst.ID, "job_id", inst.Job, "error", err)
			}
			return
		}
		if err := s.jobEnded(ctx, inst, job); err != nil && ctx.Err() == nil {
			s.log.Error("settling an ended instance failed; the next sweep retries",
				"instance_id", inst.ID, "job_id", inst.Job, "error", err)
		}
	})
	if !started {
		s.unwatch(inst.ID)
	}
}

func (s *Service) unwatch(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if settled := s.watching[id]; settled != nil {
		close(settled)
	}
	delete(s.watching, id)
}

// awaitSettled waits until no watcher waits for the instance with the
// given id any more, so that a finished job's instance has been removed
// or given its expiry, or until ctx ends.
func (s *Service) awaitSettled(ctx context.Context, id string) {
	s.mu.Lock()
	settled := s.watching[id]
	s.mu.Unlock()
	if settled == nil {
		return
	}
	select {
	case <-settled:
	case <-ctx.Done():
	}
}

// jobEnded removes inst when it was invoked with deleteExecutionOnFinish,
// and otherwise records when it expires.
func (s *Service) jobEnded(ctx context.Context, inst *Instance, job *pool.Job) error {
	if inst.DeleteExecutionOnFinish {
		return s.removeInstance(ctx, inst.ID)
	}
	finished := s.now()
	if job.FinishedAt != nil {
		finished = job.FinishedAt.Time
	}
	expires := finished.Add(s.cfg.InstanceRetention)
	if err := s.store.FinishInstance(ctx, inst.ID, finished, expires); err != nil {
		return err
	}
	s.log.Debug("instance kept", "instance_id", inst.ID, "job_id", job.ID, "expires_at", expires)
	return nil
}

// removeInstance deletes the instance's directory of uploaded files and
// its record. The job record and its outputs stay.
func (s *Service) removeInstance(ctx context.Context, id string) error {
	if dir := s.instanceDir(id); dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing files of instance %s: %w", id, err)
		}
	}
	if err := s.store.DeleteInstance(ctx, id); err != nil {
		return err
	}
	s.log.Debug("instance removed", "instance_id", id)
	return nil
}

// instanceDir returns the directory of the instance's uploaded files, or
// "" when uploads are disabled.
func (s *Service) instanceDir(id string) string {
	if s.cfg.FilesDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.FilesDir, instancesDirName, id)
}

// instanceFilePath returns the path of an uploaded file relative to
// FilesDir, which is the value the file parameter takes.
func instanceFilePath(id, parameter, name string) string {
	return instancesDirName + "/" + id + "/" + parameter + "/" + name
}
