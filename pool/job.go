package pool

import (
	"encoding/json"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// State is the lifecycle state of a job.
type State string

// Job states. QUEUED, BLOCKED, RUNNING and CANCELLING are active; the other
// three are final and never change again.
const (
	StateQueued     State = "QUEUED"     // waiting for a slot
	StateBlocked    State = "BLOCKED"    // waiting because its lock is held
	StateRunning    State = "RUNNING"    // holds a slot and its lock
	StateCancelling State = "CANCELLING" // stop requested, blocks winding down
	StateCompleted  State = "COMPLETED"
	StateFailed     State = "FAILED"
	StateCancelled  State = "CANCELLED"
)

// Final reports whether s is a state a job never leaves.
func (s State) Final() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Waiting reports whether s is QUEUED or BLOCKED.
func (s State) Waiting() bool {
	return s == StateQueued || s == StateBlocked
}

// BlockState is the state of one block run inside a job.
type BlockState string

// Block run states.
const (
	BlockPending   BlockState = "PENDING"
	BlockRunning   BlockState = "RUNNING"
	BlockCompleted BlockState = "COMPLETED"
	BlockFailed    BlockState = "FAILED"
	BlockSkipped   BlockState = "SKIPPED"
	BlockCancelled BlockState = "CANCELLED"
)

// Kind is the way a job was requested.
type Kind string

// Job kinds.
const (
	KindExecute Kind = "execute" // the project itself
	KindLambda  Kind = "lambda"  // an ephemeral instance of the project
)

// Wait reasons for a job that has not started.
const (
	ReasonSlot        = "SLOT"         // every slot is taken
	ReasonProjectLock = "PROJECT_LOCK" // an earlier job of the same lock
)

// Error types of a failed or cancelled job.
const (
	ErrorBlockFailed = "BLOCK_FAILED" // a block returned an error
	ErrorTimeout     = "TIMEOUT"      // the job ran past its timeout
	ErrorInterrupted = "INTERRUPTED"  // the process died twice while it ran
	ErrorCancelled   = "CANCELLED"    // stopped on request
	ErrorInternal    = "INTERNAL"     // a panic or a storage failure
)

// Job is one run of a project, as stored and as the API shows it.
type Job struct {
	// ID is a UUIDv7 string.
	ID string `json:"id" format:"uuid"`
	// Project is the name of the project the job runs.
	Project string `json:"project"`
	// Instance is the ephemeral instance id of a lambda job, else null.
	Instance *string `json:"instance" format:"uuid" extensions:"x-nullable"`
	// Kind is "execute" or "lambda".
	Kind Kind `json:"kind"`
	// State is the job's lifecycle state.
	State State `json:"state"`
	// Attempt counts starts: 1, or 2 after a restart re-queued the job.
	Attempt int `json:"attempt"`
	// Parameters are the typed values the job runs with.
	Parameters map[string]any `json:"parameters"`
	// SubmittedAt, StartedAt and FinishedAt are RFC 3339 UTC timestamps.
	SubmittedAt timestamp.Time  `json:"submittedAt" swaggertype:"string" format:"date-time"`
	StartedAt   *timestamp.Time `json:"startedAt" swaggertype:"string" format:"date-time" extensions:"x-nullable"`
	FinishedAt  *timestamp.Time `json:"finishedAt" swaggertype:"string" format:"date-time" extensions:"x-nullable"`
	// WaitingFor is the reason a QUEUED or BLOCKED job waits, else null.
	WaitingFor *WaitingFor `json:"waitingFor" extensions:"x-nullable"`
	// Position is the 1-based place of a waiting job among all waiting
	// jobs in submission order, else null.
	Position *int `json:"position" extensions:"x-nullable"`
	// EstimatedWaitMs estimates how long a waiting job still waits for a
	// slot, from the mean duration of recent jobs; null when unknown.
	EstimatedWaitMs *int64 `json:"estimatedWaitMs" extensions:"x-nullable"`
	// Blocks lists the block runs in definition order.
	Blocks []BlockRun `json:"blocks"`
	// Error describes why the job failed or was cancelled, else null.
	Error *JobError `json:"error" extensions:"x-nullable"`
	// Result holds the rows of the project's result block, capped.
	Result *Result `json:"result" extensions:"x-nullable"`
	// Outputs lists the files written by the job's writing blocks.
	Outputs []Output `json:"outputs"`
	// Stop records who stopped the job and why, else null.
	Stop *StopRecord `json:"stop" extensions:"x-nullable"`
	// TimeoutMs is the job's run time limit in milliseconds, or 0 for no limit.
	TimeoutMs int64 `json:"timeoutMs"`
	// Node names the cluster node that runs or ran the job, when nodes
	// share a PostgreSQL database; else null.
	Node *string `json:"node" extensions:"x-nullable"`

	// Seq is the submission sequence number; it orders the queue.
	Seq int64 `json:"-"`
	// LockKey names the lock the job takes: the project name for an
	// execute job, the instance id for a lambda job.
	LockKey string `json:"-"`
	// Definition is the snapshot of the definition the job runs.
	Definition json.RawMessage `json:"-"`
	// Only, when set, limits the run to these blocks and what they need.
	Only []string `json:"-"`
	// OutputDir is the job's own directory for writing blocks,
	// Config.OutputRoot/<id>. The pool sets this field on the copy it
	// passes to Runner.Run, and the runner creates the directory when it
	// writes the first file. It is empty everywhere else.
	OutputDir string `json:"-"`
}

// Clone returns a copy of j that can be changed without affecting j. The
// slices, the parameter map and the job's own pointer fields are copied.
// Values nested inside Parameters, Result rows and BlockRun pointer fields
// are shared and must be treated as read-only.
func (j *Job) Clone() *Job {
	c := *j
	c.Instance = clonePtr(j.Instance)
	c.StartedAt = clonePtr(j.StartedAt)
	c.FinishedAt = clonePtr(j.FinishedAt)
	c.Position = clonePtr(j.Position)
	c.EstimatedWaitMs = clonePtr(j.EstimatedWaitMs)
	c.Stop = clonePtr(j.Stop)
	c.Node = clonePtr(j.Node)

	if j.WaitingFor != nil {
		w := *j.WaitingFor
		w.BlockedBy = clonePtr(j.WaitingFor.BlockedBy)
		c.WaitingFor = &w
	}
	if j.Error != nil {
		e := *j.Error
		e.Block = clonePtr(j.Error.Block)
		c.Error = &e
	}
	if j.Result != nil {
		r := *j.Result
		r.Rows = append([]map[string]any(nil), j.Result.Rows...)
		c.Result = &r
	}

	if j.Parameters != nil {
		c.Parameters = make(map[string]any, len(j.Parameters))
		for k, v := range j.Parameters {
			c.Parameters[k] = v
		}
	}

	c.Blocks = append([]BlockRun(nil), j.Blocks...)
	c.Outputs = append([]Output(nil), j.Outputs...)
	c.Definition = append(json.RawMessage(nil), j.Definition...)
	c.Only = append([]string(nil), j.Only...)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// WaitingFor is the reason a job has not started.
type WaitingFor struct {
	// Reason is SLOT or PROJECT_LOCK.
	Reason string `json:"reason" enums:"SLOT,PROJECT_LOCK"`
	// BlockedBy is the id of the job ahead of this one on the same lock,
	// set when Reason is PROJECT_LOCK.
	BlockedBy *string `json:"blockedBy" format:"uuid" extensions:"x-nullable"`
}

// BlockRun is the record of one block inside a job.
type BlockRun struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	State      BlockState      `json:"state"`
	StartedAt  *timestamp.Time `json:"startedAt" swaggertype:"string" format:"date-time" extensions:"x-nullable"`
	FinishedAt *timestamp.Time `json:"finishedAt" swaggertype:"string" format:"date-time" extensions:"x-nullable"`
	// DurationMs is the run time in milliseconds once the block ended.
	DurationMs *int64 `json:"durationMs" extensions:"x-nullable"`
	// RowsIn counts the rows of all inputs; RowsOut the rows produced.
	RowsIn  *int64  `json:"rowsIn" extensions:"x-nullable"`
	RowsOut *int64  `json:"rowsOut" extensions:"x-nullable"`
	Error   *string `json:"error" extensions:"x-nullable"`
}

// JobError describes how a job failed.
type JobError struct {
	// Type is BLOCK_FAILED, TIMEOUT, INTERRUPTED, CANCELLED or INTERNAL.
	Type string `json:"type" enums:"BLOCK_FAILED,TIMEOUT,INTERRUPTED,CANCELLED,INTERNAL"`
	// Message is a sentence for people.
	Message string `json:"message"`
	// Block names the failing block, when one failed.
	Block *string `json:"block,omitempty"`
}

// Result holds the rows of a job's result block.
type Result struct {
	Rows []map[string]any `json:"rows"`
	// Total counts all rows of the result block, returned or not.
	Total int `json:"total"`
	// Truncated is true when Rows holds fewer than Total rows.
	Truncated bool `json:"truncated"`
}

// Output is a file a job wrote into its output directory.
type Output struct {
	// Name is the path relative to the job's output directory.
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	// URL downloads the file.
	URL string `json:"url"`
}

// StopRecord records a stop request.
type StopRecord struct {
	By     string         `json:"by"`
	Reason string         `json:"reason"`
	At     timestamp.Time `json:"at" swaggertype:"string" format:"date-time"`
}

// Submission is a request to queue a job.
type Submission struct {
	Project    string
	Instance   *string
	Kind       Kind
	LockKey    string
	Parameters map[string]any
	Definition json.RawMessage
	Blocks     []BlockRun
	Only       []string
	Timeout    time.Duration
}
