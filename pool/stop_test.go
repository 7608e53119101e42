package pool_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
)

func TestStopQueuedJob(t *testing.T) {
	b := setup(t)
	running := b.submit(t, "a")
	run := b.awaitRun(t, running.ID)
	queued := b.submit(t, "b")

	stopped, err := b.pool.StopJob(t.Context(), queued.ID, "alice", "wrong year")
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if stopped.State != pool.StateCancelled {
		t.Errorf("state = %s, want CANCELLED", stopped.State)
	}
	if stopped.Stop == nil || stopped.Stop.By != "alice" || stopped.Stop.Reason != "wrong year" {
		t.Errorf("stop record = %+v, want by alice for wrong year", stopped.Stop)
	}
	if stopped.Error == nil || stopped.Error.Type != pool.ErrorCancelled {
		t.Errorf("error = %+v, want type CANCELLED", stopped.Error)
	}
	for _, block := range stopped.Blocks {
		if block.State != pool.BlockSkipped {
			t.Errorf("block %s is %s, want SKIPPED", block.Name, block.State)
		}
	}
	if stopped.WaitingFor != nil || stopped.Position != nil {
		t.Errorf("cancelled job still shows waitingFor %+v, position %v", stopped.WaitingFor, stopped.Position)
	}
	stored, err := b.store.GetJob(t.Context(), queued.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.State != pool.StateCancelled || stored.Stop == nil {
		t.Errorf("stored job is %s with stop %+v, want CANCELLED with a stop record", stored.State, stored.Stop)
	}

	// The cancelled job never runs.
	next := b.submit(t, "c")
	run.Complete(pool.Outcome{})
	b.awaitRun(t, next.ID)
	if slices.Contains(b.runner.Calls(), queued.ID) {
		t.Error("the cancelled job ran")
	}
}

func TestStopBlockedJob(t *testing.T) {
	b := setup(t)
	running := b.submit(t, "x")
	b.awaitRun(t, running.ID)
	blocked := b.submit(t, "x")

	stopped, err := b.pool.StopJob(t.Context(), blocked.ID, "bob", "")
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if stopped.State != pool.StateCancelled {
		t.Errorf("state = %s, want CANCELLED", stopped.State)
	}
	if stopped.Error == nil || stopped.Error.Message != "job stopped by bob" {
		t.Errorf("error = %+v, want the message naming bob", stopped.Error)
	}
	if got := b.pool.ActiveJobIDs("x"); !slices.Equal(got, []string{running.ID}) {
		t.Errorf("ActiveJobIDs(x) = %v, want only the running job", got)
	}
}

func TestStopQueuedHeadPromotesNextJob(t *testing.T) {
	b := setup(t)
	running := b.submit(t, "z")
	b.awaitRun(t, running.ID)
	head := b.submit(t, "x")
	behind := b.submit(t, "x")
	if got := b.job(t, behind.ID).State; got != pool.StateBlocked {
		t.Fatalf("second job of x is %s, want BLOCKED", got)
	}

	if _, err := b.pool.StopJob(t.Context(), head.ID, "test", ""); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	live := b.job(t, behind.ID)
	if live.State != pool.StateQueued {
		t.Errorf("next job of x is %s, want QUEUED", live.State)
	}
	if live.WaitingFor == nil || live.WaitingFor.Reason != pool.ReasonSlot {
		t.Errorf("next job waits for %+v, want SLOT", live.WaitingFor)
	}
	stored, err := b.store.GetJob(t.Context(), behind.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.State != pool.StateQueued {
		t.Errorf("stored state of the next job = %s, want QUEUED", stored.State)
	}
}

func TestStopRunningJob(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	waiting := b.submit(t, "b")
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockRunning})

	stopping, err := b.pool.StopJob(t.Context(), job.ID, "carol", "too slow")
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if stopping.State != pool.StateCancelling {
		t.Errorf("state right after the stop = %s, want CANCELLING", stopping.State)
	}
	if run.Context().Err() == nil {
		t.Error("the run's context was not cancelled")
	}

	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateCancelled {
		t.Fatalf("job ended %s, want CANCELLED", final.State)
	}
	if final.Error == nil || final.Error.Type != pool.ErrorCancelled || final.Error.Message != "job stopped by carol: too slow" {
		t.Errorf("error = %+v, want CANCELLED by carol", final.Error)
	}
	if final.Stop == nil || final.Stop.By != "carol" {
		t.Errorf("stop record = %+v, want by carol", final.Stop)
	}
	if final.Blocks[0].State != pool.BlockCancelled {
		t.Errorf("running block ended %s, want CANCELLED", final.Blocks[0].State)
	}
	if final.Blocks[1].State != pool.BlockSkipped {
		t.Errorf("pending block ended %s, want SKIPPED", final.Blocks[1].State)
	}
	// The slot is free again.
	b.awaitRun(t, waiting.ID)
}

