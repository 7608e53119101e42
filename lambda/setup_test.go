package lambda_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"github.com/lambdaflow/lambdaflow/examples"
	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	goleak.VerifyTestMain(m)
}

// awaitTimeout bounds every wait of a test, so that a bug fails the test
// instead of hanging it. Tests never sleep to synchronise.
const awaitTimeout = 30 * time.Second

// bundle is what setup returns: a real server on loopback over a real
// SQLite file, pool, executor and lambda service.
type bundle struct {
	url      string
	filesDir string
	pool     *pool.Pool
	service  *lambda.Service
	gate     *gatedRunner
	// clockOffset is added to the real time on the service's clock.
	clockOffset atomic.Int64
}

type options struct {
	gated  bool
	config lambda.Config
	// queueLimit bounds the pool's waiting jobs; 0 is the pool's default.
	queueLimit int
}

func setup(t *testing.T, opts options) *bundle {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	b := &bundle{filesDir: filepath.Join(dir, "files")}

	db, err := database.Open(ctx, filepath.Join(dir, "lambdaflow.db"))
	if err != nil {
		t.Fatalf("opening database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	projectStore := projects.NewSQLStore(db)
	if _, err := examples.Install(ctx, b.filesDir, projectStore); err != nil {
		t.Fatalf("installing examples: %v", err)
	}

	outputRoot := filepath.Join(dir, "jobs")
	var runner pool.Runner = projects.NewExecutor(projects.ExecutorConfig{FilesDir: b.filesDir, OutputRoot: outputRoot})
	if opts.gated {
		b.gate = newGatedRunner(runner)
		runner = b.gate
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.pool, err = pool.New(pool.Config{ConcurrentJobs: 2, MaxConcurrentJobs: 2, QueueLimit: opts.queueLimit, OutputRoot: outputRoot, Logger: logger},
		pool.NewSQLStore(db), runner)
	if err != nil {
		t.Fatalf("creating pool: %v", err)
	}
	if err := b.pool.Start(ctx); err != nil {
		t.Fatalf("starting pool: %v", err)
	}
	t.Cleanup(b.pool.Stop)

	cfg := opts.config
	cfg.FilesDir = b.filesDir
	cfg.Logger = logger
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Hour // tests call Sweep themselves
	}
	b.service, err = lambda.New(cfg, lambda.NewSQLStore(db), projectStore, b.pool)
	if err != nil {
		t.Fatalf("creating lambda service: %v", err)
	}
	b.service.SetClock(func() time.Time { return time.Now().Add(time.Duration(b.clockOffset.Load())) })
	if err := b.service.Start(ctx); err != nil {
		t.Fatalf("starting lambda service: %v", err)
	}
	t.Cleanup(b.service.Stop)
	if b.gate != nil {
		// Cleanups run last in, first out: open the gate before the pool
		// and the service stop.
		t.Cleanup(b.gate.open)
	}

	router := gin.New()
	router.Use(httpapi.Middleware(logger))
	v1 := router.Group("/api/v1")
	projects.NewAPI(projectStore, b.pool, projects.APIConfig{Logger: logger}).Register(v1)
	b.pool.Register(v1)
	b.service.Register(v1)
	b.service.RegisterWorkflowRoutes(router)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

// advanceClock moves the service's clock forward by d.
func (b *bundle) advanceClock(d time.Duration) {
	b.clockOffset.Add(int64(d))
}

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding response %s: %v", r.body, err)
	}
}

func (b *bundle) do(t *testing.T, method, path, contentType string, body io.Reader) *response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), awaitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading %s %s: %v", method, path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: data}
}

func (b *bundle) post(t *testing.T, path string, body any) *response {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, http.MethodPost, path, "application/json", bytes.NewReader(data))
}

func (b *bundle) get(t *testing.T, path string) *response {
	t.Helper()
	return b.do(t, http.MethodGet, path, "", nil)
}

// invoke posts a lambda request and decodes the job it returns.
func (b *bundle) invoke(t *testing.T, project string, body any, wantStatus int) *pool.Job {
	t.Helper()
	res := b.post(t, "/api/v1/projects/"+project+"/lambda", body)
	if res.status != wantStatus {
		t.Fatalf("lambda status = %d, want %d; body %s", res.status, wantStatus, res.body)
	}
	var job pool.Job
	res.decode(t, &job)
	return &job
}

// createProject stores a project definition given as JSON.
func (b *bundle) createProject(t *testing.T, definition string) {
	t.Helper()
	res := b.do(t, http.MethodPost, "/api/v1/projects", "application/json", bytes.NewReader([]byte(definition)))
	if res.status != http.StatusCreated {
		t.Fatalf("creating project: status %d, body %s", res.status, res.body)
	}
}

