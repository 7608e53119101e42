package projects_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
	"github.com/lambdaflow/lambdaflow/projects"
)

// runStoreTest runs test on a fresh SQLStore of each backend.
func runStoreTest(t *testing.T, test func(t *testing.T, store projects.Store)) {
	databasetest.Run(t, func(t *testing.T, db *database.DB) {
		test(t, projects.NewSQLStore(db))
	})
}

// record returns a project with a parameter, a block and current values,
// so that every stored field has a value.
func record(name string) *projects.Record {
	max := 2015.0
	return &projects.Record{
		Project: projects.Project{
			Name:        name,
			Description: "Monthly summary",
			Parameters: []projects.Parameter{
				{Name: "year", Type: "integer", Default: json.Number("2014"), Max: &max, Required: true},
			},
			Blocks: []projects.Block{
				{Name: "load", Type: "inline", Options: map[string]any{"rows": []any{map[string]any{"n": json.Number("1.50")}}}},
			},
			Result:  "load",
			Timeout: "5m",
		},
		Values: map[string]any{"year": json.Number("2013"), "big": json.Number("9007199254740993")},
	}
}

func TestSQLStoreCreateAndGet(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store projects.Store) {
		rec := record("weather")
		if err := store.Create(t.Context(), rec); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if rec.Version != 1 || rec.CreatedAt.IsZero() || !rec.UpdatedAt.Equal(rec.CreatedAt.Time) {
			t.Errorf("created record: version %d, created %s, updated %s; want version 1 and equal times",
				rec.Version, rec.CreatedAt, rec.UpdatedAt)
		}
		got, err := store.Get(t.Context(), "weather")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("stored record differs:\n got %+v\nwant %+v", got, rec)
		}

		if err := store.Create(t.Context(), record("weather")); !errors.Is(err, projects.ErrExists) {
			t.Errorf("Create of a taken name returned %v, want ErrExists", err)
		}
		if _, err := store.Get(t.Context(), "missing"); !errors.Is(err, projects.ErrNotFound) {
			t.Errorf("Get(missing) returned %v, want ErrNotFound", err)
		}
	})
}

func TestSQLStoreListOrder(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store projects.Store) {
		if list, err := store.List(t.Context()); err != nil || len(list) != 0 {
			t.Errorf("List of an empty store = %d projects, %v; want none", len(list), err)
		}
		// Byte order puts upper case first, whatever the locale.
		for _, name := range []string{"b", "B", "a-2", "A", "a.1", "a_3"} {
			if err := store.Create(t.Context(), record(name)); err != nil {
				t.Fatalf("Create(%s): %v", name, err)
			}
		}
		list, err := store.List(t.Context())
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var names []string
		for _, rec := range list {
			names = append(names, rec.Name)
		}
		if want := []string{"A", "B", "a-2", "a.1", "a_3", "b"}; !slices.Equal(names, want) {
			t.Errorf("List order = %v, want %v", names, want)
		}
		if n, err := store.Count(t.Context()); err != nil || n != 6 {
			t.Errorf("Count = %d, %v; want 6", n, err)
		}
	})
}

func TestSQLStoreUpdate(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store projects.Store) {
		rec := record("weather")
		if err := store.Create(t.Context(), rec); err != nil {
			t.Fatalf("Create: %v", err)
		}
		created := rec.CreatedAt

		rec.Description = "changed"
		if err := store.Update(t.Context(), rec, 1); err != nil {
			t.Fatalf("Update at version 1: %v", err)
		}
		if rec.Version != 2 || !rec.CreatedAt.Equal(created.Time) {
			t.Errorf("updated record: version %d, created %s; want 2 and %s", rec.Version, rec.CreatedAt, created)
		}
		if err := store.Update(t.Context(), rec, 1); !errors.Is(err, projects.ErrVersionMismatch) {
			t.Errorf("Update at the old version 1 returned %v, want ErrVersionMismatch", err)
		}
		for _, ifVersion := range []int64{0, -1} {
			if err := store.Update(t.Context(), rec, ifVersion); err != nil {
				t.Errorf("Update with ifVersion %d: %v", ifVersion, err)
			}
		}
		got, err := store.Get(t.Context(), "weather")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.Version != 4 || got.Description != "changed" {
			t.Errorf("stored record: version %d, description %q; want 4 and changed", got.Version, got.Description)
		}

		if err := store.Update(t.Context(), record("missing"), 0); !errors.Is(err, projects.ErrNotFound) {
			t.Errorf("Update(missing) returned %v, want ErrNotFound", err)
		}
		if err := store.Update(t.Context(), record("missing"), 3); !errors.Is(err, projects.ErrNotFound) {
			t.Errorf("Update(missing) with ifVersion returned %v, want ErrNotFound", err)
		}
	})
}

// TestSQLStoreConcurrentUpdates updates one project from several
// goroutines with the same ifVersion: exactly one may win.
func TestSQLStoreConcurrentUpdates(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store projects.Store) {
		if err := store.Create(t.Context(), record("weather")); err != nil {
			t.Fatalf("Create: %v", err)
		}
		const writers = 8
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				errs[i] = store.Update(t.Context(), record("weather"), 1)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, projects.ErrVersionMismatch):
				t.Errorf("Update: %v, want success or ErrVersionMismatch", err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d updates at version 1 succeeded, want 1", won, writers)
		}
	})
}

func TestSQLStoreDelete(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store projects.Store) {
		if err := store.Create(t.Context(), record("weather")); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := store.Delete(t.Context(), "weather"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := store.Get(t.Context(), "weather"); !errors.Is(err, projects.ErrNotFound) {
			t.Errorf("Get after Delete returned %v, want ErrNotFound", err)
		}
		if err := store.Delete(t.Context(), "weather"); !errors.Is(err, projects.ErrNotFound) {
			t.Errorf("second Delete returned %v, want ErrNotFound", err)
		}
		if err := store.Create(t.Context(), record("weather")); err != nil {
			t.Errorf("Create after Delete: %v", err)
		}
	})
}

// TestSQLStoreKeysNotText looks up names that no store holds and that
// PostgreSQL rejects as text: they must be not found rather than fail.
func TestSQLStoreKeysNotText(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store projects.Store) {
		for _, name := range []string{"\xff\xfe", "a\x00b"} {
			if _, err := store.Get(t.Context(), name); !errors.Is(err, projects.ErrNotFound) {
				t.Errorf("Get(%q) returned %v, want ErrNotFound", name, err)
			}
			if err := store.Update(t.Context(), record(name), 0); !errors.Is(err, projects.ErrNotFound) {
				t.Errorf("Update(%q) returned %v, want ErrNotFound", name, err)
			}
			if err := store.Delete(t.Context(), name); !errors.Is(err, projects.ErrNotFound) {
				t.Errorf("Delete(%q) returned %v, want ErrNotFound", name, err)
			}
		}
	})
}
