package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// Causes of a run's context ending, read back with context.Cause.
var (
	errStopRequested = errors.New("job stopped on request")
	errJobTimeout    = errors.New("job timed out")
)

// panicError is a runner panic turned into an error.
type panicError struct {
	value any
}

func (e *panicError) Error() string {
	return fmt.Sprintf("runner panicked: %v", e.value)
}

// launchLocked starts the goroutine that runs aj, which holds a slot and
// its lock. The goroutine releases both exactly once, in finish.
func (p *Pool) launchLocked(aj *activeJob) {
	ctx, cancel := context.WithCancelCause(context.Background())
	aj.cancel = cancel
	job := aj.job.Clone()
	p.log.Debug("job started", "job_id", job.ID, "project", job.Project, "attempt", job.Attempt)

	p.runs.Add(1)
	go func() {
		defer p.runs.Done()
		defer cancel(nil)
		p.run(ctx, aj, job)
	}()
}

// run calls the runner with the job's timeout applied and then records
// how the job ended.
func (p *Pool) run(ctx context.Context, aj *activeJob, job *Job) {
	if job.TimeoutMs > 0 {
		timeout := time.Duration(job.TimeoutMs) * time.Millisecond
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errJobTimeout)
		defer cancel()
	}
	outcome, err := execute(ctx, p.cfg, p.runner, job, func(run BlockRun) { p.updateBlock(aj, run) }, p.log)
	p.finish(aj, outcome, err, context.Cause(ctx))
}

// execute names the job's output directory and calls runner, turning a
// panic into a *panicError.
func execute(ctx context.Context, cfg Config, runner Runner, job *Job, update func(BlockRun), log *slog.Logger) (outcome Outcome, err error) {
	if err := cfg.prepareOutputDir(job); err != nil {
		return Outcome{}, err
	}
	defer func() {
		if r := recover(); r != nil {
			log.Error("runner panicked", "job_id", job.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = &panicError{value: r}
		}
	}()
	return runner.Run(ctx, job, update)
}

// prepareOutputDir sets job.OutputDir to OutputRoot/<id>. The runner
// creates the directory when it writes the first file, because a mkdir
// costs as much as the rest of a trivial job. A second attempt starts
// without the directory, since the first one may have left partial files.
func (cfg Config) prepareOutputDir(job *Job) error {
	if cfg.OutputRoot == "" {
		return nil
	}
	dir := filepath.Join(cfg.OutputRoot, job.ID)
	if job.Attempt > 1 {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clearing output directory of attempt %d: %w", job.Attempt-1, err)
		}
	}
	job.OutputDir = dir
	return nil
}

// blockWriteInterval is the least time between two writes of a running
// job's block list alone. Readers see a running job's blocks from memory,
// and the job's final record stores them again, so the stored list only
// matters after a crash. It lags the live one by at most this interval.
const blockWriteInterval = time.Second

// updateBlock replaces the block run of the same name in the job's record
// and stores the block list, at once when the last such write is
// blockWriteInterval old and otherwise when it will be. A trivial job so
// writes its blocks once, not twice per block. Updates that arrive after
// the job ended are dropped.
func (p *Pool) updateBlock(aj *activeJob, run BlockRun) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if aj.ended {
		p.log.Warn("dropping block update that arrived after its job ended", "job_id", aj.job.ID, "block", run.Name)
		return
	}

	next := aj.job.Clone()
	next.Blocks = replaceBlock(next.Blocks, run)
	p.observeLocked(aj.job, next)
	aj.job = next
	if aj.blockWrite != nil {
		return // the pending write stores this update too
	}
	wait := blockWriteInterval - time.Since(aj.blocksStoredAt)
	if wait <= 0 {
		p.writeBlocksLocked(aj)
		return
	}
	// The job holds a run, so the count of runs is above zero and
	// Shutdown waits for this write as well.
	p.runs.Add(1)
	aj.blockWrite = time.AfterFunc(wait, func() {
		defer p.runs.Done()
		p.mu.Lock()
		defer p.mu.Unlock()
		aj.blockWrite = nil
		if !aj.ended {
			p.writeBlocksLocked(aj)
		}
	})
}

