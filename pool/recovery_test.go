package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// Environment variables that turn the test binary into the crash helper
// process: the database path, and whether to submit jobs.
const (
	crashHelperEnv = "LAMBDAFLOW_POOL_CRASH_DB"
	crashSubmitEnv = "LAMBDAFLOW_POOL_CRASH_SUBMIT"
)

// runCrashHelper runs in a child process. It starts a pool on the SQLite
// database at path, submits two jobs of lock x when asked, prints
// "RUNNING <id> <attempt>" when a job runs, and then blocks until the
// parent kills it. It returns the process exit code.
func runCrashHelper(path string) int {
	ctx := context.Background()
	db, err := database.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	runner := announcingRunner{submitted: make(chan struct{})}
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 1}, pool.NewSQLStore(db), runner)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := p.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv(crashSubmitEnv) != "" {
		for range 2 {
			if _, err := p.Submit(ctx, pool.Submission{Project: "x", Blocks: []pool.BlockRun{{Name: "load", Type: "csv.read"}}}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
	}
	close(runner.submitted)
	// Reading stdin blocks until the parent kills the process, without
	// tripping the runtime's deadlock detector.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 1
}

// announcingRunner prints each job it runs and blocks until cancelled. It
// prints only once every job is submitted, so that the parent kills the
// process after the submissions are stored.
type announcingRunner struct {
	submitted chan struct{}
}

func (r announcingRunner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	select {
	case <-r.submitted:
	case <-ctx.Done():
		return pool.Outcome{}, ctx.Err()
	}
	update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockRunning, StartedAt: timestamp.Ptr(time.Now())})
	fmt.Printf("RUNNING %s %d\n", job.ID, job.Attempt)
	<-ctx.Done()
	return pool.Outcome{}, ctx.Err()
}

