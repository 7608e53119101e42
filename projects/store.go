package projects

import (
	"context"
	"errors"
)

// Errors a Store returns; callers branch on them with errors.Is.
var (
	ErrNotFound        = errors.New("project not found")
	ErrExists          = errors.New("project already exists")
	ErrVersionMismatch = errors.New("project version does not match")
)

// Store keeps projects durably. Implementations are safe for concurrent
// use; each method is one transaction.
type Store interface {
	// List returns every project ordered by name.
	List(ctx context.Context) ([]*Record, error)
	// Get returns the named project or ErrNotFound.
	Get(ctx context.Context, name string) (*Record, error)
	// Create stores a new project at version 1, or returns ErrExists.
	Create(ctx context.Context, rec *Record) error
	// Update stores rec's definition and values over the project of the
	// same name and increments its version. When ifVersion is positive
	// and the stored version differs, it returns ErrVersionMismatch and
	// changes nothing. rec's Version and UpdatedAt are set on success.
	Update(ctx context.Context, rec *Record, ifVersion int64) error
	// Delete removes the named project or returns ErrNotFound.
	Delete(ctx context.Context, name string) error
	// Count returns the number of projects.
	Count(ctx context.Context) (int, error)
}
