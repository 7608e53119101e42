package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// ErrInstanceNotFound means no instance has the requested id, or it has
// expired.
var ErrInstanceNotFound = errors.New("instance not found")

// Instance is an ephemeral copy of a project: the definition snapshot and
// the bound parameters that its one job runs with.
type Instance struct {
	// ID is a UUIDv7 string.
	ID string `json:"id" format:"uuid"`
	// Project names the project the instance was cloned from.
	Project string `json:"project"`
	// Job is the id of the instance's job.
	Job string `json:"job" format:"uuid"`
	// Definition is the project definition as it was at invocation.
	Definition json.RawMessage `json:"definition" swaggertype:"object"`
	// Parameters are the bound values the job runs with, defaults filled
	// in.
	Parameters map[string]any `json:"parameters"`
	// DeleteExecutionOnFinish is true when the instance is removed as
	// soon as its job ends.
	DeleteExecutionOnFinish bool `json:"deleteExecutionOnFinish"`
	// CreatedAt is when the instance was invoked.
	CreatedAt timestamp.Time `json:"createdAt" swaggertype:"string" format:"date-time"`
	// FinishedAt is when its job ended, else null.
	FinishedAt *timestamp.Time `json:"finishedAt" swaggertype:"string" format:"date-time" extensions:"x-nullable"`
	// ExpiresAt is when a kept instance is removed: the end of its job
	// plus the retention period. It is null while the job is active.
	ExpiresAt *timestamp.Time `json:"expiresAt" swaggertype:"string" format:"date-time" extensions:"x-nullable"`
}

// IdempotencyRecord is the first job queued under an idempotency key.
type IdempotencyRecord struct {
	Project string
	Key     string
	// RequestHash identifies the request body that queued the job.
	RequestHash string
	JobID       string
	InstanceID  string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Store keeps instances and idempotency keys durably. Implementations are
// safe for concurrent use; each method is one transaction.
type Store interface {
	// InsertInstance stores a new instance.
	InsertInstance(ctx context.Context, inst *Instance) error
	// Instance returns the instance with the given id, or
	// ErrInstanceNotFound.
	Instance(ctx context.Context, id string) (*Instance, error)
	// FinishInstance records the end of the instance's job and when the
	// instance expires. It does nothing for an unknown id.
	FinishInstance(ctx context.Context, id string, finishedAt, expiresAt time.Time) error
	// DeleteInstance removes the instance. It does nothing for an
	// unknown id.
	DeleteInstance(ctx context.Context, id string) error
	// ExpiredInstances returns the ids of the instances whose expiry is
	// at or before now.
	ExpiredInstances(ctx context.Context, now time.Time) ([]string, error)
	// UnfinishedInstances returns the instances whose job was not yet
	// seen to end, oldest first.
	UnfinishedInstances(ctx context.Context) ([]*Instance, error)
	// IdempotencyKey returns the record of key on project unless it has
	// expired at now, and whether one was found.
	IdempotencyKey(ctx context.Context, project, key string, now time.Time) (*IdempotencyRecord, bool, error)
	// PutIdempotencyKey stores rec, replacing an expired record of the
	// same project and key.
	PutIdempotencyKey(ctx context.Context, rec *IdempotencyRecord) error
	// DeleteExpiredKeys removes the idempotency keys expired at now and
	// returns how many it removed.
	DeleteExpiredKeys(ctx context.Context, now time.Time) (int64, error)
	// LockIdempotencyKey serialises the invocations that carry key on
	// project across every server on the database, until the returned
	// function is called.
	LockIdempotencyKey(ctx context.Context, project, key string) (func(), error)
}
