package lambda_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/lambda"
)

// runStoreTest runs test on a fresh SQLStore of each backend.
func runStoreTest(t *testing.T, test func(t *testing.T, store lambda.Store)) {
	databasetest.Run(t, func(t *testing.T, db *database.DB) {
		test(t, lambda.NewSQLStore(db))
	})
}

var storeT0 = time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC)

func newInstance(created time.Time, deleteOnFinish bool) *lambda.Instance {
	return &lambda.Instance{
		ID:                      uuid.NewString(),
		Project:                 "seattle-weather",
		Job:                     uuid.NewString(),
		Definition:              json.RawMessage(`{"name":"seattle-weather","blocks":[]}`),
		Parameters:              map[string]any{"year": json.Number("2014"), "weather": "rain"},
		DeleteExecutionOnFinish: deleteOnFinish,
		CreatedAt:               timestamp.From(created),
	}
}

func TestSQLStoreInstanceRoundTrip(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store lambda.Store) {
		for _, deleteOnFinish := range []bool{true, false} {
			inst := newInstance(storeT0, deleteOnFinish)
			if err := store.InsertInstance(t.Context(), inst); err != nil {
				t.Fatalf("InsertInstance: %v", err)
			}
			got, err := store.Instance(t.Context(), inst.ID)
			if err != nil {
				t.Fatalf("Instance: %v", err)
			}
			if !reflect.DeepEqual(got, inst) {
				t.Errorf("stored instance differs:\n got %+v\nwant %+v", got, inst)
			}
		}
		if _, err := store.Instance(t.Context(), "missing"); !errors.Is(err, lambda.ErrInstanceNotFound) {
			t.Errorf("Instance(missing) returned %v, want ErrInstanceNotFound", err)
		}
	})
}

func TestSQLStoreInstanceLifecycle(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store lambda.Store) {
		var all []*lambda.Instance
		for i := range 3 {
			inst := newInstance(storeT0.Add(time.Duration(3-i)*time.Second), false)
			if err := store.InsertInstance(t.Context(), inst); err != nil {
				t.Fatalf("InsertInstance: %v", err)
			}
			all = append(all, inst)
		}
		unfinished, err := store.UnfinishedInstances(t.Context())
		if err != nil {
			t.Fatalf("UnfinishedInstances: %v", err)
		}
		if want := []string{all[2].ID, all[1].ID, all[0].ID}; !slices.Equal(instanceIDs(unfinished), want) {
			t.Errorf("UnfinishedInstances = %v, want %v oldest first", instanceIDs(unfinished), want)
		}

		finished := storeT0.Add(time.Minute)
		for i, inst := range all[:2] {
			expires := finished.Add(time.Duration(2-i) * time.Hour)
			if err := store.FinishInstance(t.Context(), inst.ID, finished, expires); err != nil {
				t.Fatalf("FinishInstance: %v", err)
			}
		}
		if err := store.FinishInstance(t.Context(), "missing", finished, finished); err != nil {
			t.Errorf("FinishInstance(missing): %v, want nothing done", err)
		}
		got, err := store.Instance(t.Context(), all[0].ID)
		if err != nil {
			t.Fatalf("Instance: %v", err)
		}
		if got.FinishedAt == nil || !got.FinishedAt.Equal(finished) || got.ExpiresAt == nil || !got.ExpiresAt.Equal(finished.Add(2*time.Hour)) {
			t.Errorf("finished instance: finishedAt %v, expiresAt %v; want %s and 2h later", got.FinishedAt, got.ExpiresAt, finished)
		}
		unfinished, err = store.UnfinishedInstances(t.Context())
		if err != nil {
			t.Fatalf("UnfinishedInstances: %v", err)
		}
		if want := []string{all[2].ID}; !slices.Equal(instanceIDs(unfinished), want) {
			t.Errorf("UnfinishedInstances after finishing two = %v, want %v", instanceIDs(unfinished), want)
		}

		expired, err := store.ExpiredInstances(t.Context(), finished.Add(time.Hour))
		if err != nil {
			t.Fatalf("ExpiredInstances: %v", err)
		}
		if want := []string{all[1].ID}; !slices.Equal(expired, want) {
			t.Errorf("ExpiredInstances at the first expiry = %v, want %v", expired, want)
		}
		expired, err = store.ExpiredInstances(t.Context(), finished.Add(3*time.Hour))
		if err != nil {
			t.Fatalf("ExpiredInstances: %v", err)
		}
		if want := []string{all[1].ID, all[0].ID}; !slices.Equal(expired, want) {
			t.Errorf("ExpiredInstances later = %v, want %v in expiry order", expired, want)
		}

		if err := store.DeleteInstance(t.Context(), all[1].ID); err != nil {
			t.Fatalf("DeleteInstance: %v", err)
		}
		if _, err := store.Instance(t.Context(), all[1].ID); !errors.Is(err, lambda.ErrInstanceNotFound) {
			t.Errorf("Instance after DeleteInstance returned %v, want ErrInstanceNotFound", err)
		}
		if err := store.DeleteInstance(t.Context(), all[1].ID); err != nil {
			t.Errorf("second DeleteInstance: %v, want nothing done", err)
		}
	})
}

