package pool

import (
	"context"
)

// Runner runs the blocks of one job. The pool calls Run once per start of
// a job, in a goroutine the pool owns, with a context that is cancelled
// when the job is stopped, times out or the pool shuts down.
type Runner interface {
	// Run executes job and returns what it produced. It calls update
	// whenever a block run changes state; update is safe for concurrent
	// use. Run returns ctx's error (or one wrapping it) when ctx ends
	// first, and a *BlockError when a block fails.
	Run(ctx context.Context, job *Job, update func(BlockRun)) (Outcome, error)
}

// Outcome is the product of a finished run.
type Outcome struct {
	// Result holds the rows of the result block; nil when the project
	// names none or the block did not run.
	Result *Result
	// Outputs lists the files the run wrote.
	Outputs []Output
}

// BlockError reports that a block failed and so failed the job.
type BlockError struct {
	Block string
	Err   error
}

// Error returns the block name and its error.
func (e *BlockError) Error() string {
	return "block " + e.Block + ": " + e.Err.Error()
}

// Unwrap returns the block's error.
func (e *BlockError) Unwrap() error {
	return e.Err
}
