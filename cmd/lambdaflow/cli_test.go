package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/auth"
)

// cliResult is the outcome of one run of the lambdaflow binary.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary with args against s, with LAMBDAFLOW_SERVER set
// to s's address and LAMBDAFLOW_TOKEN to token when it is not empty.
func runCLI(t *testing.T, s *instance, token string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "LAMBDAFLOW_SERVER="+s.base, "LAMBDAFLOW_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running lambdaflow %v: %v", args, err)
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

func expectExit(t *testing.T, r cliResult, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func TestCLIInvokeWaitPrintsTable(t *testing.T) {
	s := startServer(t, t.TempDir())
	r := runCLI(t, s, "", "invoke", "seattle-weather", "--param", "weather=sun", "--param", "year=2013", "--wait")
	expectExit(t, r, exitOK)

	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 13 {
		t.Fatalf("stdout has %d lines, want a header and 12 months:\n%s", len(lines), r.stdout)
	}
	if header := strings.Fields(lines[0]); !slices.Equal(header, []string{"avg_temp_max", "days", "month", "precipitation"}) {
		t.Errorf("header %q", header)
	}
	// Sunny days of July 2013, as the example data has them.
	if july := strings.Fields(lines[7]); len(july) != 4 || july[1] != "28" || july[2] != "7" {
		t.Errorf("July row %q, want 28 sunny days in month 7", lines[7])
	}
	for _, block := range []string{"load", "pick", "monthly", "save"} {
		if !strings.Contains(r.stderr, "block "+block) || !strings.Contains(r.stderr, "COMPLETED") {
			t.Errorf("stderr does not show block %s completing:\n%s", block, r.stderr)
		}
	}
}

func TestCLIOutputJSON(t *testing.T) {
	s := startServer(t, t.TempDir())
	r := runCLI(t, s, "", "execute", "seattle-weather", "--wait", "--output", "json")
	expectExit(t, r, exitOK)
	var job struct {
		State  string `json:"state"`
		Result struct {
			Total int `json:"total"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
		t.Fatalf("stdout is not a JSON job: %v\n%s", err, r.stdout)
	}
	if job.State != "COMPLETED" || job.Result.Total != 12 {
		t.Errorf("job state %s, result total %d", job.State, job.Result.Total)
	}

	r = runCLI(t, s, "", "settings", "--concurrent-jobs", "1", "-o", "json")
	expectExit(t, r, exitOK)
	var settings map[string]int
	if err := json.Unmarshal([]byte(r.stdout), &settings); err != nil || settings["requestedConcurrentJobs"] != 1 {
		t.Errorf("settings output %s (%v)", r.stdout, err)
	}
}

func TestCLIExitCodes(t *testing.T) {
	s := startServer(t, t.TempDir())
	failing := map[string]any{
		"name": "always-fails",
		"blocks": []any{
			map[string]any{"name": "rows", "type": "inline", "options": map[string]any{"rows": []any{map[string]any{"n": 1}}}},
			map[string]any{"name": "check", "type": "assert", "inputs": []any{"rows"},
				"options": map[string]any{"where": "n > 1", "message": "n must exceed 1"}},
		},
	}
	expectStatus(t, s.do("POST", "/api/v1/projects", failing, nil), http.StatusCreated)
	s.createSleeper("sleepy", 3600)

	r := runCLI(t, s, "", "invoke", "always-fails", "--wait")
	expectExit(t, r, exitFailed)
	if !strings.Contains(r.stderr, "n must exceed 1") {
		t.Errorf("stderr does not give the failure:\n%s", r.stderr)
	}

	r = runCLI(t, s, "", "execute", "sleepy")
	expectExit(t, r, exitOK)
	id := strings.Fields(r.stdout)[0]
	s.waitState(id, "RUNNING")
	expectExit(t, runCLI(t, s, "", "stop", id, "--reason", "test"), exitOK)
	expectExit(t, runCLI(t, s, "", "job", id, "--wait"), exitCancelled)

	expectExit(t, runCLI(t, s, "", "invoke"), exitUsage)
	expectExit(t, runCLI(t, s, "", "invoke", "seattle-weather", "--param", "year"), exitUsage)
	expectExit(t, runCLI(t, s, "", "jobs", "--no-such-flag"), exitUsage)
	expectExit(t, runCLI(t, s, "", "job", "not-a-uuid"), exitUsage)
	r = runCLI(t, s, "", "projects", "--server", strings.TrimPrefix(s.base, "http://"))
	expectExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--server") {
		t.Errorf("stderr does not name --server:\n%s", r.stderr)
	}
	expectExit(t, runCLI(t, s, "", "invoke", "no-such-project"), exitRejected)
	r = runCLI(t, s, "", "invoke", "seattle-weather", "--param", "year=1999")
	expectExit(t, r, exitRejected)
	if !strings.Contains(r.stderr, "parameters.year") {
		t.Errorf("stderr does not name the invalid parameter:\n%s", r.stderr)
	}
	expectExit(t, runCLI(t, s, "", "stop", id), exitRejected)

	r = runCLI(t, s, "", "jobs", "--state", "cancelled")
	expectExit(t, r, exitOK)
	if !strings.Contains(r.stdout, id) {
		t.Errorf("jobs --state cancelled does not list %s:\n%s", id, r.stdout)
	}
	expectExit(t, runCLI(t, s, "", "projects"), exitOK)

	s.kill()
	expectExit(t, runCLI(t, s, "", "projects"), exitServer)
}

func TestCLIToken(t *testing.T) {
	s := startServer(t, t.TempDir(), "--tokens-file", writeTokensFile(t))
	r := runCLI(t, s, "", "projects")
	expectExit(t, r, exitRejected)
	if !strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Errorf("stderr does not say UNAUTHORIZED:\n%s", r.stderr)
	}
	r = runCLI(t, s, roleTokens[auth.Viewer], "projects")
	expectExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "seattle-weather") {
		t.Errorf("projects output lacks seattle-weather:\n%s", r.stdout)
	}
	expectExit(t, runCLI(t, s, roleTokens[auth.Viewer], "settings", "--concurrent-jobs", "2"), exitRejected)
	expectExit(t, runCLI(t, s, "", "settings", "--token", roleTokens[auth.Admin], "--concurrent-jobs", "2"), exitOK)
}
