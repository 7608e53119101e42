package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashHelperEnv); path != "" {
		os.Exit(runCrashHelper(path))
	}
	goleak.VerifyTestMain(m)
}

// awaitTimeout bounds every wait of a test on the pool, so that a bug
// fails the test instead of hanging it. Tests never sleep to synchronise.
const awaitTimeout = 20 * time.Second

// bundle is what setup returns: a started pool on a memory store with a
// controllable runner.
type bundle struct {
	pool   *pool.Pool
	store  *pooltest.MemoryStore
	runner *pooltest.Runner
	finals *finalLog
	logs   *logRecorder
	// startViolations lists scheduling rules broken by any start.
	startViolations func() []string
}

// setup starts a pool with MaxConcurrentJobs 4, so that tests do not
// depend on the machine's cores. configure may change the config.
func setup(t *testing.T, configure ...func(*pool.Config)) *bundle {
	t.Helper()
	b := &bundle{
		store:  pooltest.NewMemoryStore(),
		runner: pooltest.NewRunner(),
		finals: newFinalLog(),
		logs:   newLogRecorder(),
	}
	cfg := pool.Config{MaxConcurrentJobs: 4, OutputRoot: t.TempDir(), Logger: slog.New(b.logs)}
	for _, f := range configure {
		f(&cfg)
	}
	b.pool = startPool(t, cfg, b.store, b.runner, b.finals)
	b.startViolations = b.pool.CheckStarts()
	t.Cleanup(func() {
		for _, v := range b.startViolations() {
			t.Errorf("scheduling rule broken: %s", v)
		}
		if err := b.pool.CheckInvariants(); err != nil {
			t.Errorf("scheduler invariant broken at the end: %v", err)
		}
	})
	return b
}

// startPool creates and starts a pool that records final jobs in finals,
// and stops it when the test ends.
func startPool(t *testing.T, cfg pool.Config, store pool.Store, runner pool.Runner, finals *finalLog) *pool.Pool {
	t.Helper()
	p, err := pool.New(cfg, store, runner)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.OnFinal(finals.record)
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if r, ok := runner.(*pooltest.Runner); ok {
		// Cleanups run last-in first-out: end the held runs, then stop.
		t.Cleanup(p.Stop)
		t.Cleanup(func() { r.EndAll(errors.New("test ended")) })
	} else {
		t.Cleanup(p.Stop)
	}
	return p
}

func awaitContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), awaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// submit queues a job of project lock with two blocks.
func (b *bundle) submit(t *testing.T, lock string) *pool.Job {
	t.Helper()
	return submitTo(t, b.pool, lock, 0)
}

func submitTo(t *testing.T, p *pool.Pool, lock string, timeout time.Duration) *pool.Job {
	t.Helper()
	job, err := p.Submit(t.Context(), pool.Submission{
		Project:    lock,
		Kind:       pool.KindExecute,
		LockKey:    lock,
		Parameters: map[string]any{"year": 2014},
		Blocks:     []pool.BlockRun{{Name: "load", Type: "csv.read"}, {Name: "save", Type: "csv.write"}},
		Timeout:    timeout,
	})
	if err != nil {
		t.Fatalf("Submit(%s): %v", lock, err)
	}
	return job
}

// awaitRun waits until the runner runs job id.
func (b *bundle) awaitRun(t *testing.T, id string) *pooltest.Run {
	t.Helper()
	run, err := b.runner.Await(awaitContext(t), id)
	if err != nil {
		t.Fatalf("waiting for job %s to run: %v", id, err)
	}
	return run
}

// awaitFinal waits until job id reaches a final state and returns it.
func (b *bundle) awaitFinal(t *testing.T, id string) *pool.Job {
	t.Helper()
	job, err := b.finals.await(awaitContext(t), id)
	if err != nil {
		t.Fatalf("waiting for job %s to end: %v", id, err)
	}
	return job
}

