package pool_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
)

func newSQLStore(t *testing.T) *pool.SQLStore {
	t.Helper()
	return pool.NewSQLStore(openDatabase(t, filepath.Join(t.TempDir(), "lambdaflow.db")))
}

// runStoreTest runs test on a fresh SQLStore of each backend.
func runStoreTest(t *testing.T, test func(t *testing.T, store *pool.SQLStore)) {
	databasetest.Run(t, func(t *testing.T, db *database.DB) {
		test(t, pool.NewSQLStore(db))
	})
}

// fullJob returns a job with every stored field set.
func fullJob(seq int64) *pool.Job {
	instance := "inst-1"
	block := "save"
	rows := int64(12)
	message := "disk full"
	started := timestamp.From(time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC))
	finished := timestamp.From(started.Add(1500 * time.Millisecond))
	job := storedJob(seq, "inst-1", pool.StateFailed, 2)
	job.Project = "seattle-weather"
	job.Instance = &instance
	job.Kind = pool.KindLambda
	job.Parameters = map[string]any{"year": json.Number("2014"), "weather": "rain", "ratio": json.Number("0.5")}
	job.StartedAt = &started
	job.FinishedAt = &finished
	job.Blocks[0] = pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockCompleted, StartedAt: &started, FinishedAt: &finished, RowsOut: &rows}
	job.Blocks[1] = pool.BlockRun{Name: "save", Type: "csv.write", State: pool.BlockFailed, Error: &message}
	job.Error = &pool.JobError{Type: pool.ErrorBlockFailed, Message: "block save: disk full", Block: &block}
	job.Result = &pool.Result{Rows: []map[string]any{{"month": json.Number("1"), "days": json.Number("12")}}, Total: 3, Truncated: true}
	job.Outputs = []pool.Output{{Name: "rain-2014.csv", Bytes: 42, URL: "/api/v1/jobs/x/outputs/rain-2014.csv"}}
	job.Stop = &pool.StopRecord{By: "alice", Reason: "typo", At: finished}
	job.TimeoutMs = 30000
	job.Definition = json.RawMessage(`{"name":"seattle-weather","blocks":[]}`)
	job.Only = []string{"load", "save"}
	return job
}

func TestSQLStoreRoundTrip(t *testing.T) {
	runStoreTest(t, testSQLStoreRoundTrip)
}