// writeBlocksLocked stores the block list of aj's job.
func (p *Pool) writeBlocksLocked(aj *activeJob) {
	aj.blocksStoredAt = time.Now()
	if err := p.store.UpdateBlocks(context.Background(), aj.job.ID, aj.job.Blocks); err != nil {
		// The update still shows in memory, and the job's final record
		// stores the blocks again.
		p.log.Error("storing block update failed", "job_id", aj.job.ID, "error", err)
	}
}

// cancelBlockWriteLocked drops the pending block write of a job that
// ended, whose final record holds the blocks.
func (p *Pool) cancelBlockWriteLocked(aj *activeJob) {
	if aj.blockWrite != nil && aj.blockWrite.Stop() {
		p.runs.Done()
	}
	aj.blockWrite = nil
}

// replaceBlock replaces the run named run.Name in blocks, which it owns,
// or appends run when no block has that name.
func replaceBlock(blocks []BlockRun, run BlockRun) []BlockRun {
	for i := range blocks {
		if blocks[i].Name == run.Name {
			blocks[i] = run
			return blocks
		}
	}
	return append(blocks, run)
}

// finish records the end of aj's run and releases its slot and lock. It
// is called exactly once per run.
func (p *Pool) finish(aj *activeJob, outcome Outcome, runErr, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()

	final := p.cfg.finalRecord(aj, outcome, runErr, cause)
	line := aj.line
	line.holder = nil
	changes := append([]change{{aj: aj, next: final}}, promotion(line.head)...)
	// The start of the job that takes the freed slot goes into the same
	// transaction as the end, which saves a transaction per job on a
	// busy pool.
	start := p.nextStartLocked(line, changes)
	if err := p.writeLocked(context.Background(), withStart(changes, start)); err != nil {
		start = nil
		final = p.writeEndAgainLocked(changes, err)
	}
	p.observeChangesLocked(changes)
	applyChanges(changes)

	aj.ended = true
	aj.cancel = nil
	p.cancelBlockWriteLocked(aj)
	delete(p.jobs, final.ID)
	p.running--
	p.refreshLineLocked(line)
	p.recordDurationLocked(final)
	p.logFinish(final)
	p.notifyFinalLocked(aj)
	if start != nil {
		p.runStartedLocked(start.aj, start.next)
	}
	p.dispatchLocked()
}

// writeEndAgainLocked stores changes, which end a job, after the write of
// changes with a start failed with err. It returns the final record it
// stored.
func (p *Pool) writeEndAgainLocked(changes []change, err error) *Job {
	final := changes[0].next
	p.log.Error("storing the end of a job failed", "job_id", final.ID, "state", final.State, "error", err)
	if err = p.writeLocked(context.Background(), changes); err == nil {
		return final
	}
	// A result the store cannot encode must not leave the job RUNNING:
	// store it FAILED without result. When that fails too, the slot and
	// lock are released anyway and the next Start recovers the job.
	original := final
	final = withoutResult(final, err)
	changes[0].next = final
	if err := p.writeLocked(context.Background(), changes); err != nil {
		// Both writes failed, so the store itself fails, not the result:
		// the job keeps its real end, which is retried until stored.
		p.log.Error("storing the failure of a job failed; retrying its end", "job_id", final.ID, "error", err)
		changes[0].next = original
		p.keepUnstoredLocked(original)
		return original
	}
	return final
}

// nextStartLocked returns the start of the job that dispatchLocked will
// start first once changes, which end the job holding line's lock, are
// applied, or nil when none will start. The lock of line is already
// released.
func (p *Pool) nextStartLocked(line *lockLine, changes []change) *change {
	if !p.started || p.closing || p.running-1 >= p.effectiveLimitLocked() {
		return nil
	}
	var next *activeJob
	if p.ready.Len() > 0 {
		next = p.ready[0].head
	}
	if line.head != nil && (next == nil || line.head.job.Seq < next.job.Seq) {
		next = line.head
	}
	if next == nil {
		return nil
	}
	current := next.job
	for _, c := range changes {
		if c.aj == next {
			current = c.next // the promotion to QUEUED
		}
	}
	return &change{aj: next, next: startedRecord(current)}
}

// withStart returns changes followed by start, when there is one, without
// changing changes.
func withStart(changes []change, start *change) []change {
	if start == nil {
		return changes
	}
	return append(changes[:len(changes):len(changes)], *start)
}

