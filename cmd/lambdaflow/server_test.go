package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

// binary is the lambdaflow binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdaflow-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "lambdaflow")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building lambdaflow:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one lambdaflow process started by a test.
type instance struct {
	t       *testing.T
	dataDir string
	cmd     *exec.Cmd
	base    string
	exited  chan struct{}
	// token, when set, is sent by do as "Authorization: Bearer token".
	token string
	// spec checks every request that client sends against the OpenAPI
	// document.
	spec   *specValidator
	client *http.Client
	logMu  sync.Mutex
	log    bytes.Buffer
}

// backendVariable selects the database of the servers that startServer
// starts: "postgres" for a PostgreSQL database per data directory on the
// server at LAMBDAFLOW_TEST_DATABASE_URL, "cluster" for the same with each
// server a one-node cluster (--cluster), empty or "sqlite" for the SQLite
// file in the data directory. `make test-postgres` sets it.
const backendVariable = "LAMBDAFLOW_TEST_BACKEND"

// testNodeName is the node name of every server that startServer starts
// as a one-node cluster.
const testNodeName = "test-node"

// expectedNodeName returns the name /monitor/nodes gives the server that
// startServer starts: its cluster node name, or "local" outside a
// cluster.
func expectedNodeName() string {
	if os.Getenv(backendVariable) == "cluster" {
		return testNodeName
	}
	return "local"
}

// expectedJobNode returns the node a job of a server that startServer
// starts names: its cluster node name, or nil outside a cluster.
func expectedJobNode() any {
	if os.Getenv(backendVariable) == "cluster" {
		return testNodeName
	}
	return nil
}

var (
	databasesMu sync.Mutex
	// databases maps a data directory to the URL of its PostgreSQL
	// database, so that a server restarted on the same data directory
	// finds its data again.
	databases = map[string]string{}
)

// databaseArgs returns the --database flag of a server on dataDir when
// the tests run on PostgreSQL, creating the database the first time.
func databaseArgs(t *testing.T, dataDir string) []string {
	t.Helper()
	switch backend := os.Getenv(backendVariable); backend {
	case "", "sqlite":
		return nil
	case "postgres", "cluster":
		if os.Getenv(databasetest.URLVariable) == "" {
			t.Fatalf("%s=postgres needs %s", backendVariable, databasetest.URLVariable)
		}
	default:
		t.Fatalf("%s=%q, want sqlite, postgres or cluster", backendVariable, backend)
	}
	databasesMu.Lock()
	defer databasesMu.Unlock()
	url, ok := databases[dataDir]
	if !ok {
		url = databasetest.DatabaseURL(t)
		databases[dataDir] = url
		t.Cleanup(func() {
			databasesMu.Lock()
			delete(databases, dataDir)
			databasesMu.Unlock()
		})
	}
	if os.Getenv(backendVariable) == "cluster" {
		// One name per data directory, so that a restarted server finds
		// the jobs of its previous process at once, as a single server
		// does.
		return []string{"--database", url, "--cluster", "--node-name", testNodeName, "--node-lease", "2s"}
	}
	return []string{"--database", url}
}

// startServer runs the binary on a free loopback port with dataDir and
// waits until it logs that it serves.
func startServer(t *testing.T, dataDir string, args ...string) *instance {
	t.Helper()
	all := append(serveArgs(dataDir), databaseArgs(t, dataDir)...)
	return startProcess(t, dataDir, append(all, args...), nil)
}

// serveArgs returns the arguments that start the service on a free
// loopback port with dataDir, logging JSON lines that readLog parses.
func serveArgs(dataDir string) []string {
	return []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--log-format", "json", "--shutdown-grace", "5s"}
}

// startProcess runs the binary with args and, on top of the test's
// environment, the variables in env ("NAME=value"), and waits until it
// logs that it serves. It kills the process when the test ends.
func startProcess(t *testing.T, dataDir string, args, env []string) *instance {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &instance{t: t, dataDir: dataDir, cmd: cmd, exited: make(chan struct{})}
	s.spec = newSpecValidator(t, slices.Contains(args, "--tokens-file"))
	s.client = s.spec.client()
	addr := make(chan string, 1)
	go s.readLog(stderr, addr)
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.kill)

	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.exited:
		t.Fatalf("server exited before serving:\n%s", s.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start within 30s:\n%s", s.logText())
	}
	return s
}

