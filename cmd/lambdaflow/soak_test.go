package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/goleak"
)

// soakDuration returns how long TestSoak loads the server: 3s, or the
// Go duration in LAMBDAFLOW_SOAK.
func soakDuration(t *testing.T) time.Duration {
	text := os.Getenv("LAMBDAFLOW_SOAK")
	if text == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 {
		t.Fatalf("LAMBDAFLOW_SOAK=%q is not a positive Go duration such as 60s", text)
	}
	return d
}

// endCounter reads the service's JSON log and counts, per job, the lines
// that record its end.
type endCounter struct {
	mu      sync.Mutex // guards ends and partial
	ends    map[string]int
	partial []byte
}

func (e *endCounter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.partial = append(e.partial, p...)
	for {
		line, rest, found := bytes.Cut(e.partial, []byte("\n"))
		if !found {
			break
		}
		var entry struct {
			Msg   string `json:"msg"`
			JobID string `json:"job_id"`
		}
		if json.Unmarshal(line, &entry) == nil && (entry.Msg == "job finished" || entry.Msg == "job ended by recovery") {
			e.ends[entry.JobID]++
		}
		e.partial = append(e.partial[:0], rest...)
	}
	return len(p), nil
}

func (e *endCounter) count(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ends[id]
}

// soakFigures are the counts TestSoak logs.
type soakFigures struct {
	requests, accepted, rejected, stops, settings, polls atomic.Int64
}

// soakClient is one of the clients of TestSoak. It alone executes its
// project, so its execute submissions keep their order.
type soakClient struct {
	crashClient
	base    string
	figures *soakFigures
	ledger  *ledger
	stopped *sync.Map
}

// step sends one random request: a submission, a poll, a stop or a
// change of the slot limit. Any 5xx fails the test.
func (c *soakClient) step(t *testing.T) {
	switch n := c.rng.IntN(100); {
	case n < 45:
		if sub := c.submit(t, c.base); sub != nil {
			c.ledger.add(*sub)
			c.figures.accepted.Add(1)
		}
	case n < 75:
		c.figures.polls.Add(1)
		c.send(t, "GET", "/api/v1/jobs/"+c.someJob(), "")
	case n < 85:
		id := c.someJob()
		if status := c.send(t, "POST", "/api/v1/jobs/"+id+"/stop", `{"reason": "soak"}`); status == http.StatusOK {
			c.stopped.Store(id, true)
			c.figures.stops.Add(1)
		}
	case n < 90:
		c.figures.settings.Add(1)
		c.send(t, "PATCH", "/api/v1/settings", fmt.Sprintf(`{"concurrentJobs": %d}`, 1+c.rng.IntN(4)))
	default:
		c.send(t, "GET", "/api/v1/jobs?limit=20&state=RUNNING", "")
	}
	c.figures.requests.Add(1)
}

// someJob returns the id of a random accepted job, or a made-up id.
func (c *soakClient) someJob() string {
	subs := c.ledger.all()
	if len(subs) == 0 {
		return "01900000-0000-7000-8000-000000000000"
	}
	return subs[c.rng.IntN(len(subs))].id
}

func (c *soakClient) send(t *testing.T, method, path, body string) int {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s: status %d, body %s", method, path, resp.StatusCode, data)
	}
	if resp.StatusCode >= 400 {
		c.figures.rejected.Add(1)
	}
	return resp.StatusCode
}

// serveInProcess runs serve in this process on a loopback port and
// returns its base URL and a function that stops it and waits.
func serveInProcess(t *testing.T, ends *endCounter, args ...string) (string, func()) {
	t.Helper()
	cfg := &serveConfig{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.bindFlags(fs)
	all := append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json",
		"--log-level", "debug", "--shutdown-grace", "5s"}, args...)
	if err := fs.Parse(all); err != nil {
		t.Fatal(err)
	}
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	cfg.logOutput = ends
	addr := make(chan string, 1)
	cfg.serving = func(a string) { addr <- a }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg) }()
	select {
	case a := <-addr:
		return "http://" + a, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("serve returned before serving: %v", err)
	}
	return "", nil
}