func (p *Pool) logFinish(job *Job) {
	if job.Error == nil {
		p.log.Debug("job finished", "job_id", job.ID, "state", job.State)
		return
	}
	p.log.Debug("job finished", "job_id", job.ID, "state", job.State, "error_type", job.Error.Type, "error", job.Error.Message)
}

// finalRecord returns the final record of aj's run that returned outcome
// and runErr, where cause is the cause of the run's context. The caller
// holds the lock that guards aj.
func (cfg Config) finalRecord(aj *activeJob, outcome Outcome, runErr, cause error) *Job {
	final := aj.job.Clone()
	final.FinishedAt = timestamp.Ptr(time.Now())
	final.Result = outcome.Result
	final.Outputs = cfg.outputsWithURLs(final.ID, outcome.Outputs)
	final.State, final.Error = endState(aj, runErr, cause)
	final.Blocks = settleBlocks(final.Blocks)
	return final
}

// endState maps how a run ended to the job's final state and error. An
// accepted stop always ends the job CANCELLED, even when the runner
// finished in the meantime, because the stop request already returned the
// job as CANCELLING.
func endState(aj *activeJob, runErr, cause error) (State, *JobError) {
	var panicErr *panicError
	var blockErr *BlockError
	switch {
	case aj.stopRequested:
		return StateCancelled, &JobError{Type: ErrorCancelled, Message: stopMessage(aj.job.Stop)}
	case runErr == nil:
		return StateCompleted, nil
	case errors.Is(cause, errJobTimeout):
		timeout := time.Duration(aj.job.TimeoutMs) * time.Millisecond
		return StateFailed, &JobError{Type: ErrorTimeout, Message: fmt.Sprintf("job timed out after %s", timeout)}
	case errors.As(runErr, &panicErr):
		return StateFailed, &JobError{Type: ErrorInternal, Message: panicErr.Error()}
	case errors.As(runErr, &blockErr):
		block := blockErr.Block
		return StateFailed, &JobError{Type: ErrorBlockFailed, Message: blockErr.Error(), Block: &block}
	default:
		return StateFailed, &JobError{Type: ErrorInternal, Message: runErr.Error()}
	}
}

// stopMessage describes a stop for JobError.Message.
func stopMessage(stop *StopRecord) string {
	if stop == nil {
		return "job stopped"
	}
	message := "job stopped by " + stop.By
	if stop.Reason != "" {
		message += ": " + stop.Reason
	}
	return message
}

// settleBlocks returns a copy of blocks for a job that has ended: blocks
// still PENDING become SKIPPED and blocks still RUNNING become CANCELLED.
// The runner normally reports those states itself, so this is a backstop.
func settleBlocks(blocks []BlockRun) []BlockRun {
	settled := append([]BlockRun(nil), blocks...)
	now := timestamp.Ptr(time.Now())
	for i := range settled {
		switch settled[i].State {
		case BlockPending:
			settled[i].State = BlockSkipped
		case BlockRunning:
			settled[i].State = BlockCancelled
			if settled[i].FinishedAt == nil {
				settled[i].FinishedAt = now
			}
		}
	}
	return settled
}

// outputsWithURLs returns a copy of outputs with every missing URL set to
// the job's download endpoint.
func (cfg Config) outputsWithURLs(id string, outputs []Output) []Output {
	result := make([]Output, len(outputs))
	for i, out := range outputs {
		if out.URL == "" {
			out.URL = cfg.BaseURL + outputPath(id, out.Name)
		}
		result[i] = out
	}
	return result
}

// outputPath returns the API path of a job's output file, escaping each
// segment of name.
func outputPath(id, name string) string {
	segments := strings.Split(name, "/")
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return "/api/v1/jobs/" + url.PathEscape(id) + "/outputs/" + strings.Join(segments, "/")
}

// withoutResult returns a copy of job FAILED with error type INTERNAL and
// no result or outputs, for when storing its end failed with err.
func withoutResult(job *Job, err error) *Job {
	failed := job.Clone()
	failed.State = StateFailed
	failed.Result = nil
	failed.Outputs = []Output{}
	failed.Error = &JobError{Type: ErrorInternal, Message: fmt.Sprintf("storing the job's end failed: %v", err)}
	return failed
}