// job returns the pool's current view of job id.
func (b *bundle) job(t *testing.T, id string) *pool.Job {
	t.Helper()
	job, err := b.pool.Job(t.Context(), id)
	if err != nil {
		t.Fatalf("Job(%s): %v", id, err)
	}
	return job
}

func (b *bundle) setLimit(t *testing.T, n int) {
	t.Helper()
	if _, err := b.pool.SetConcurrentJobs(t.Context(), n); err != nil {
		t.Fatalf("SetConcurrentJobs(%d): %v", n, err)
	}
}

// finalLog records the jobs that reached a final state, through the
// pool's OnFinal hook.
type finalLog struct {
	// mu guards every field below.
	mu     sync.Mutex
	jobs   map[string]*pool.Job
	counts map[string]int
	// changed is closed and replaced on every record.
	changed chan struct{}
}

func newFinalLog() *finalLog {
	return &finalLog{jobs: map[string]*pool.Job{}, counts: map[string]int{}, changed: make(chan struct{})}
}

// record runs with the pool's lock held, so it must not block.
func (l *finalLog) record(job *pool.Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs[job.ID] = job
	l.counts[job.ID]++
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *finalLog) await(ctx context.Context, id string) (*pool.Job, error) {
	for {
		l.mu.Lock()
		job, changed := l.jobs[id], l.changed
		l.mu.Unlock()
		if job != nil {
			return job, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *finalLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[id]
}

// logRecorder is a slog.Handler that lets a test wait for a log message.
type logRecorder struct {
	// mu guards every field below.
	mu       sync.Mutex
	messages []string
	changed  chan struct{}
}

func newLogRecorder() *logRecorder {
	return &logRecorder{changed: make(chan struct{})}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, record slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, record.Message)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// await waits until message was logged.
func (r *logRecorder) await(t *testing.T, message string) {
	t.Helper()
	ctx := awaitContext(t)
	for {
		r.mu.Lock()
		found, changed := slices.Contains(r.messages, message), r.changed
		r.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("message %q was not logged", message)
		}
	}
}

func TestSubmitRunsJobsInFIFOOrder(t *testing.T) {
	b := setup(t)
	var ids []string
	for _, lock := range []string{"a", "b", "c", "d", "e"} {
		ids = append(ids, b.submit(t, lock).ID)
	}
	for i, id := range ids {
		run, err := b.runner.Next(awaitContext(t))
		if err != nil {
			t.Fatalf("waiting for run %d: %v", i, err)
		}
		if run.Job.ID != id {
			t.Fatalf("run %d is job %s, want %s", i, run.Job.ID, id)
		}
		run.Complete(pool.Outcome{})
		if got := b.awaitFinal(t, id).State; got != pool.StateCompleted {
			t.Errorf("job %d ended %s, want COMPLETED", i, got)
		}
	}
	if got := b.runner.Calls(); !slices.Equal(got, ids) {
		t.Errorf("runs = %v, want %v", got, ids)
	}
}

func TestDefaultLimitRunsOneJobAtATime(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "a")
	second := b.submit(t, "b")
	run := b.awaitRun(t, first.ID)

	if got := b.pool.Settings().ConcurrentJobs; got != 1 {
		t.Errorf("ConcurrentJobs = %d, want the default 1", got)
	}
	waiting := b.job(t, second.ID)
	if waiting.State != pool.StateQueued {
		t.Errorf("second job is %s, want QUEUED", waiting.State)
	}
	if waiting.WaitingFor == nil || waiting.WaitingFor.Reason != pool.ReasonSlot {
		t.Errorf("second job waits for %+v, want reason SLOT", waiting.WaitingFor)
	}
	if waiting.Position == nil || *waiting.Position != 1 {
		t.Errorf("second job position = %v, want 1", waiting.Position)
	}
	if got := b.pool.Internals().Running; got != 1 {
		t.Errorf("running = %d, want 1", got)
	}

	run.Complete(pool.Outcome{})
	b.awaitRun(t, second.ID)
	if got := b.job(t, second.ID).State; got != pool.StateRunning {
		t.Errorf("second job is %s after the first ended, want RUNNING", got)
	}
}

