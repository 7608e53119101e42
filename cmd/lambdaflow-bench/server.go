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
	"strings"
	"time"
)

// server is a lambdaflow process on a loopback port with its own data
// directory.
type server struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
	exited chan struct{}
}

// startServer starts the binary with two slots, no example projects and
// any extra flags, and returns once it serves.
func startServer(ctx context.Context, opts options, name string, flags ...string) (*server, error) {
	dataDir := filepath.Join(opts.workDir, name)
	if err := os.MkdirAll(filepath.Join(dataDir, "files"), 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--log-format", "json", "--concurrent-jobs", "2", "--examples=false", "--queue-limit", "100000"}, flags...)
	cmd := exec.CommandContext(ctx, opts.binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting lambdaflow: %w", err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go readServerLog(stderr, addr)
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.exited:
		return nil, fmt.Errorf("lambdaflow exited before serving")
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("lambdaflow did not serve within 30s")
	}
	s.client = &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0},
	}
	return s, nil
}

// readServerLog sends the address of the "lambdaflow serving" entry and
// passes on warnings and errors.
func readServerLog(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Addr  string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		if entry.Msg == "lambdaflow serving" {
			addr <- entry.Addr
		}
		if entry.Level == "WARN" || entry.Level == "ERROR" {
			fmt.Fprintln(os.Stderr, "lambdaflow:", sc.Text())
		}
	}
}

// stop kills the process and waits for it.
func (s *server) stop() {
	s.cmd.Process.Kill()
	<-s.exited
}

// call sends a JSON request and decodes a JSON response into out when out
// is not nil. It returns the status code.
func (s *server) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, reader)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding the response: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// createProject stores a project definition given as JSON text.
func (s *server) createProject(ctx context.Context, definition string) error {
	_, err := s.call(ctx, http.MethodPost, "/api/v1/projects", json.RawMessage(definition), nil)
	return err
}

// jobView is the part of a job the suite reads.
type jobView struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// trivialProject is the project of the job overhead test: one row inline
// and a limit.
const trivialProject = `{"name": "trivial", "blocks": [
	{"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}},
	{"name": "first", "type": "limit", "inputs": ["rows"], "options": {"rows": 1}}],
	"result": "first"}`

// smallProject is the small workflow of the lambda latency test: 20 rows
// inline, filtered, aggregated and sorted, with a parameter.
var smallProject = func() string {
	var rows []string
	for i := range 20 {
		rows = append(rows, fmt.Sprintf(`{"city": "c%d", "n": %d}`, i%4, i))
	}
	return `{"name": "small",
	"parameters": [{"name": "min", "type": "integer", "default": 0}],
	"blocks": [
	{"name": "rows", "type": "inline", "options": {"rows": [` + strings.Join(rows, ", ") + `]}},
	{"name": "pick", "type": "filter", "inputs": ["rows"], "options": {"where": "n >= params.min"}},
	{"name": "sum", "type": "aggregate", "inputs": ["pick"], "options": {"groupBy": ["city"], "aggregates": {"total": "sum(n)", "count": "count()"}}},
	{"name": "sorted", "type": "sort", "inputs": ["sum"], "options": {"by": "total", "desc": true}}],
	"result": "sorted"}`
}()

// sleeperProject holds a slot for an hour, to keep the pool busy.
const sleeperProject = `{"name": "sleeper", "blocks": [
	{"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}},
	{"name": "wait", "type": "delay", "inputs": ["rows"], "options": {"seconds": 3600}}]}`