// awaitJob waits for the job to end through the pool's Await.
func (b *bundle) awaitJob(t *testing.T, id string) *pool.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), awaitTimeout)
	defer cancel()
	job, err := b.pool.Await(ctx, id)
	if err != nil {
		t.Fatalf("waiting for job %s: %v", id, err)
	}
	return job
}

// gatedRunner holds every run until the test releases it, and records the
// order of starts and the most runs in progress at once.
type gatedRunner struct {
	inner   pool.Runner
	started chan string
	release chan struct{}
	// opened is closed to let every run through, at the end of a test.
	opened    chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	running    int
	maxRunning int
}

func newGatedRunner(inner pool.Runner) *gatedRunner {
	return &gatedRunner{inner: inner, started: make(chan string), release: make(chan struct{}), opened: make(chan struct{})}
}

func (g *gatedRunner) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	g.mu.Lock()
	g.running++
	g.maxRunning = max(g.maxRunning, g.running)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()

	select {
	case g.started <- job.ID:
	case <-g.opened:
	case <-ctx.Done():
		return pool.Outcome{}, ctx.Err()
	}
	select {
	case <-g.release:
	case <-g.opened:
	case <-ctx.Done():
		return pool.Outcome{}, ctx.Err()
	}
	return g.inner.Run(ctx, job, update)
}

func (g *gatedRunner) open() {
	g.closeOnce.Do(func() { close(g.opened) })
}

// nextStart returns the id of the next job that started.
func (g *gatedRunner) nextStart(t *testing.T) string {
	t.Helper()
	select {
	case id := <-g.started:
		return id
	case <-time.After(awaitTimeout):
		t.Fatal("no job started in time")
		return ""
	}
}

// releaseOne lets one held run go on.
func (g *gatedRunner) releaseOne(t *testing.T) {
	t.Helper()
	select {
	case g.release <- struct{}{}:
	case <-time.After(awaitTimeout):
		t.Fatal("no run waited for release in time")
	}
}

func (g *gatedRunner) maxConcurrent() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxRunning
}

// monthSummary is one expected row of seattle-weather's result.
type monthSummary struct {
	days          int
	precipitation float64
	tempMaxSum    float64
}

// expectedWeather computes seattle-weather's result rows for one weather
// and year straight from the CSV file, by month.
func expectedWeather(t *testing.T, filesDir, weather string, year int) map[int]*monthSummary {
	t.Helper()
	f, err := os.Open(filepath.Join(filesDir, "seattle-weather.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	months := map[int]*monthSummary{}
	for _, rec := range records[1:] { // date,precipitation,temp_max,temp_min,wind,weather
		date, err := time.Parse("2006-01-02", rec[0])
		if err != nil {
			t.Fatal(err)
		}
		if rec[5] != weather || date.Year() != year {
			continue
		}
		precipitation, _ := strconv.ParseFloat(rec[1], 64)
		tempMax, _ := strconv.ParseFloat(rec[2], 64)
		m := months[int(date.Month())]
		if m == nil {
			m = &monthSummary{}
			months[int(date.Month())] = m
		}
		m.days++
		m.precipitation += precipitation
		m.tempMaxSum += tempMax
	}
	return months
}

// checkWeatherRows compares a job's result with the expected summary.
func checkWeatherRows(t *testing.T, job *pool.Job, want map[int]*monthSummary) {
	t.Helper()
	if job.Result == nil {
		t.Fatalf("job %s has no result", job.ID)
	}
	if len(job.Result.Rows) != len(want) {
		t.Fatalf("job %s (%v) has %d rows, want %d", job.ID, job.Parameters, len(job.Result.Rows), len(want))
	}
	previous := 0
	for _, row := range job.Result.Rows {
		month := int(number(t, row["month"]))
		if month <= previous {
			t.Errorf("job %s: month %d follows month %d, want ascending months", job.ID, month, previous)
		}
		previous = month
		w := want[month]
		if w == nil {
			t.Errorf("job %s: unexpected month %d", job.ID, month)
			continue
		}
		if days := int(number(t, row["days"])); days != w.days {
			t.Errorf("job %s month %d: days = %d, want %d", job.ID, month, days, w.days)
		}
		if got := number(t, row["precipitation"]); !near(got, w.precipitation) {
			t.Errorf("job %s month %d: precipitation = %v, want %v", job.ID, month, got, w.precipitation)
		}
		if got := number(t, row["avg_temp_max"]); !near(got, w.tempMaxSum/float64(w.days)) {
			t.Errorf("job %s month %d: avg_temp_max = %v, want %v", job.ID, month, got, w.tempMaxSum/float64(w.days))
		}
	}
}

func number(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			t.Fatalf("not a number: %v", x)
		}
		return f
	}
	t.Fatalf("not a number: %#v", v)
	return 0
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}