func TestRaisedLimitRunsTwoJobs(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "a")
	second := b.submit(t, "b")
	b.awaitRun(t, first.ID)

	settings, err := b.pool.SetConcurrentJobs(t.Context(), 2)
	if err != nil {
		t.Fatalf("SetConcurrentJobs: %v", err)
	}
	if settings.ConcurrentJobs != 2 || settings.RequestedConcurrentJobs != 2 || settings.MaxConcurrentJobs != 4 {
		t.Errorf("settings = %+v, want 2 in force, 2 requested, 4 max", settings)
	}
	// Raising the limit starts the waiting job at once.
	b.awaitRun(t, second.ID)

	third := b.submit(t, "c")
	got := b.job(t, third.ID)
	if got.State != pool.StateQueued {
		t.Errorf("third job is %s, want QUEUED", got.State)
	}
	if got.WaitingFor == nil || got.WaitingFor.Reason != pool.ReasonSlot || got.WaitingFor.BlockedBy != nil {
		t.Errorf("third job waits for %+v, want reason SLOT without blockedBy", got.WaitingFor)
	}
	if running := b.pool.Internals().Running; running != 2 {
		t.Errorf("running = %d, want 2", running)
	}
}

func TestLimitIsCappedAtMax(t *testing.T) {
	b := setup(t)
	settings, err := b.pool.SetConcurrentJobs(t.Context(), 64)
	if err != nil {
		t.Fatalf("SetConcurrentJobs: %v", err)
	}
	if settings.ConcurrentJobs != 4 {
		t.Errorf("ConcurrentJobs = %d, want the max 4", settings.ConcurrentJobs)
	}
	if settings.RequestedConcurrentJobs != 64 {
		t.Errorf("RequestedConcurrentJobs = %d, want 64", settings.RequestedConcurrentJobs)
	}
}

func TestSameLockJobsNeverOverlap(t *testing.T) {
	b := setup(t)
	b.setLimit(t, 2)
	first := b.submit(t, "x")
	second := b.submit(t, "x")
	firstRun := b.awaitRun(t, first.ID)

	blocked := b.job(t, second.ID)
	if blocked.State != pool.StateBlocked {
		t.Fatalf("second job is %s, want BLOCKED", blocked.State)
	}
	if blocked.WaitingFor == nil || blocked.WaitingFor.Reason != pool.ReasonProjectLock {
		t.Fatalf("second job waits for %+v, want PROJECT_LOCK", blocked.WaitingFor)
	}
	if blocked.WaitingFor.BlockedBy == nil || *blocked.WaitingFor.BlockedBy != first.ID {
		t.Errorf("blockedBy = %v, want %s", blocked.WaitingFor.BlockedBy, first.ID)
	}
	if got := b.pool.Internals().Running; got != 1 {
		t.Errorf("running = %d with a free slot, want 1", got)
	}

	firstRun.Complete(pool.Outcome{})
	b.awaitRun(t, second.ID)
	select {
	case <-firstRun.Returned():
	default:
		t.Error("second job started before the first job's run returned")
	}
}

func TestFreeLockJobPassesBlockedJob(t *testing.T) {
	b := setup(t)
	b.setLimit(t, 2)
	first := b.submit(t, "x")
	blocked := b.submit(t, "x")
	later := b.submit(t, "y")
	b.awaitRun(t, first.ID)
	b.awaitRun(t, later.ID)

	if got := b.job(t, blocked.ID).State; got != pool.StateBlocked {
		t.Errorf("blocked job is %s, want BLOCKED", got)
	}
	if got := b.job(t, later.ID).State; got != pool.StateRunning {
		t.Errorf("later job of a free lock is %s, want RUNNING", got)
	}
}