// crashWhileRunning runs the helper process until it reports a running
// job, kills it with SIGKILL, and returns the job's id and attempt.
func crashWhileRunning(t *testing.T, path string, submit bool) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(awaitContext(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
	if submit {
		cmd.Env = append(cmd.Env, crashSubmitEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting helper process: %v", err)
	}

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if killErr := cmd.Process.Kill(); killErr != nil {
		t.Errorf("killing helper process: %v", killErr)
	}
	_ = cmd.Wait()
	if err != nil {
		t.Fatalf("helper process printed no running job: %v", err)
	}
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "RUNNING" {
		t.Fatalf("helper process printed %q, want RUNNING <id> <attempt>", line)
	}
	attempt, err := strconv.Atoi(fields[2])
	if err != nil {
		t.Fatalf("helper process printed attempt %q: %v", fields[2], err)
	}
	return fields[1], attempt
}

func openDatabase(t *testing.T, path string) *database.DB {
	t.Helper()
	db, err := database.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("opening database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCrashRequeuesRunningJobOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lambdaflow.db")

	id, attempt := crashWhileRunning(t, path, true)
	if attempt != 1 {
		t.Fatalf("first run is attempt %d, want 1", attempt)
	}
	again, attempt := crashWhileRunning(t, path, false)
	if again != id || attempt != 2 {
		t.Fatalf("after the first crash job %s ran as attempt %d, want job %s as attempt 2", again, attempt, id)
	}

	store := pool.NewSQLStore(openDatabase(t, path))
	runner := pooltest.NewRunner()
	p := startPool(t, pool.Config{MaxConcurrentJobs: 1}, store, runner, newFinalLog())
	job, err := p.Job(t.Context(), id)
	if err != nil {
		t.Fatalf("Job: %v", err)
	}
	if job.State != pool.StateFailed || job.Error == nil || job.Error.Type != pool.ErrorInterrupted {
		t.Errorf("job after the second crash is %s with %+v, want FAILED INTERRUPTED", job.State, job.Error)
	}
	if job.Blocks[0].State != pool.BlockCancelled {
		t.Errorf("block that was running is %s, want CANCELLED", job.Blocks[0].State)
	}
	// The second job of lock x, blocked until now, runs next.
	run, err := runner.Next(awaitContext(t))
	if err != nil {
		t.Fatalf("waiting for the second job: %v", err)
	}
	if run.Job.ID == id {
		t.Errorf("the interrupted job ran a third time")
	}
}

func TestRestartKeepsQueueOrder(t *testing.T) {
	databasetest.Run(t, testRestartKeepsQueueOrder)
}

func testRestartKeepsQueueOrder(t *testing.T, db *database.DB) {
	store := pool.NewSQLStore(db)
	cfg := pool.Config{MaxConcurrentJobs: 4}
	firstRunner := pooltest.NewRunner()
	first := startPool(t, cfg, store, firstRunner, newFinalLog())
	running := submitTo(t, first, "x", 0)
	if _, err := firstRunner.Await(awaitContext(t), running.ID); err != nil {
		t.Fatalf("waiting for the first job: %v", err)
	}
	var want []string
	for _, lock := range []string{"y", "x", "z"} {
		want = append(want, submitTo(t, first, lock, 0).ID)
	}
	first.Stop()

	runner := pooltest.NewRunner()
	finals := newFinalLog()
	second := startPool(t, cfg, store, runner, finals)
	cancelled, err := second.Job(t.Context(), running.ID)
	if err != nil {
		t.Fatalf("Job: %v", err)
	}
	if cancelled.State != pool.StateCancelled {
		t.Errorf("job running at shutdown is %s, want CANCELLED", cancelled.State)
	}
	for i, id := range want {
		run, err := runner.Next(awaitContext(t))
		if err != nil {
			t.Fatalf("waiting for run %d: %v", i, err)
		}
		if run.Job.ID != id {
			t.Fatalf("run %d after restart is %s, want %s", i, run.Job.ID, id)
		}
		run.Complete(pool.Outcome{})
		if _, err := finals.await(awaitContext(t), id); err != nil {
			t.Fatalf("waiting for job %s: %v", id, err)
		}
	}
}

// storedJob returns a job record as it would be in the store.
func storedJob(seq int64, lock string, state pool.State, attempt int) *pool.Job {
	return &pool.Job{
		ID:          uuid.NewString(),
		Project:     lock,
		Kind:        pool.KindExecute,
		State:       state,
		Attempt:     attempt,
		Parameters:  map[string]any{},
		SubmittedAt: timestamp.Now(),
		Blocks: []pool.BlockRun{
			{Name: "load", Type: "csv.read", State: pool.BlockPending},
			{Name: "save", Type: "csv.write", State: pool.BlockPending},
		},
		Seq:     seq,
		LockKey: lock,
	}
}

func TestRecoveryOfStoredStates(t *testing.T) {
	databasetest.Run(t, testRecoveryOfStoredStates)
}

func testRecoveryOfStoredStates(t *testing.T, db *database.DB) {
	store := pool.NewSQLStore(db)
	running := storedJob(1, "x", pool.StateRunning, 1)
	running.StartedAt = timestamp.Ptr(time.Now())
	running.Blocks[0].State = pool.BlockCompleted
	running.Blocks[1].State = pool.BlockRunning
	queued := storedJob(2, "y", pool.StateQueued, 1)
	blocked := storedJob(3, "x", pool.StateBlocked, 1)
	cancelling := storedJob(4, "z", pool.StateCancelling, 1)
	cancelling.Stop = &pool.StopRecord{By: "alice", Reason: "typo", At: timestamp.Now()}
	secondAttempt := storedJob(5, "w", pool.StateRunning, 2)
	completed := storedJob(6, "v", pool.StateCompleted, 1)
	for _, job := range []*pool.Job{running, queued, blocked, cancelling, secondAttempt, completed} {
		if err := store.InsertJob(t.Context(), job); err != nil {
			t.Fatalf("InsertJob: %v", err)
		}
	}

	b := &bundle{store: nil, runner: pooltest.NewRunner(), finals: newFinalLog()}
	b.pool = startPool(t, pool.Config{MaxConcurrentJobs: 4}, store, b.runner, b.finals)

	run := b.awaitRun(t, running.ID)
	if run.Job.Attempt != 2 {
		t.Errorf("re-queued job runs as attempt %d, want 2", run.Job.Attempt)
	}
	for _, block := range run.Job.Blocks {
		if block.State != pool.BlockPending {
			t.Errorf("block %s of the re-queued job is %s, want PENDING", block.Name, block.State)
		}
	}
	if got := b.job(t, blocked.ID).WaitingFor; got == nil || got.BlockedBy == nil || *got.BlockedBy != running.ID {
		t.Errorf("blocked job waits for %+v, want blockedBy %s", got, running.ID)
	}
	if got := b.job(t, queued.ID); got.State != pool.StateQueued || got.Position == nil || *got.Position != 1 {
		t.Errorf("queued job is %s at position %v, want QUEUED at 1", got.State, got.Position)
	}
	if got := b.job(t, cancelling.ID); got.State != pool.StateCancelled || got.Error == nil || got.Error.Type != pool.ErrorCancelled {
		t.Errorf("cancelling job is %s with %+v, want CANCELLED", got.State, got.Error)
	}
	if got := b.job(t, secondAttempt.ID); got.State != pool.StateFailed || got.Error == nil || got.Error.Type != pool.ErrorInterrupted {
		t.Errorf("second-attempt job is %s with %+v, want FAILED INTERRUPTED", got.State, got.Error)
	}

	next := submitTo(t, b.pool, "u", 0)
	stored, err := store.GetJob(t.Context(), next.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.Seq != 7 {
		t.Errorf("new job has Seq %d, want 7 after the stored maximum 6", stored.Seq)
	}

	// The re-queued job kept its place ahead of the queued one.
	run.Complete(pool.Outcome{})
	b.awaitRun(t, queued.ID)
}
