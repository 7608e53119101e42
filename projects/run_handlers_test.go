package projects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// storedWeather stores weatherProject in a real SQLite store with the
// current value year 2014.
func storedWeather(t *testing.T) Store {
	t.Helper()
	db, err := database.Open(t.Context(), filepath.Join(t.TempDir(), "lambdaflow.db"))
	if err != nil {
		t.Fatalf("opening database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	store := NewSQLStore(db)
	rec := &Record{Project: *weatherProject(t), Values: map[string]any{"year": int64(2014)}}
	if err := store.Create(t.Context(), rec); err != nil {
		t.Fatalf("creating project: %v", err)
	}
	return store
}

func TestUpdateValuesMergesPatch(t *testing.T) {
	store := storedWeather(t)
	rec, err := UpdateValues(t.Context(), store, "w", map[string]any{"weather": "sun", "year": nil, "ratio": "0.5"}, 0)
	if err != nil {
		t.Fatalf("UpdateValues: %v", err)
	}
	stored, err := store.Get(t.Context(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Version != rec.Version {
		t.Errorf("stored version = %d, want %d", stored.Version, rec.Version)
	}
	// The store returns numbers as json.Number, so values compare as text.
	want := map[string]string{"weather": "sun", "ratio": "0.5"}
	if len(stored.Values) != len(want) {
		t.Errorf("values = %v, want %v", stored.Values, want)
	}
	for name, w := range want {
		if got := fmt.Sprint(stored.Values[name]); got != w {
			t.Errorf("values[%s] = %#v, want %#v", name, got, w)
		}
	}
}

func TestUpdateValuesRejectsInvalid(t *testing.T) {
	store := storedWeather(t)
	_, err := UpdateValues(t.Context(), store, "w", map[string]any{"weather": "sun", "year": 1999}, 0)
	var problem *httpapi.Problem
	if !errors.As(err, &problem) {
		t.Fatalf("error = %v, want a problem", err)
	}
	if problem.Code != httpapi.CodeValidationFailed {
		t.Errorf("code = %s, want %s", problem.Code, httpapi.CodeValidationFailed)
	}
	if len(problem.Errors) != 1 || problem.Errors[0].Field != "values.year" {
		t.Errorf("errors = %+v, want one naming values.year", problem.Errors)
	}
	stored, err := store.Get(t.Context(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Values["weather"] != nil {
		t.Errorf("weather = %v after a rejected update, want no current value", stored.Values["weather"])
	}
}

func TestUpdateValuesStoreErrors(t *testing.T) {
	store := storedWeather(t)
	if _, err := UpdateValues(t.Context(), store, "missing", map[string]any{}, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown project: error = %v, want ErrNotFound", err)
	}
	if _, err := UpdateValues(t.Context(), store, "w", map[string]any{}, 99); !errors.Is(err, ErrVersionMismatch) {
		t.Errorf("stale version: error = %v, want ErrVersionMismatch", err)
	}
}

func TestExecuteSubmissionBindsCurrentValues(t *testing.T) {
	store := storedWeather(t)
	rec, err := store.Get(t.Context(), "w")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ExecuteSubmission(rec, &ExecuteRequest{Blocks: []string{"a"}, Timeout: "30s"})
	if err != nil {
		t.Fatalf("ExecuteSubmission: %v", err)
	}
	if sub.Kind != pool.KindExecute || sub.LockKey != "w" || sub.Project != "w" {
		t.Errorf("submission = kind %s, lock %s, project %s; want execute on the project's own lock", sub.Kind, sub.LockKey, sub.Project)
	}
	if sub.Parameters["year"] != int64(2014) || sub.Parameters["weather"] != "rain" {
		t.Errorf("parameters = %v, want year 2014 and the default weather rain", sub.Parameters)
	}
	if len(sub.Only) != 1 || len(sub.Blocks) != 1 {
		t.Errorf("only = %v, blocks = %v; want the one block", sub.Only, sub.Blocks)
	}

	_, err = ExecuteSubmission(rec, &ExecuteRequest{Blocks: []string{"nope"}})
	var problem *httpapi.Problem
	if !errors.As(err, &problem) || len(problem.Errors) != 1 || problem.Errors[0].Field != "blocks[0]" {
		t.Errorf("unknown block: error = %v, want a problem naming blocks[0]", err)
	}
}

// stopRecorder is a Scheduler that records stop requests.
type stopRecorder struct {
	active  []string
	stopped []string
}

func (s *stopRecorder) Submit(context.Context, pool.Submission) (*pool.Job, error) {
	return nil, errors.New("not used")
}

func (s *stopRecorder) StopJob(_ context.Context, id, by, _ string) (*pool.Job, error) {
	s.stopped = append(s.stopped, id+" by "+by)
	if id == "ended" {
		return nil, pool.ErrJobFinished
	}
	return &pool.Job{ID: id}, nil
}

func (s *stopRecorder) ActiveJobIDs(string) []string {
	return s.active
}

func (s *stopRecorder) Reserve(int, time.Duration) error {
	return nil
}

func TestStopActiveStopsEveryJob(t *testing.T) {
	sched := &stopRecorder{active: []string{"running", "ended", "waiting"}}
	StopActive(t.Context(), sched, "w", "127.0.0.1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := []string{"running by 127.0.0.1", "ended by 127.0.0.1", "waiting by 127.0.0.1"}
	if len(sched.stopped) != len(want) {
		t.Fatalf("stopped = %v, want %v", sched.stopped, want)
	}
	for i := range want {
		if sched.stopped[i] != want[i] {
			t.Errorf("stop %d = %s, want %s", i, sched.stopped[i], want[i])
		}
	}
}
