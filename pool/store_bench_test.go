package pool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

// benchDefinition is the definition of a small project (an inline block
// and a limit), which every benchmark job carries like a real one.
var benchDefinition = json.RawMessage(`{"name":"trivial","blocks":[` +
	`{"name":"rows","type":"inline","options":{"rows":[{"n":1}]}},` +
	`{"name":"first","type":"limit","inputs":["rows"],"options":{"rows":1}}]}`)

func benchSubmission(lock string) pool.Submission {
	return pool.Submission{
		Project:    lock,
		LockKey:    lock,
		Parameters: map[string]any{"n": 1},
		Definition: benchDefinition,
		Blocks: []pool.BlockRun{
			{Name: "rows", Type: "inline"},
			{Name: "first", Type: "limit"},
		},
	}
}

// benchStores returns the stores the durability benchmarks compare: the
// SQLite store on a file in a temporary directory and the in-memory store
// of the same interface.
func benchStores(b *testing.B) map[string]func() pool.Store {
	return map[string]func() pool.Store{
		"memory": func() pool.Store { return pooltest.NewMemoryStore() },
		"sqlite": func() pool.Store {
			db, err := database.Open(context.Background(), filepath.Join(b.TempDir(), "lambdaflow.db"))
			if err != nil {
				b.Fatalf("opening database: %v", err)
			}
			b.Cleanup(func() { db.Close() })
			return pool.NewSQLStore(db)
		},
	}
}

// BenchmarkSubmit measures Submit alone, from 4 goroutines per core at
// once: each job is stored and queued behind a job that never ends, so
// nothing runs. Compare store=sqlite with store=memory for the price of
// durability.
func BenchmarkSubmit(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		b.Run("store="+name, func(b *testing.B) {
			store := benchStores(b)[name]()
			p := startBenchPool(b, store, &blockingRunner{}, 1<<30)
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Submit(context.Background(), benchSubmission("project")); err != nil {
						b.Errorf("Submit: %v", err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkJobLifecycle measures a whole trivial job through the pool:
// submit, start, two blocks that each report RUNNING and COMPLETED, and
// the final record, with two slots and one lock per job as lambda
// instances have. Compare store=sqlite with store=memory.
func BenchmarkJobLifecycle(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		b.Run("store="+name, func(b *testing.B) {
			store := benchStores(b)[name]()
			runner := &blockRunner{}
			p := startBenchPool(b, store, runner, 1<<30)
			if _, err := p.SetConcurrentJobs(context.Background(), 2); err != nil {
				b.Fatalf("SetConcurrentJobs: %v", err)
			}
			var submitted sync.WaitGroup
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					job, err := p.Submit(context.Background(), benchSubmission(fmt.Sprintf("lock-%p-%d", pb, i)))
					if err != nil {
						b.Errorf("Submit: %v", err)
						return
					}
					submitted.Add(1)
					go func() {
						defer submitted.Done()
						if _, err := p.Await(context.Background(), job.ID); err != nil {
							b.Errorf("Await: %v", err)
						}
					}()
				}
			})
			submitted.Wait()
		})
	}
}

// BenchmarkWaitingJobMemory measures the heap the pool holds per waiting
// job, with the store discarding every record as the SQLite store keeps
// them on disk. 99% of the jobs are BLOCKED behind waiting/100 locks.
func BenchmarkWaitingJobMemory(b *testing.B) {
	for _, waiting := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("waiting=%d", waiting), func(b *testing.B) {
			var perJob float64
			for b.Loop() {
				perJob = waitingJobBytes(b, waiting)
			}
			b.ReportMetric(perJob, "B/waiting-job")
		})
	}
}

func waitingJobBytes(b *testing.B, waiting int) float64 {
	before := heapInUse()
	p := startBenchPool(b, discardStore{}, &blockingRunner{}, waiting+1)
	locks := waiting / 100
	for i := range waiting + 1 {
		if _, err := p.Submit(context.Background(), benchSubmission(fmt.Sprintf("lock-%d", i%locks))); err != nil {
			b.Fatalf("Submit: %v", err)
		}
	}
	after := heapInUse()
	runtime.KeepAlive(p)
	p.Stop()
	return float64(after-before) / float64(waiting)
}

func heapInUse() uint64 {
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats.HeapAlloc
}

func startBenchPool(b *testing.B, store pool.Store, runner pool.Runner, queueLimit int) *pool.Pool {
	b.Helper()
	p, err := pool.New(pool.Config{MaxConcurrentJobs: 2, QueueLimit: queueLimit}, store, runner)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.Cleanup(p.Stop)
	return p
}

// blockingRunner runs every job until the pool stops.
type blockingRunner struct{}

func (blockingRunner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	<-ctx.Done()
	return pool.Outcome{}, ctx.Err()
}

// blockRunner reports RUNNING and COMPLETED for each of the job's blocks
// and ends at once, as the executor does for a trivial project.
type blockRunner struct{}

func (blockRunner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	for _, block := range job.Blocks {
		block.State = pool.BlockRunning
		update(block)
		block.State = pool.BlockCompleted
		update(block)
	}
	return pool.Outcome{Result: &pool.Result{Rows: []map[string]any{{"n": 1}}, Total: 1}}, nil
}

// discardStore is a pool.Store that keeps nothing.
type discardStore struct{}

func (discardStore) InsertJob(context.Context, *pool.Job) error                  { return nil }
func (discardStore) UpdateJobs(context.Context, ...*pool.Job) error              { return nil }
func (discardStore) UpdateBlocks(context.Context, string, []pool.BlockRun) error { return nil }
func (discardStore) GetJob(_ context.Context, id string) (*pool.Job, error) {
	return nil, pool.ErrJobNotFound
}
func (discardStore) ListJobs(context.Context, pool.JobFilter) ([]*pool.Job, int, error) {
	return nil, 0, nil
}
func (discardStore) ActiveJobs(context.Context) ([]*pool.Job, error)           { return nil, nil }
func (discardStore) MaxSeq(context.Context) (int64, error)                     { return 0, nil }
func (discardStore) LoadSetting(context.Context, string) (string, bool, error) { return "", false, nil }
func (discardStore) SaveSettings(context.Context, map[string]string) error     { return nil }