func testSQLStoreRoundTrip(t *testing.T, store *pool.SQLStore) {
	job := fullJob(1)
	if err := store.InsertJob(t.Context(), job); err != nil {
		t.Fatalf("InsertJob: %v", err)
	}
	got, err := store.GetJob(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if !reflect.DeepEqual(got, job) {
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(job)
		t.Errorf("stored job differs:\n got %s %+v\nwant %s %+v", gotJSON, *got, wantJSON, *job)
	}

	if err := store.InsertJob(t.Context(), fullJob(1)); err == nil {
		t.Error("InsertJob with a taken Seq returned no error")
	}
	if _, err := store.GetJob(t.Context(), "missing"); !errors.Is(err, pool.ErrJobNotFound) {
		t.Errorf("GetJob(missing) returned %v, want ErrJobNotFound", err)
	}
}

func TestSQLStoreUpdates(t *testing.T) {
	runStoreTest(t, testSQLStoreUpdates)
}

func testSQLStoreUpdates(t *testing.T, store *pool.SQLStore) {
	first, second := storedJob(1, "a", pool.StateRunning, 1), storedJob(2, "a", pool.StateBlocked, 1)
	for _, job := range []*pool.Job{first, second} {
		if err := store.InsertJob(t.Context(), job); err != nil {
			t.Fatalf("InsertJob: %v", err)
		}
	}

	first.State, second.State = pool.StateCompleted, pool.StateQueued
	missing := storedJob(3, "a", pool.StateQueued, 1)
	if err := store.UpdateJobs(t.Context(), first, missing); !errors.Is(err, pool.ErrJobNotFound) {
		t.Fatalf("UpdateJobs with a missing job returned %v, want ErrJobNotFound", err)
	}
	if got, _ := store.GetJob(t.Context(), first.ID); got.State != pool.StateRunning {
		t.Errorf("first job is %s after a failed transaction, want RUNNING unchanged", got.State)
	}

	if err := store.UpdateJobs(t.Context(), first, second); err != nil {
		t.Fatalf("UpdateJobs: %v", err)
	}
	if got, _ := store.GetJob(t.Context(), second.ID); got.State != pool.StateQueued {
		t.Errorf("second job is %s, want QUEUED", got.State)
	}

	blocks := []pool.BlockRun{{Name: "load", Type: "csv.read", State: pool.BlockRunning}}
	if err := store.UpdateBlocks(t.Context(), second.ID, blocks); err != nil {
		t.Fatalf("UpdateBlocks: %v", err)
	}
	if got, _ := store.GetJob(t.Context(), second.ID); !reflect.DeepEqual(got.Blocks, blocks) {
		t.Errorf("blocks = %+v, want %+v", got.Blocks, blocks)
	}
	if err := store.UpdateBlocks(t.Context(), "missing", blocks); !errors.Is(err, pool.ErrJobNotFound) {
		t.Errorf("UpdateBlocks(missing) returned %v, want ErrJobNotFound", err)
	}
}

func TestSQLStoreListAndActive(t *testing.T) {
	runStoreTest(t, testSQLStoreListAndActive)
}

func testSQLStoreListAndActive(t *testing.T, store *pool.SQLStore) {
	if seq, err := store.MaxSeq(t.Context()); err != nil || seq != 0 {
		t.Errorf("MaxSeq of an empty store = %d, %v; want 0", seq, err)
	}
	var all []*pool.Job
	states := []pool.State{pool.StateCompleted, pool.StateQueued, pool.StateRunning, pool.StateBlocked, pool.StateFailed, pool.StateCancelling}
	for i, state := range states {
		job := storedJob(int64(i+1), []string{"a", "b"}[i%2], state, 1)
		if err := store.InsertJob(t.Context(), job); err != nil {
			t.Fatalf("InsertJob: %v", err)
		}
		all = append(all, job)
	}

	jobs, total, err := store.ListJobs(t.Context(), pool.JobFilter{})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	if total != 6 || len(jobs) != 6 || jobs[0].ID != all[5].ID {
		t.Errorf("ListJobs = %d jobs of %d, first %s; want all 6 newest first", len(jobs), total, jobs[0].ID)
	}
	jobs, total, err = store.ListJobs(t.Context(), pool.JobFilter{Project: "a", States: []pool.State{pool.StateCompleted, pool.StateRunning}, Limit: 1, Offset: 1})
	if err != nil {
		t.Fatalf("ListJobs(filtered): %v", err)
	}
	if total != 2 || !slices.Equal(ids(jobs), []string{all[0].ID}) {
		t.Errorf("filtered page = %v of %d, want [%s] of 2", ids(jobs), total, all[0].ID)
	}
	jobs, total, err = store.ListJobs(t.Context(), pool.JobFilter{Offset: 10})
	if err != nil || total != 6 || len(jobs) != 0 {
		t.Errorf("page past the end = %d jobs of %d, %v; want none of 6", len(jobs), total, err)
	}

	active, err := store.ActiveJobs(t.Context())
	if err != nil {
		t.Fatalf("ActiveJobs: %v", err)
	}
	if want := []string{all[1].ID, all[2].ID, all[3].ID, all[5].ID}; !slices.Equal(ids(active), want) {
		t.Errorf("ActiveJobs = %v, want %v in Seq order", ids(active), want)
	}
	if seq, err := store.MaxSeq(t.Context()); err != nil || seq != 6 {
		t.Errorf("MaxSeq = %d, %v; want 6", seq, err)
	}
}

func TestSQLStoreSettings(t *testing.T) {
	runStoreTest(t, testSQLStoreSettings)
}

func testSQLStoreSettings(t *testing.T, store *pool.SQLStore) {
	if _, ok, err := store.LoadSetting(t.Context(), "pool.concurrent_jobs"); ok || err != nil {
		t.Errorf("LoadSetting of an empty store = %t, %v; want nothing", ok, err)
	}
	for _, value := range []string{"2", "3"} {
		if err := store.SaveSettings(t.Context(), map[string]string{"pool.concurrent_jobs": value, "pool.queue_limit": "9"}); err != nil {
			t.Fatalf("SaveSettings: %v", err)
		}
	}
	value, ok, err := store.LoadSetting(t.Context(), "pool.concurrent_jobs")
	if err != nil || !ok || value != "3" {
		t.Errorf("LoadSetting = %q, %t, %v; want the last saved 3", value, ok, err)
	}
}

// notText are keys that no store holds and that PostgreSQL rejects as
// text: invalid UTF-8 and the NUL character. Lookups must find nothing
// rather than fail.
var notText = []string{"\xff\xfe", "a\x00b"}

func TestSQLStoreKeysNotText(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store *pool.SQLStore) {
		for _, key := range notText {
			if _, err := store.GetJob(t.Context(), key); !errors.Is(err, pool.ErrJobNotFound) {
				t.Errorf("GetJob(%q) returned %v, want ErrJobNotFound", key, err)
			}
			if err := store.UpdateBlocks(t.Context(), key, nil); !errors.Is(err, pool.ErrJobNotFound) {
				t.Errorf("UpdateBlocks(%q) returned %v, want ErrJobNotFound", key, err)
			}
			jobs, total, err := store.ListJobs(t.Context(), pool.JobFilter{Project: key})
			if err != nil || total != 0 || len(jobs) != 0 {
				t.Errorf("ListJobs(project %q) = %d jobs of %d, %v; want none", key, len(jobs), total, err)
			}
			jobs, total, err = store.ListJobs(t.Context(), pool.JobFilter{States: []pool.State{pool.State(key)}})
			if err != nil || total != 0 || len(jobs) != 0 {
				t.Errorf("ListJobs(state %q) = %d jobs of %d, %v; want none", key, len(jobs), total, err)
			}
			if _, ok, err := store.LoadSetting(t.Context(), key); ok || err != nil {
				t.Errorf("LoadSetting(%q) = %t, %v; want nothing", key, ok, err)
			}
		}
	})
}