func TestBlockedByIsTheJobDirectlyAhead(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "x")
	second := b.submit(t, "x")
	third := b.submit(t, "x")
	b.awaitRun(t, first.ID)

	if got := b.job(t, third.ID).WaitingFor; got == nil || got.BlockedBy == nil || *got.BlockedBy != second.ID {
		t.Errorf("third job waits for %+v, want blockedBy the second job %s", got, second.ID)
	}
	if _, err := b.pool.StopJob(t.Context(), second.ID, "test", ""); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if got := b.job(t, third.ID).WaitingFor; got == nil || got.BlockedBy == nil || *got.BlockedBy != first.ID {
		t.Errorf("third job waits for %+v, want blockedBy the running job %s", got, first.ID)
	}
}

func TestBlockedHeadBecomesQueuedWhenLockFrees(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "x")
	second := b.submit(t, "x")
	other := b.submit(t, "y")
	run := b.awaitRun(t, first.ID)

	// The slot goes to the second job, the oldest runnable one, before
	// the older-waiting but later-submitted job of lock y.
	run.Complete(pool.Outcome{})
	b.awaitRun(t, second.ID)
	if got := b.job(t, other.ID).State; got != pool.StateQueued {
		t.Errorf("job of lock y is %s, want QUEUED", got)
	}
}

func TestQueueLimitRejectsSubmission(t *testing.T) {
	b := setup(t, func(cfg *pool.Config) { cfg.QueueLimit = 2 })
	running := b.submit(t, "a")
	b.awaitRun(t, running.ID)
	b.submit(t, "b")
	b.submit(t, "c")

	_, err := b.pool.Submit(t.Context(), pool.Submission{Project: "d"})
	var full *pool.QueueFullError
	if !errors.As(err, &full) {
		t.Fatalf("Submit past the limit returned %v, want *QueueFullError", err)
	}
	if full.Depth != 2 {
		t.Errorf("Depth = %d, want the 2 waiting jobs", full.Depth)
	}
	if full.Limit != 2 {
		t.Errorf("Limit = %d, want 2", full.Limit)
	}
	if full.RetryAfter < time.Second {
		t.Errorf("RetryAfter = %s, want at least 1s", full.RetryAfter)
	}
}

func TestLoweringLimitKillsNothing(t *testing.T) {
	b := setup(t)
	b.setLimit(t, 3)
	var runs []*pooltest.Run
	var ids []string
	for _, lock := range []string{"a", "b", "c"} {
		job := b.submit(t, lock)
		ids = append(ids, job.ID)
		runs = append(runs, b.awaitRun(t, job.ID))
	}
	waiting := b.submit(t, "d")

	b.setLimit(t, 1)
	for _, id := range ids {
		if got := b.job(t, id).State; got != pool.StateRunning {
			t.Errorf("job %s is %s after lowering the limit, want RUNNING", id, got)
		}
	}
	for i := range 2 {
		runs[i].Complete(pool.Outcome{})
		b.awaitFinal(t, ids[i])
		if got := b.job(t, waiting.ID).State; got != pool.StateQueued {
			t.Errorf("waiting job is %s with %d jobs running and limit 1, want QUEUED", got, 2-i)
		}
	}
	runs[2].Complete(pool.Outcome{})
	b.awaitRun(t, waiting.ID)
}

func TestSetConcurrentJobsRejectsZero(t *testing.T) {
	b := setup(t)
	_, err := b.pool.SetConcurrentJobs(t.Context(), 0)
	var invalid *pool.SettingsError
	if !errors.As(err, &invalid) {
		t.Fatalf("SetConcurrentJobs(0) returned %v, want *SettingsError", err)
	}
	if invalid.Field != "concurrentJobs" {
		t.Errorf("Field = %q, want concurrentJobs", invalid.Field)
	}
	if got := b.pool.Settings().RequestedConcurrentJobs; got != 1 {
		t.Errorf("RequestedConcurrentJobs = %d after a rejected change, want 1", got)
	}
}