func TestStopCancellingJobAgain(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	run.HoldAfterCancel()

	if _, err := b.pool.StopJob(t.Context(), job.ID, "first", "one"); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	again, err := b.pool.StopJob(t.Context(), job.ID, "second", "two")
	if err != nil {
		t.Fatalf("second StopJob: %v", err)
	}
	if again.State != pool.StateCancelling {
		t.Errorf("state = %s, want CANCELLING", again.State)
	}
	if again.Stop == nil || again.Stop.By != "first" {
		t.Errorf("stop record = %+v, want the first stop kept", again.Stop)
	}

	// A stopped job ends CANCELLED even when its runner completes.
	run.Complete(pool.Outcome{})
	if got := b.awaitFinal(t, job.ID).State; got != pool.StateCancelled {
		t.Errorf("job ended %s, want CANCELLED", got)
	}
}

func TestStopFinishedJob(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	b.awaitRun(t, job.ID).Complete(pool.Outcome{})
	b.awaitFinal(t, job.ID)
	writes := b.store.Writes()

	if _, err := b.pool.StopJob(t.Context(), job.ID, "dave", ""); !errors.Is(err, pool.ErrJobFinished) {
		t.Fatalf("StopJob returned %v, want ErrJobFinished", err)
	}
	stored, err := b.store.GetJob(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if stored.State != pool.StateCompleted || stored.Stop != nil || stored.Error != nil {
		t.Errorf("stored job = %s, stop %+v, error %+v; want COMPLETED unchanged", stored.State, stored.Stop, stored.Error)
	}
	if got := b.store.Writes(); got != writes {
		t.Errorf("store writes went from %d to %d, want no write", writes, got)
	}
}

func TestStopUnknownJob(t *testing.T) {
	b := setup(t)
	if _, err := b.pool.StopJob(t.Context(), "no-such-job", "eve", ""); !errors.Is(err, pool.ErrJobNotFound) {
		t.Errorf("StopJob returned %v, want ErrJobNotFound", err)
	}
}

func TestTimeoutFailsJob(t *testing.T) {
	b := setup(t)
	job := submitTo(t, b.pool, "a", 20*time.Millisecond)
	if job.TimeoutMs != 20 {
		t.Errorf("TimeoutMs = %d, want 20", job.TimeoutMs)
	}
	// The test runner returns the context's error once the deadline passes.
	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateFailed {
		t.Fatalf("job ended %s, want FAILED", final.State)
	}
	if final.Error == nil || final.Error.Type != pool.ErrorTimeout {
		t.Errorf("error = %+v, want type TIMEOUT", final.Error)
	}
}

func TestRunnerPanicFailsJob(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	next := b.submit(t, "b")

	run.Panic("index out of range")
	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateFailed {
		t.Fatalf("job ended %s, want FAILED", final.State)
	}
	if final.Error == nil || final.Error.Type != pool.ErrorInternal {
		t.Errorf("error = %+v, want type INTERNAL", final.Error)
	}
	b.logs.await(t, "runner panicked")
	// The panicking job's slot is free again.
	b.awaitRun(t, next.ID)
}

func TestBlockErrorFailsJob(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	message := "row 3: field year is not a number"
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockFailed, Error: &message})
	run.Fail(&pool.BlockError{Block: "load", Err: errors.New(message)})

	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateFailed {
		t.Fatalf("job ended %s, want FAILED", final.State)
	}
	if final.Error == nil || final.Error.Type != pool.ErrorBlockFailed {
		t.Fatalf("error = %+v, want type BLOCK_FAILED", final.Error)
	}
	if final.Error.Block == nil || *final.Error.Block != "load" {
		t.Errorf("error block = %v, want load", final.Error.Block)
	}
	if final.Blocks[1].State != pool.BlockSkipped {
		t.Errorf("block after the failed one is %s, want SKIPPED", final.Blocks[1].State)
	}
}

func TestRunnerErrorFailsJobAsInternal(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	b.awaitRun(t, job.ID).Fail(errors.New("definition snapshot is invalid"))

	final := b.awaitFinal(t, job.ID)
	if final.State != pool.StateFailed || final.Error == nil || final.Error.Type != pool.ErrorInternal {
		t.Errorf("job ended %s with %+v, want FAILED INTERNAL", final.State, final.Error)
	}
}

func TestJobEndsExactlyOnce(t *testing.T) {
	b := setup(t)
	job := b.submit(t, "a")
	run := b.awaitRun(t, job.ID)
	run.HoldAfterCancel()
	if _, err := b.pool.StopJob(t.Context(), job.ID, "test", ""); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	run.Fail(errors.New("late failure"))
	b.awaitFinal(t, job.ID)
	<-run.Returned()

	// A late update from the runner is dropped, not applied to the ended
	// job.
	run.Update(pool.BlockRun{Name: "load", State: pool.BlockCompleted})
	if got := b.finals.count(job.ID); got != 1 {
		t.Errorf("job ended %d times, want 1", got)
	}
	if got := b.pool.Internals(); got.Running != 0 || got.Lines != 0 {
		t.Errorf("internals = %+v, want no running job and no held lock", got)
	}
}

func TestTimeoutRoundsUpToMillisecond(t *testing.T) {
	b := setup(t)
	job := submitTo(t, b.pool, "a", 500*time.Microsecond)
	if job.TimeoutMs != 1 {
		t.Errorf("TimeoutMs = %d for 500µs, want 1", job.TimeoutMs)
	}
	if got := b.awaitFinal(t, job.ID); got.Error == nil || got.Error.Type != pool.ErrorTimeout {
		t.Errorf("job ended %s with %+v, want FAILED TIMEOUT", got.State, got.Error)
	}
}