// heapInUse returns the live heap after a collection, in bytes.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSoak lets 16 clients submit, poll, stop and change the slot limit
// at once against a server in this process, for 3s or LAMBDAFLOW_SOAK.
// Afterwards every accepted job must have ended exactly once, no project
// may have run two jobs at once, the slot cap must have held, no lock may
// be left held, the heap must be back near its start, and no goroutine
// may be left behind.
func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	ignore := goleak.IgnoreCurrent()
	ends := &endCounter{ends: map[string]int{}}
	base, stop := serveInProcess(t, ends, "--concurrent-jobs", "2")
	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	// Every request of the soak is checked against the OpenAPI document.
	s := &instance{t: t, base: base, spec: newSpecValidator(t, false)}
	s.spec.base = transport
	s.client = s.spec.client()
	httpClient := &http.Client{Transport: s.spec, Timeout: 30 * time.Second}

	const clientCount = 16
	delays := make([]float64, clientCount)
	clients := make([]*soakClient, clientCount)
	var l ledger
	var stopped sync.Map
	figures := &soakFigures{}
	for i := range clients {
		delays[i] = 0.005 * float64(1+i%4)
		name := fmt.Sprintf("sleeper-%d", i)
		s.createSleeper(name, delays[i])
		clients[i] = &soakClient{
			crashClient: crashClient{project: name, rng: rand.New(rand.NewPCG(uint64(i), 7)), httpClient: httpClient},
			base:        base, figures: figures, ledger: &l, stopped: &stopped,
		}
	}
	heapBefore := heapInUse()
	goroutinesBefore := runtime.NumGoroutine()

	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) && !t.Failed() {
				c.step(t)
			}
		})
	}
	wg.Wait()

	subs := l.all()
	jobs := waitAllFinal(t, s, subs, 120*time.Second)
	checkSoakEnds(t, subs, jobs, ends, &stopped)
	checkProjectOrder(t, subs, jobs)
	var settings struct {
		MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	}
	expectStatus(t, s.do("GET", "/api/v1/settings", nil, &settings), http.StatusOK)
	checkSlotLimit(t, jobs, min(4, settings.MaxConcurrentJobs))
	checkLambdaOrder(t, subs, jobs)
	checkIdle(t, s, delays)

	transport.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	heapAfter := heapInUse()
	if t.Failed() {
		return
	}
	t.Logf("soak %s, %d clients: %d requests (%d rejected with 4xx), %d jobs accepted, %d stopped, %d slot changes, %d polls; "+
		"jobs lost 0, duplicates 0; heap %d MiB before, %d MiB after; goroutines %d while serving",
		duration, clientCount, figures.requests.Load(), figures.rejected.Load(), len(subs), figures.stops.Load(),
		figures.settings.Load(), figures.polls.Load(), heapBefore>>20, heapAfter>>20, goroutinesBefore)
	if heapAfter > heapBefore+64<<20 {
		t.Errorf("heap grew from %d MiB to %d MiB over the soak, want at most 64 MiB more", heapBefore>>20, heapAfter>>20)
	}

	stop()
	goleak.VerifyNone(t, ignore)
}

// checkSoakEnds checks that every accepted job ended exactly once:
// COMPLETED, or CANCELLED by a stop that a client sent, with at most one
// end in the log.
func checkSoakEnds(t *testing.T, subs []submission, jobs map[string]crashJob, ends *endCounter, stopped *sync.Map) {
	t.Helper()
	for _, sub := range subs {
		j := jobs[sub.id]
		_, wasStopped := stopped.Load(sub.id)
		switch {
		case j.State == "COMPLETED":
		case j.State == "CANCELLED" && wasStopped:
		default:
			t.Errorf("job %s of %s: state %s, error %+v; want COMPLETED, or CANCELLED after a stop", j.ID, j.Project, j.State, j.Error)
		}
		if n := ends.count(sub.id); n > 1 {
			t.Errorf("job %s: its end was logged %d times, want once", sub.id, n)
		}
	}
}
