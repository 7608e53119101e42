package projects

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lambdaflow/lambdaflow/pool"
)

// recorder collects the block updates of one run.
type recorder struct {
	mu   sync.Mutex
	last map[string]pool.BlockRun
}

func (r *recorder) update(run pool.BlockRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[run.Name] = run
}

func (r *recorder) get(name string) pool.BlockRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[name]
}

func runProject(t *testing.T, ctx context.Context, src string, params map[string]any, only ...string) (pool.Outcome, *recorder, error) {
	t.Helper()
	p := mustProject(t, src)
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("invalid test project: %+v", errs)
	}
	def, _ := json.Marshal(p)
	e := NewExecutor(ExecutorConfig{FilesDir: "../examples/files", OutputRoot: t.TempDir()})
	rec := &recorder{last: map[string]pool.BlockRun{}}
	job := &pool.Job{ID: "job-1", Definition: def, Parameters: params, Only: only}
	out, err := e.Run(ctx, job, rec.update)
	return out, rec, err
}

func TestExecutorRunsBranchesConcurrently(t *testing.T) {
	src := `{"name": "x", "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}},
	  {"name": "left", "type": "delay", "inputs": ["rows"], "options": {"seconds": 0.2}},
	  {"name": "right", "type": "delay", "inputs": ["rows"], "options": {"seconds": 0.2}},
	  {"name": "both", "type": "append", "inputs": ["left", "right"]}], "result": "both"}`
	out, rec, err := runProject(t, context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	left, right := rec.get("left"), rec.get("right")
	if !left.StartedAt.Before(right.FinishedAt.Time) || !right.StartedAt.Before(left.FinishedAt.Time) {
		t.Errorf("branches did not overlap: left %v..%v, right %v..%v",
			left.StartedAt, left.FinishedAt, right.StartedAt, right.FinishedAt)
	}
	if out.Result == nil || out.Result.Total != 2 {
		t.Fatalf("result = %+v, want 2 rows", out.Result)
	}
}

func TestExecutorSkipsDownstreamOfFailure(t *testing.T) {
	src := `{"name": "x", "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}, {"n": 2}]}},
	  {"name": "check", "type": "assert", "inputs": ["rows"], "options": {"where": "n < 2", "message": "n too big"}},
	  {"name": "after", "type": "limit", "inputs": ["check"], "options": {"rows": 1}},
	  {"name": "other", "type": "limit", "inputs": ["rows"], "options": {"rows": 1}}]}`
	_, rec, err := runProject(t, context.Background(), src, nil)
	var blockErr *pool.BlockError
	if !errors.As(err, &blockErr) || blockErr.Block != "check" {
		t.Fatalf("error = %v, want a BlockError of block check", err)
	}
	if got := rec.get("check").State; got != pool.BlockFailed {
		t.Errorf("check: %s, want FAILED", got)
	}
	if got := rec.get("after").State; got != pool.BlockSkipped {
		t.Errorf("after: %s, want SKIPPED", got)
	}
	if got := rec.get("other").State; got != pool.BlockCompleted {
		t.Errorf("independent branch: %s, want COMPLETED", got)
	}
}

func TestExecutorRunsOnlySelectedBlocks(t *testing.T) {
	src := `{"name": "x", "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"n": 1}]}},
	  {"name": "a", "type": "limit", "inputs": ["rows"], "options": {"rows": 1}},
	  {"name": "b", "type": "limit", "inputs": ["rows"], "options": {"rows": 1}}]}`
	_, rec, err := runProject(t, context.Background(), src, nil, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.get("rows").State; got != pool.BlockCompleted {
		t.Errorf("rows (needed by a): %s, want COMPLETED", got)
	}
	if got := rec.get("b").State; got != pool.BlockSkipped {
		t.Errorf("b (not selected): %s, want SKIPPED", got)
	}
}

func TestExecutorSubstitutesPlaceholders(t *testing.T) {
	src := `{"name": "x", "parameters": [{"name": "n", "type": "integer"}, {"name": "tag", "type": "text"}],
	  "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"v": 1}, {"v": 2}, {"v": 3}]}},
	  {"name": "few", "type": "limit", "inputs": ["rows"], "options": {"rows": "${n}"}},
	  {"name": "save", "type": "csv.write", "inputs": ["few"], "options": {"path": "out-${tag}.csv"}}], "result": "few"}`
	out, _, err := runProject(t, context.Background(), src, map[string]any{"n": 2.0, "tag": "a\"b"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result.Total != 2 {
		t.Errorf("limit ${n} with n=2 returned %d rows", out.Result.Total)
	}
	if len(out.Outputs) != 1 || out.Outputs[0].Name != `out-a"b.csv` {
		t.Errorf("outputs = %+v, want out-a\"b.csv", out.Outputs)
	}
}

func TestExecutorRejectsEscapingPlaceholder(t *testing.T) {
	src := `{"name": "x", "parameters": [{"name": "dir", "type": "text"}], "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"v": 1}]}},
	  {"name": "save", "type": "csv.write", "inputs": ["rows"], "options": {"path": "${dir}/out.csv"}}]}`
	_, rec, err := runProject(t, context.Background(), src, map[string]any{"dir": "../.."})
	if err == nil {
		t.Fatal("a path leaving the output directory ran without error")
	}
	if got := rec.get("save").State; got != pool.BlockFailed {
		t.Errorf("save: %s, want FAILED", got)
	}
}

func TestExecutorCancelsPromptly(t *testing.T) {
	src := `{"name": "x", "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"v": 1}]}},
	  {"name": "wait", "type": "delay", "inputs": ["rows"], "options": {"seconds": 3600}},
	  {"name": "after", "type": "limit", "inputs": ["wait"], "options": {"rows": 1}}]}`
	ctx, cancel := context.WithCancel(context.Background())
	p := mustProject(t, src)
	def, _ := json.Marshal(p)
	e := NewExecutor(ExecutorConfig{FilesDir: "../examples/files", OutputRoot: t.TempDir()})
	rec := &recorder{last: map[string]pool.BlockRun{}}
	started := make(chan struct{})
	var once sync.Once
	update := func(run pool.BlockRun) {
		rec.update(run)
		if run.Name == "wait" && run.State == pool.BlockRunning {
			once.Do(func() { close(started) })
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, &pool.Job{ID: "j", Definition: def}, update)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if got := rec.get("wait").State; got != pool.BlockCancelled {
		t.Errorf("wait: %s, want CANCELLED", got)
	}
	if got := rec.get("after").State; got != pool.BlockSkipped {
		t.Errorf("after: %s, want SKIPPED", got)
	}
}

func TestExecutorFailsOnInfiniteResult(t *testing.T) {
	src := `{"name": "x", "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"n": 0}]}},
	  {"name": "ratio", "type": "compute", "inputs": ["rows"], "options": {"fields": {"r": "1 / n"}}}], "result": "ratio"}`
	_, _, err := runProject(t, context.Background(), src, nil)
	var blockErr *pool.BlockError
	if !errors.As(err, &blockErr) || blockErr.Block != "ratio" {
		t.Fatalf("error = %v, want a BlockError of the result block", err)
	}
}

func TestExecutorKeepsInlineIntegers(t *testing.T) {
	src := `{"name": "x", "blocks": [
	  {"name": "rows", "type": "inline", "options": {"rows": [{"n": 7}]}},
	  {"name": "mod", "type": "compute", "inputs": ["rows"], "options": {"fields": {"m": "n % 4"}}}], "result": "mod"}`
	p := mustProject(t, src)
	def, _ := json.Marshal(p)
	e := NewExecutor(ExecutorConfig{FilesDir: "../examples/files", OutputRoot: t.TempDir()})
	out, err := e.Run(context.Background(), &pool.Job{ID: "j", Definition: def}, func(pool.BlockRun) {})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Result.Rows[0]["n"]; got != int64(7) {
		t.Errorf("n = %#v, want int64 7", got)
	}
	if got := out.Result.Rows[0]["m"]; got != int64(3) {
		t.Errorf("n %% 4 = %#v, want int64 3", got)
	}
}

func TestExecutorHidesServerPaths(t *testing.T) {
	src := `{"name": "x", "blocks": [{"name": "load", "type": "csv.read", "options": {"path": "missing.csv"}}]}`
	_, rec, err := runProject(t, context.Background(), src, nil)
	if err == nil {
		t.Fatal("reading a missing file succeeded")
	}
	abs, _ := filepath.Abs("../examples/files")
	for _, msg := range []string{err.Error(), *rec.get("load").Error} {
		if strings.Contains(msg, abs) || strings.Contains(msg, "examples/files") {
			t.Errorf("error %q shows the server's files directory", msg)
		}
	}
}
