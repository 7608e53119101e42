// Package pooltest provides an in-memory pool.Store and a pool.Runner that
// tests control job by job.
package pooltest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/lambdaflow/lambdaflow/pool"
)

// MemoryStore is a pool.Store that keeps jobs and settings in memory. It
// stores copies, so callers may change the jobs they pass and get. The
// zero value is not usable, so call NewMemoryStore.
type MemoryStore struct {
	// mu guards every field below.
	mu       sync.Mutex
	jobs     map[string]*pool.Job
	seqs     map[int64]bool
	maxSeq   int64
	settings map[string]string
	failWith error
	writes   int
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		jobs:     make(map[string]*pool.Job),
		seqs:     make(map[int64]bool),
		settings: make(map[string]string),
	}
}

var _ pool.Store = (*MemoryStore)(nil)

// FailWrites makes every later write return err, until called with nil.
func (s *MemoryStore) FailWrites(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = err
}

// Writes returns the number of successful write calls so far.
func (s *MemoryStore) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// writeLocked returns the injected failure or counts a write.
func (s *MemoryStore) writeLocked() error {
	if s.failWith != nil {
		return s.failWith
	}
	s.writes++
	return nil
}

// InsertJob stores a copy of job.
func (s *MemoryStore) InsertJob(ctx context.Context, job *pool.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[job.ID]; ok {
		return fmt.Errorf("inserting job %s: the id is taken", job.ID)
	}
	if s.seqs[job.Seq] {
		return fmt.Errorf("inserting job %s: sequence number %d is taken", job.ID, job.Seq)
	}
	if err := s.writeLocked(); err != nil {
		return err
	}
	s.jobs[job.ID] = job.Clone()
	s.seqs[job.Seq] = true
	s.maxSeq = max(s.maxSeq, job.Seq)
	return nil
}

// UpdateJobs replaces the stored copies of jobs, all or none.
func (s *MemoryStore) UpdateJobs(ctx context.Context, jobs ...*pool.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, job := range jobs {
		if _, ok := s.jobs[job.ID]; !ok {
			return fmt.Errorf("updating job %s: %w", job.ID, pool.ErrJobNotFound)
		}
	}
	if err := s.writeLocked(); err != nil {
		return err
	}
	for _, job := range jobs {
		s.jobs[job.ID] = job.Clone()
	}
	return nil
}

// UpdateBlocks replaces the block runs of job id.
func (s *MemoryStore) UpdateBlocks(ctx context.Context, id string, blocks []pool.BlockRun) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	job, ok := s.jobs[id]
	if !ok {
		return fmt.Errorf("updating blocks of job %s: %w", id, pool.ErrJobNotFound)
	}
	if err := s.writeLocked(); err != nil {
		return err
	}
	job = job.Clone()
	job.Blocks = slices.Clone(blocks)
	s.jobs[id] = job
	return nil
}

// GetJob returns a copy of the stored job.
func (s *MemoryStore) GetJob(ctx context.Context, id string) (*pool.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	job, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, pool.ErrJobNotFound)
	}
	return job.Clone(), nil
}

// ListJobs returns copies of the matching jobs, highest Seq first.
func (s *MemoryStore) ListJobs(ctx context.Context, filter pool.JobFilter) ([]*pool.Job, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var matches []*pool.Job
	for _, job := range s.jobs {
		if len(filter.States) > 0 && !slices.Contains(filter.States, job.State) {
			continue
		}
		if filter.Project != "" && job.Project != filter.Project {
			continue
		}
		matches = append(matches, job)
	}
	slices.SortFunc(matches, func(a, b *pool.Job) int { return cmp.Compare(b.Seq, a.Seq) })
	total := len(matches)
	matches = matches[min(filter.Offset, total):]
	if filter.Limit > 0 && len(matches) > filter.Limit {
		matches = matches[:filter.Limit]
	}
	return cloneAll(matches), total, nil
}

// ActiveJobs returns copies of the active jobs in Seq order.
func (s *MemoryStore) ActiveJobs(ctx context.Context) ([]*pool.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var active []*pool.Job
	for _, job := range s.jobs {
		if !job.State.Final() {
			active = append(active, job)
		}
	}
	slices.SortFunc(active, func(a, b *pool.Job) int { return cmp.Compare(a.Seq, b.Seq) })
	return cloneAll(active), nil
}

// MaxSeq returns the highest stored Seq, or 0.
func (s *MemoryStore) MaxSeq(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSeq, nil
}

// LoadSetting returns the value stored under key.
func (s *MemoryStore) LoadSetting(ctx context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	value, ok := s.settings[key]
	return value, ok, nil
}

// SaveSettings stores values.
func (s *MemoryStore) SaveSettings(ctx context.Context, values map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeLocked(); err != nil {
		return err
	}
	maps.Copy(s.settings, values)
	return nil
}

func cloneAll(jobs []*pool.Job) []*pool.Job {
	clones := make([]*pool.Job, len(jobs))
	for i, job := range jobs {
		clones[i] = job.Clone()
	}
	return clones
}

// ErrInjected is a ready error for FailWrites.
var ErrInjected = errors.New("injected store failure")