func TestSettingsSurviveRestart(t *testing.T) {
	b := setup(t)
	b.setLimit(t, 3)
	if _, err := b.pool.UpdateSettings(t.Context(), pool.SettingsUpdate{QueueLimit: ptr(7)}); err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	b.pool.Stop()

	cfg := pool.Config{ConcurrentJobs: 2, MaxConcurrentJobs: 4, QueueLimit: 100}
	restarted := startPool(t, cfg, b.store, pooltest.NewRunner(), newFinalLog())
	settings := restarted.Settings()
	if settings.RequestedConcurrentJobs != 3 {
		t.Errorf("RequestedConcurrentJobs = %d after restart, want the stored 3", settings.RequestedConcurrentJobs)
	}
	if settings.QueueLimit != 7 {
		t.Errorf("QueueLimit = %d after restart, want the stored 7", settings.QueueLimit)
	}
}

func TestPositionAndEstimate(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "a")
	run := b.awaitRun(t, first.ID)
	second := b.submit(t, "b")
	third := b.submit(t, "c")

	if got := b.job(t, third.ID); got.Position == nil || *got.Position != 2 {
		t.Errorf("third job position = %v, want 2", got.Position)
	}
	if got := b.job(t, second.ID).EstimatedWaitMs; got != nil {
		t.Errorf("EstimatedWaitMs = %d before any job finished, want null", *got)
	}
	if got := b.job(t, first.ID).Position; got != nil {
		t.Errorf("running job position = %d, want null", *got)
	}

	run.Complete(pool.Outcome{})
	b.awaitRun(t, second.ID)
	estimate := b.job(t, third.ID).EstimatedWaitMs
	if estimate == nil {
		t.Fatal("EstimatedWaitMs is null after a job finished")
	}
	if *estimate < 0 {
		t.Errorf("EstimatedWaitMs = %d, want 0 or more", *estimate)
	}
	if got := b.job(t, third.ID).Position; got == nil || *got != 1 {
		t.Errorf("third job position = %v after one job started, want 1", got)
	}
}

func TestActiveJobIDs(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "x")
	second := b.submit(t, "x")
	b.submit(t, "y")
	third := b.submit(t, "x")
	b.awaitRun(t, first.ID)

	want := []string{first.ID, second.ID, third.ID}
	if got := b.pool.ActiveJobIDs("x"); !slices.Equal(got, want) {
		t.Errorf("ActiveJobIDs(x) = %v, want %v", got, want)
	}
	if got := b.pool.ActiveJobIDs("none"); len(got) != 0 {
		t.Errorf("ActiveJobIDs(none) = %v, want empty", got)
	}
}

func TestJobNotFound(t *testing.T) {
	b := setup(t)
	if _, err := b.pool.Job(t.Context(), "0193a1b2-0000-7000-8000-000000000000"); !errors.Is(err, pool.ErrJobNotFound) {
		t.Errorf("Job(unknown) returned %v, want ErrJobNotFound", err)
	}
}

func TestJobsListsNewestFirst(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "a")
	run := b.awaitRun(t, first.ID)
	second := b.submit(t, "b")
	third := b.submit(t, "a")
	run.Complete(pool.Outcome{})
	b.awaitFinal(t, first.ID)
	b.awaitRun(t, second.ID)

	jobs, total, err := b.pool.Jobs(t.Context(), pool.JobFilter{})
	if err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	if total != 3 {
		t.Errorf("total = %d, want 3", total)
	}
	if got := ids(jobs); !slices.Equal(got, []string{third.ID, second.ID, first.ID}) {
		t.Errorf("jobs = %v, want newest first", got)
	}
	if jobs[0].Position == nil {
		t.Error("waiting job in the list has no position")
	}

	jobs, total, err = b.pool.Jobs(t.Context(), pool.JobFilter{Project: "a", States: []pool.State{pool.StateCompleted}})
	if err != nil {
		t.Fatalf("Jobs(filtered): %v", err)
	}
	if total != 1 || len(jobs) != 1 || jobs[0].ID != first.ID {
		t.Errorf("completed jobs of a = %v (total %d), want only %s", ids(jobs), total, first.ID)
	}

	jobs, total, err = b.pool.Jobs(t.Context(), pool.JobFilter{Limit: 1, Offset: 1})
	if err != nil {
		t.Fatalf("Jobs(page): %v", err)
	}
	if total != 3 || !slices.Equal(ids(jobs), []string{second.ID}) {
		t.Errorf("page = %v (total %d), want [%s] of 3", ids(jobs), total, second.ID)
	}

	if _, _, err := b.pool.Jobs(t.Context(), pool.JobFilter{States: []pool.State{"DONE"}}); err == nil {
		t.Error("Jobs with an unknown state returned no error")
	}
}

