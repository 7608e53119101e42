package lambda_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

// BenchmarkInvokeWait measures one waiting lambda invocation of a trivial
// project (an inline block and a limit) over HTTP on loopback, with two
// slots, a real SQLite file and 4 concurrent clients per core. It is the
// path of the job overhead test of `make bench`, in one process so that a
// CPU profile covers the server.
func BenchmarkInvokeWait(b *testing.B) {
	url := startBenchServer(b)
	body := []byte(`{"wait": "60s"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Post(url+"/api/v1/projects/trivial/lambda", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d, want 200", res.StatusCode)
				return
			}
		}
	})
}

// startBenchServer wires the projects, pool and lambda packages on one
// SQLite file as the binary does and returns the server's URL with the
// trivial project stored.
func startBenchServer(b *testing.B) string {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := database.OpenWith(ctx, filepath.Join(dir, "lambdaflow.db"), database.Options{BackgroundCheckpoints: true})
	if err != nil {
		b.Fatalf("opening database: %v", err)
	}
	b.Cleanup(func() { db.Close() })
	checkpointer := database.NewCheckpointer(db, 0, nil)
	if err := checkpointer.Start(ctx); err != nil {
		b.Fatalf("starting checkpointer: %v", err)
	}
	b.Cleanup(checkpointer.Stop)
	logger := slog.New(slog.DiscardHandler)
	filesDir, outputRoot := filepath.Join(dir, "files"), filepath.Join(dir, "jobs")
	projectStore := projects.NewSQLStore(db)
	executor := projects.NewExecutor(projects.ExecutorConfig{FilesDir: filesDir, OutputRoot: outputRoot, Logger: logger})
	p, err := pool.New(pool.Config{ConcurrentJobs: 2, MaxConcurrentJobs: 2, OutputRoot: outputRoot, Logger: logger},
		pool.NewSQLStore(db), executor)
	if err != nil {
		b.Fatalf("creating pool: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		b.Fatalf("starting pool: %v", err)
	}
	b.Cleanup(p.Stop)
	service, err := lambda.New(lambda.Config{FilesDir: filesDir, Logger: logger, SweepInterval: time.Hour},
		lambda.NewSQLStore(db), projectStore, p)
	if err != nil {
		b.Fatalf("creating lambda service: %v", err)
	}
	if err := service.Start(ctx); err != nil {
		b.Fatalf("starting lambda service: %v", err)
	}
	b.Cleanup(service.Stop)

	router := gin.New()
	router.Use(httpapi.Middleware(logger))
	v1 := router.Group("/api/v1")
	projects.NewAPI(projectStore, p, projects.APIConfig{Logger: logger}).Register(v1)
	p.Register(v1)
	service.Register(v1)
	srv := httptest.NewServer(router)
	b.Cleanup(srv.Close)

	project := `{"name": "trivial", "blocks": [
		{"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}},
		{"name": "first", "type": "limit", "inputs": ["rows"], "options": {"rows": 1}}], "result": "first"}`
	res, err := http.Post(srv.URL+"/api/v1/projects", "application/json", bytes.NewReader([]byte(project)))
	if err != nil {
		b.Fatalf("creating project: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("creating project: status %d", res.StatusCode)
	}
	return srv.URL
}