func TestSQLStoreIdempotencyKeys(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store lambda.Store) {
		if _, ok, err := store.IdempotencyKey(t.Context(), "p", "k", storeT0); ok || err != nil {
			t.Errorf("IdempotencyKey of an empty store = %t, %v; want nothing", ok, err)
		}
		first := &lambda.IdempotencyRecord{Project: "p", Key: "k", RequestHash: "h1", JobID: "j1", InstanceID: "i1",
			CreatedAt: storeT0, ExpiresAt: storeT0.Add(time.Hour)}
		other := &lambda.IdempotencyRecord{Project: "q", Key: "k", RequestHash: "h2", JobID: "j2", InstanceID: "i2",
			CreatedAt: storeT0, ExpiresAt: storeT0.Add(3 * time.Hour)}
		for _, rec := range []*lambda.IdempotencyRecord{first, other} {
			if err := store.PutIdempotencyKey(t.Context(), rec); err != nil {
				t.Fatalf("PutIdempotencyKey: %v", err)
			}
		}
		got, ok, err := store.IdempotencyKey(t.Context(), "p", "k", storeT0.Add(time.Minute))
		if err != nil || !ok {
			t.Fatalf("IdempotencyKey = %t, %v; want the stored record", ok, err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Errorf("stored record differs:\n got %+v\nwant %+v", got, first)
		}
		if _, ok, err := store.IdempotencyKey(t.Context(), "p", "k", first.ExpiresAt); ok || err != nil {
			t.Errorf("IdempotencyKey at its expiry = %t, %v; want nothing", ok, err)
		}

		// A new request after the expiry replaces the record.
		second := &lambda.IdempotencyRecord{Project: "p", Key: "k", RequestHash: "h3", JobID: "j3", InstanceID: "i3",
			CreatedAt: first.ExpiresAt, ExpiresAt: first.ExpiresAt.Add(time.Hour)}
		if err := store.PutIdempotencyKey(t.Context(), second); err != nil {
			t.Fatalf("PutIdempotencyKey over an expired record: %v", err)
		}
		got, ok, err = store.IdempotencyKey(t.Context(), "p", "k", first.ExpiresAt)
		if err != nil || !ok || got.JobID != "j3" || got.RequestHash != "h3" {
			t.Errorf("IdempotencyKey after replacing = %+v, %t, %v; want job j3", got, ok, err)
		}

		n, err := store.DeleteExpiredKeys(t.Context(), second.ExpiresAt)
		if err != nil || n != 1 {
			t.Errorf("DeleteExpiredKeys = %d, %v; want 1", n, err)
		}
		if _, ok, _ := store.IdempotencyKey(t.Context(), "q", "k", storeT0); !ok {
			t.Errorf("the unexpired key of project q was deleted")
		}
	})
}

func instanceIDs(list []*lambda.Instance) []string {
	var ids []string
	for _, inst := range list {
		ids = append(ids, inst.ID)
	}
	return ids
}

// TestSQLStoreKeysNotText looks up keys that no store holds and that
// PostgreSQL rejects as text: they must be not found rather than fail.
func TestSQLStoreKeysNotText(t *testing.T) {
	runStoreTest(t, func(t *testing.T, store lambda.Store) {
		for _, key := range []string{"\xff\xfe", "a\x00b"} {
			if _, err := store.Instance(t.Context(), key); !errors.Is(err, lambda.ErrInstanceNotFound) {
				t.Errorf("Instance(%q) returned %v, want ErrInstanceNotFound", key, err)
			}
			if err := store.FinishInstance(t.Context(), key, storeT0, storeT0); err != nil {
				t.Errorf("FinishInstance(%q): %v, want nothing done", key, err)
			}
			if err := store.DeleteInstance(t.Context(), key); err != nil {
				t.Errorf("DeleteInstance(%q): %v, want nothing done", key, err)
			}
			if _, ok, err := store.IdempotencyKey(t.Context(), "p", key, storeT0); ok || err != nil {
				t.Errorf("IdempotencyKey(p, %q) = %t, %v; want nothing", key, ok, err)
			}
			if _, ok, err := store.IdempotencyKey(t.Context(), key, "k", storeT0); ok || err != nil {
				t.Errorf("IdempotencyKey(%q, k) = %t, %v; want nothing", key, ok, err)
			}
		}
	})
}