func (s *instance) readLog(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.logMu.Lock()
		s.log.WriteString(line + "\n")
		s.logMu.Unlock()
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "lambdaflow serving" {
			addr <- entry.Addr
		}
	}
}

func (s *instance) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// kill stops the process with SIGKILL and waits for it.
func (s *instance) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// terminate sends SIGTERM and waits for a clean exit.
func (s *instance) terminate() {
	s.t.Helper()
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("server did not stop within 30s of SIGINT")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("server exited with %d:\n%s", code, s.logText())
	}
}

// requestBody returns body as a request body: a string as it is, any
// other value encoded as JSON, nil as no body.
func (s *instance) requestBody(body any) io.Reader {
	s.t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		return bytes.NewReader(data)
	}
}

// do sends a JSON request and decodes a JSON response into out when out
// is not nil. It returns the response with its body read.
func (s *instance) do(method, path string, body any, out any) *http.Response {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.base+path, s.requestBody(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp
}

// expectStatus fails the test unless resp has the status.
func expectStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

// job is the part of a job response the tests read.
type job struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	// Node names the cluster node that runs or ran the job; it is nil
	// outside a cluster.
	Node       *string `json:"node"`
	WaitingFor *struct {
		Reason    string  `json:"reason"`
		BlockedBy *string `json:"blockedBy"`
	} `json:"waitingFor"`
	Blocks []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"blocks"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	Result *struct {
		Rows  []map[string]any `json:"rows"`
		Total int              `json:"total"`
	} `json:"result"`
	Outputs []struct {
		Name  string `json:"name"`
		Bytes int64  `json:"bytes"`
		URL   string `json:"url"`
	} `json:"outputs"`
	StartedAt  *string `json:"startedAt"`
	FinishedAt *string `json:"finishedAt"`
}

func (s *instance) job(id string) job {
	s.t.Helper()
	var j job
	expectStatus(s.t, s.do("GET", "/api/v1/jobs/"+id, nil, &j), http.StatusOK)
	return j
}

// waitJob polls the job until cond holds or 60 seconds pass.
func (s *instance) waitJob(id string, what string, cond func(job) bool) job {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		j := s.job(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s never became %s; last state %s, error %+v", id, what, j.State, j.Error)
		}
		<-tick.C
	}
}

func (s *instance) waitState(id, state string) job {
	s.t.Helper()
	return s.waitJob(id, state, func(j job) bool { return j.State == state })
}

func (s *instance) waitFinal(id string) job {
	s.t.Helper()
	return s.waitJob(id, "final", func(j job) bool {
		return j.State == "COMPLETED" || j.State == "FAILED" || j.State == "CANCELLED"
	})
}

// execute queues a job of the project and returns it.
func (s *instance) execute(project string, body any) job {
	s.t.Helper()
	var j job
	resp := s.do("POST", "/api/v1/projects/"+project+"/execute", body, &j)
	expectStatus(s.t, resp, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); loc != "/api/v1/jobs/"+j.ID {
		s.t.Fatalf("Location = %q, want /api/v1/jobs/%s", loc, j.ID)
	}
	return j
}

// createSleeper stores a project whose job waits in a delay block for
// the given seconds before a final block, so tests can hold a slot.
func (s *instance) createSleeper(name string, seconds float64) {
	s.t.Helper()
	def := map[string]any{
		"name": name,
		"blocks": []any{
			map[string]any{"name": "rows", "type": "inline", "options": map[string]any{"rows": []any{map[string]any{"n": 1}}}},
			map[string]any{"name": "wait", "type": "delay", "inputs": []any{"rows"}, "options": map[string]any{"seconds": seconds}},
			map[string]any{"name": "after", "type": "limit", "inputs": []any{"wait"}, "options": map[string]any{"rows": 10}},
		},
		"result": "after",
	}
	expectStatus(s.t, s.do("POST", "/api/v1/projects", def, nil), http.StatusCreated)
}
