package monitor

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/pool/pooltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait of a test, so that a bug fails the test
// instead of hanging it.
const waitTimeout = 20 * time.Second

// bundle is what setup returns: a started pool with a controllable
// runner, a monitor of it on a SQLite file, and an HTTP server with the
// monitor's routes.
type bundle struct {
	pool    *pool.Pool
	runner  *pooltest.Runner
	monitor *Monitor
	store   *SQLSampleStore
	server  *httptest.Server
}

// setup starts a pool and a monitor with cfg, whose zero fields get
// test defaults: a 20ms interval and the test's temporary directory.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	dir := t.TempDir()
	db, err := database.Open(t.Context(), filepath.Join(dir, "lambdaflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	b := &bundle{runner: pooltest.NewRunner(), store: NewSQLSampleStore(db)}
	b.pool, err = pool.New(pool.Config{MaxConcurrentJobs: 4}, pooltest.NewMemoryStore(), b.runner)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.DataDir == "" {
		cfg.DataDir = dir
	}
	b.monitor, err = New(cfg, b.pool, b.store)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.pool.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Stop)
	t.Cleanup(func() { b.runner.EndAll(errors.New("test ended")) })
	if err := b.monitor.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.monitor.Stop)

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	b.monitor.Register(r.Group("/api/v1"))
	b.monitor.RegisterMetrics(r)
	b.server = httptest.NewServer(r)
	// Cleanups run last in, first out: the server closes after the
	// streams end.
	t.Cleanup(b.server.Close)
	t.Cleanup(b.monitor.CloseStreams)
	return b
}

// submit queues a job of project lock with two blocks.
func (b *bundle) submit(t *testing.T, lock string) *pool.Job {
	t.Helper()
	job, err := b.pool.Submit(t.Context(), pool.Submission{Project: lock,
		Blocks: []pool.BlockRun{{Name: "load", Type: "csv.read"}, {Name: "save", Type: "csv.write"}}})
	if err != nil {
		t.Fatalf("Submit(%s): %v", lock, err)
	}
	return job
}

// awaitRun waits until the runner runs job id.
func (b *bundle) awaitRun(t *testing.T, id string) *pooltest.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	run, err := b.runner.Await(ctx, id)
	if err != nil {
		t.Fatalf("waiting for job %s to run: %v", id, err)
	}
	return run
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// get sends a GET to the bundle's server and returns the response with
// its body.
func (b *bundle) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(b.server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// measured reports whether v holds a value.
func measured(v float64) bool {
	return !math.IsNaN(v)
}