func TestBlockUpdatesAreStored(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	rows := int64(3)
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockCompleted, RowsOut: &rows})
	run.Update(pool.BlockRun{Name: "save", Type: "csv.write", State: pool.BlockRunning})

	live := b.job(t, job.ID)
	if live.Blocks[0].State != pool.BlockCompleted || live.Blocks[1].State != pool.BlockRunning {
		t.Errorf("live blocks = %+v, want COMPLETED and RUNNING", live.Blocks)
	}
	stored, err := b.store.GetJob(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.Blocks[0].RowsOut == nil || *stored.Blocks[0].RowsOut != 3 {
		t.Errorf("stored load block = %+v, want rowsOut 3", stored.Blocks[0])
	}

	run.Update(pool.BlockRun{Name: "save", Type: "csv.write", State: pool.BlockCompleted})
	result := &pool.Result{Rows: []map[string]any{{"n": 1}}, Total: 1}
	run.Complete(pool.Outcome{Result: result, Outputs: []pool.Output{{Name: "out dir/a b.csv", Bytes: 5}}})
	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateCompleted {
		t.Fatalf("job ended %s, want COMPLETED", final.State)
	}
	if final.Blocks[1].State != pool.BlockCompleted {
		t.Errorf("save block = %s, want COMPLETED", final.Blocks[1].State)
	}
	if final.Result == nil || final.Result.Total != 1 {
		t.Errorf("result = %+v, want one row", final.Result)
	}
	wantURL := "/api/v1/jobs/" + job.ID + "/outputs/out%20dir/a%20b.csv"
	if len(final.Outputs) != 1 || final.Outputs[0].URL != wantURL {
		t.Errorf("outputs = %+v, want URL %s", final.Outputs, wantURL)
	}
	if final.StartedAt == nil || final.FinishedAt == nil {
		t.Errorf("startedAt = %v, finishedAt = %v, want both set", final.StartedAt, final.FinishedAt)
	}
}

func TestBlockUpdatesShareDelayedWrite(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	before := b.store.Writes()
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockRunning})
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockCompleted})
	run.Update(pool.BlockRun{Name: "save", Type: "csv.write", State: pool.BlockRunning})
	if got := b.store.Writes() - before; got != 1 {
		t.Errorf("three block updates made %d store writes, want 1 until the delayed write", got)
	}

	// The delayed write stores the latest blocks within a second.
	ctx := awaitContext(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		stored, err := b.store.GetJob(t.Context(), job.ID)
		if err != nil {
			t.Fatalf("GetJob: %v", err)
		}
		if stored.Blocks[1].State == pool.BlockRunning {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("stored blocks = %+v, want save RUNNING after the delayed write", stored.Blocks)
		}
	}
	if got := b.store.Writes() - before; got != 2 {
		t.Errorf("block updates made %d store writes, want 2", got)
	}
}

func TestRunnerGetsOutputDir(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	if got := filepath.Base(run.Job.OutputDir); got != job.ID {
		t.Errorf("output directory %q is not named after job %s", run.Job.OutputDir, job.ID)
	}
	// The runner creates the directory when it writes a file.
	if _, err := os.Stat(run.Job.OutputDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("output directory %q before any write: %v, want it not to exist", run.Job.OutputDir, err)
	}
	if got := run.Job.Parameters["year"]; got != any(json.Number("2014")) {
		t.Errorf("parameter year = %#v, want json.Number 2014", got)
	}
}

