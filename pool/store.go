package pool

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store persists jobs and pool settings. The pool keeps its scheduling
// state in memory and writes every job transition through a Store before
// the transition becomes visible. Each scheduling decision is one call,
// and so one transaction, which is what lets a PostgreSQL backend stand
// beside the SQLite one.
//
// Implementations must be safe for concurrent use. The pool serialises its
// own writes, but reads may run at the same time as writes.
type Store interface {
	// InsertJob stores a new job. Its ID and Seq are unique. The job is
	// QUEUED or BLOCKED, or RUNNING with StartedAt set when it starts at
	// once, so every field may hold a value.
	InsertJob(ctx context.Context, job *Job) error
	// UpdateJobs replaces the stored records of the given jobs, which
	// must exist, in one transaction: all are written or none. The fields
	// set at submission (ID, Seq, Project, Instance, Kind, LockKey,
	// TimeoutMs, Parameters, Definition, Only, SubmittedAt) never change,
	// so an implementation may leave them as inserted. One job may appear
	// more than once, such as promoted to QUEUED and then RUNNING, and the
	// records are written in order, so the last one is stored.
	UpdateJobs(ctx context.Context, jobs ...*Job) error
	// UpdateBlocks replaces the block runs of the job with the given id.
	UpdateBlocks(ctx context.Context, id string, blocks []BlockRun) error
	// GetJob returns the stored job, or an error wrapping ErrJobNotFound.
	GetJob(ctx context.Context, id string) (*Job, error)
	// ListJobs returns the jobs that match filter, newest (highest Seq)
	// first, and the number of all matching jobs ignoring Limit and
	// Offset. A Limit of 0 returns every match.
	ListJobs(ctx context.Context, filter JobFilter) ([]*Job, int, error)
	// ActiveJobs returns every job in an active state (QUEUED, BLOCKED,
	// RUNNING or CANCELLING) in Seq order.
	ActiveJobs(ctx context.Context) ([]*Job, error)
	// MaxSeq returns the highest Seq ever stored, or 0 for none.
	MaxSeq(ctx context.Context) (int64, error)
	// LoadSetting returns the value stored under key and whether one is.
	LoadSetting(ctx context.Context, key string) (string, bool, error)
	// SaveSettings stores every key and value in one transaction.
	SaveSettings(ctx context.Context, values map[string]string) error
}

// JobFilter selects jobs for Pool.Jobs and Store.ListJobs.
type JobFilter struct {
	// States keeps the jobs in any of these states. Empty keeps all.
	States []State
	// Project keeps the jobs of this project. Empty keeps all.
	Project string
	// Limit is the maximum number of jobs returned. Pool.Jobs treats 0
	// as DefaultListLimit and caps it at MaxListLimit.
	Limit int
	// Offset skips that many jobs of the newest-first order.
	Offset int
}

// Limits of Pool.Jobs and GET /jobs.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

var (
	// ErrJobNotFound means no job has the requested id.
	ErrJobNotFound = errors.New("job not found")
	// ErrJobFinished means the job is COMPLETED, FAILED or CANCELLED, so
	// the request cannot change it.
	ErrJobFinished = errors.New("job has already finished")
	// ErrClosed means the pool is shutting down and accepts no new jobs.
	ErrClosed = errors.New("pool is shutting down")
)

// QueueFullError rejects a submission because QueueLimit jobs already
// wait.
type QueueFullError struct {
	// Depth is the number of waiting (QUEUED or BLOCKED) jobs.
	Depth int
	// Limit is the queue limit in force.
	Limit int
	// RetryAfter estimates when a waiting job will have started, from
	// the mean duration of recent jobs. It is at least one second.
	RetryAfter time.Duration
}

// Error returns the queue depth and limit.
func (e *QueueFullError) Error() string {
	return fmt.Sprintf("queue is full: %d jobs wait and the limit is %d", e.Depth, e.Limit)
}

// SettingsError rejects an invalid settings value.
type SettingsError struct {
	// Field is the JSON name of the setting, such as concurrentJobs.
	Field string
	// Message describes what is wrong and what is expected.
	Message string
}

// Error returns the field and message.
func (e *SettingsError) Error() string {
	return "invalid " + e.Field + ": " + e.Message
}