func TestSubmitStoreFailureQueuesNothing(t *testing.T) {
	b := setup(t)
	b.store.FailWrites(pooltest.ErrInjected)
	if _, err := b.pool.Submit(t.Context(), pool.Submission{Project: "a"}); !errors.Is(err, pooltest.ErrInjected) {
		t.Errorf("Submit returned %v, want the store's error", err)
	}
	if got := b.pool.Internals(); got.Waiting != 0 || got.Active != 0 {
		t.Errorf("internals = %+v after a failed submit, want nothing active", got)
	}
}

func TestStoreFailurePausesDispatchUntilNextEvent(t *testing.T) {
	b := setup(t)
	first := b.submit(t, "a")
	run := b.awaitRun(t, first.ID)
	second := b.submit(t, "b")

	// Every write fails: the first job's end and the second job's start
	// and failure cannot be stored, so the second job keeps waiting.
	b.store.FailWrites(pooltest.ErrInjected)
	run.Complete(pool.Outcome{})
	b.awaitFinal(t, first.ID)
	if got := b.job(t, second.ID).State; got != pool.StateQueued {
		t.Fatalf("second job is %s while the store fails, want QUEUED", got)
	}

	b.store.FailWrites(nil)
	b.submit(t, "c")
	b.awaitRun(t, second.ID)
}

func TestSubmitValidation(t *testing.T) {
	b := setup(t)
	for _, sub := range []pool.Submission{
		{},
		{Project: "a", Kind: "batch"},
		{Project: "a", Timeout: -time.Second},
		{Project: "a", Parameters: map[string]any{"f": func() {}}},
	} {
		if _, err := b.pool.Submit(t.Context(), sub); err == nil {
			t.Errorf("Submit(%+v) returned no error", sub)
		}
	}
}

func TestLockKeyDefaults(t *testing.T) {
	b := setup(t)
	instance := "instance-1"
	lambda, err := b.pool.Submit(t.Context(), pool.Submission{Project: "p", Kind: pool.KindLambda, Instance: &instance})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	execute, err := b.pool.Submit(t.Context(), pool.Submission{Project: "p"})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if got := b.pool.ActiveJobIDs(instance); !slices.Equal(got, []string{lambda.ID}) {
		t.Errorf("ActiveJobIDs(instance) = %v, want the lambda job", got)
	}
	if got := b.pool.ActiveJobIDs("p"); !slices.Equal(got, []string{execute.ID}) {
		t.Errorf("ActiveJobIDs(p) = %v, want the execute job", got)
	}
	if execute.Kind != pool.KindExecute {
		t.Errorf("Kind = %q, want the default execute", execute.Kind)
	}
}

func ids(jobs []*pool.Job) []string {
	out := make([]string, len(jobs))
	for i, job := range jobs {
		out[i] = job.ID
	}
	return out
}

func ptr[T any](v T) *T {
	return &v
}

func TestStartsShareWrites(t *testing.T) {
	b := setup(t, func(cfg *pool.Config) { cfg.ConcurrentJobs = 1 })
	before := b.store.Writes()
	first := b.submit(t, "a")
	run := b.awaitRun(t, first.ID)
	if got := b.store.Writes() - before; got != 1 {
		t.Errorf("a job that starts at once took %d store writes, want 1", got)
	}
	stored, err := b.store.GetJob(t.Context(), first.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.State != pool.StateRunning || stored.StartedAt == nil {
		t.Errorf("stored job is %s with startedAt %v, want RUNNING with a start", stored.State, stored.StartedAt)
	}

	second := b.submit(t, "b")
	before = b.store.Writes()
	run.Complete(pool.Outcome{})
	b.awaitFinal(t, first.ID)
	b.awaitRun(t, second.ID)
	if got := b.store.Writes() - before; got != 1 {
		t.Errorf("the end of a job and the start of the next took %d store writes, want 1", got)
	}
	stored, err = b.store.GetJob(t.Context(), second.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.State != pool.StateRunning || stored.StartedAt == nil {
		t.Errorf("stored next job is %s with startedAt %v, want RUNNING with a start", stored.State, stored.StartedAt)
	}
}
