package projects

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects/blocks"
)

// DefaultResultRows is the number of result rows a job returns inline when
// ExecutorConfig.ResultRows is zero.
const DefaultResultRows = 1000

// ExecutorConfig configures an Executor.
type ExecutorConfig struct {
	// FilesDir is the root that reading blocks resolve paths against.
	FilesDir string
	// OutputRoot holds one output directory per job, named by job id.
	OutputRoot string
	// ResultRows caps the result rows returned inline; zero means
	// DefaultResultRows.
	ResultRows int
	// Logger receives panics of blocks; nil means slog.Default().
	Logger *slog.Logger
}

// Executor runs a job's blocks as a DAG: every block starts as soon as its
// inputs are done, so independent branches run concurrently. It implements
// pool.Runner and is safe for concurrent use.
type Executor struct {
	cfg ExecutorConfig
}

// NewExecutor returns an Executor for cfg.
func NewExecutor(cfg ExecutorConfig) *Executor {
	if cfg.ResultRows <= 0 {
		cfg.ResultRows = DefaultResultRows
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Executor{cfg: cfg}
}

// Run executes job's definition snapshot with its parameters. A failing
// block fails the job and the blocks downstream of it are SKIPPED, while
// independent branches finish. When ctx ends, running blocks end
// CANCELLED, blocks not started end SKIPPED and Run returns ctx's error.
func (e *Executor) Run(ctx context.Context, job *pool.Job, update func(pool.BlockRun)) (pool.Outcome, error) {
	var p Project
	if err := decodeJSON(string(job.Definition), &p); err != nil {
		return pool.Outcome{}, fmt.Errorf("decoding definition of job %s: %w", job.ID, err)
	}
	typed, errs := p.Bind("parameters", job.Parameters, nil)
	if len(errs) > 0 {
		return pool.Outcome{}, fmt.Errorf("binding parameters of job %s: %s: %s", job.ID, errs[0].Field, errs[0].Message)
	}
	outDir := job.OutputDir
	if outDir == "" {
		outDir = filepath.Join(e.cfg.OutputRoot, job.ID)
	}
	env := &blocks.Env{FilesDir: e.cfg.FilesDir, OutputDir: outDir, Params: typed}

	r := newDAGRun(&p, selection(&p, job.Only), env, update, e.cfg.Logger.With("job_id", job.ID))
	failed := r.run(ctx)
	if err := ctx.Err(); err != nil {
		return pool.Outcome{}, err
	}
	if failed != nil {
		return pool.Outcome{}, failed
	}
	outputs, err := listOutputs(outDir, job.ID)
	if err != nil {
		return pool.Outcome{}, err
	}
	result, err := r.result(p.Result, e.cfg.ResultRows)
	if err != nil {
		return pool.Outcome{Outputs: outputs}, &pool.BlockError{Block: p.Result, Err: err}
	}
	return pool.Outcome{Result: result, Outputs: outputs}, nil
}

// selection returns the set of blocks to run: those named in only and
// every block they depend on, or all blocks when only is empty.
func selection(p *Project, only []string) map[string]bool {
	selected := map[string]bool{}
	if len(only) == 0 {
		for _, b := range p.Blocks {
			selected[b.Name] = true
		}
		return selected
	}
	var add func(name string)
	add = func(name string) {
		if selected[name] {
			return
		}
		selected[name] = true
		if b, ok := p.block(name); ok {
			for _, in := range b.Inputs {
				add(in)
			}
		}
	}
	for _, name := range only {
		add(name)
	}
	return selected
}

// node is one block of a DAG run. Its fields other than done are written
// by the block's goroutine before done is closed and read only after.
type node struct {
	def   *Block
	done  chan struct{}
	table *blocks.Table
	ok    bool
}

type dagRun struct {
	project  *Project
	selected map[string]bool
	env      *blocks.Env
	update   func(pool.BlockRun)
	logger   *slog.Logger
	nodes    map[string]*node

	mu     sync.Mutex
	failed *pool.BlockError // guarded by mu: the first block that failed
}

func newDAGRun(p *Project, selected map[string]bool, env *blocks.Env, update func(pool.BlockRun), logger *slog.Logger) *dagRun {
	r := &dagRun{project: p, selected: selected, env: env, update: update, logger: logger, nodes: map[string]*node{}}
	for i := range p.Blocks {
		b := &p.Blocks[i]
		r.nodes[b.Name] = &node{def: b, done: make(chan struct{})}
	}
	return r
}

// run starts one goroutine per selected block, waits for all of them and
// returns the first block failure.
func (r *dagRun) run(ctx context.Context) *pool.BlockError {
	var wg sync.WaitGroup
	for i := range r.project.Blocks {
		n := r.nodes[r.project.Blocks[i].Name]
		if !r.selected[n.def.Name] {
			r.report(n.def, pool.BlockSkipped, nil, nil, nil)
			close(n.done)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(n.done)
			r.runNode(ctx, n)
		}()
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *dagRun) runNode(ctx context.Context, n *node) {
	inputs, ok := r.waitInputs(ctx, n)
	if !ok {
		r.report(n.def, pool.BlockSkipped, nil, nil, nil)
		return
	}
	start := time.Now()
	r.report(n.def, pool.BlockRunning, &start, nil, nil)

	table, err := r.execute(ctx, n.def, inputs)
	end := time.Now()
	stats := &rowStats{in: countRows(inputs)}
	switch {
	case err != nil && ctx.Err() != nil:
		r.reportEnd(n.def, pool.BlockCancelled, start, end, stats, ctx.Err())
	case err != nil:
		r.reportEnd(n.def, pool.BlockFailed, start, end, stats, err)
		r.fail(n.def.Name, errors.New(r.redact(err.Error())))
	default:
		stats.out = int64(len(table.Rows))
		n.table, n.ok = table, true
		r.reportEnd(n.def, pool.BlockCompleted, start, end, stats, nil)
	}
}

// waitInputs waits until every input is done and returns their tables,
// or false when an input did not complete or ctx ended first.
func (r *dagRun) waitInputs(ctx context.Context, n *node) ([]*blocks.Table, bool) {
	inputs := make([]*blocks.Table, 0, len(n.def.Inputs))
	for _, name := range n.def.Inputs {
		in := r.nodes[name]
		select {
		case <-in.done:
		case <-ctx.Done():
			return nil, false
		}
		if !in.ok {
			return nil, false
		}
		inputs = append(inputs, in.table)
	}
	return inputs, ctx.Err() == nil
}

// execute substitutes parameters into the block's options, compiles it
// and runs it, turning a panic into an error.
func (r *dagRun) execute(ctx context.Context, def *Block, inputs []*blocks.Table) (table *blocks.Table, err error) {
	defer func() {
		if v := recover(); v != nil {
			r.logger.Error("block panicked", "block", def.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("block panicked: %v", v)
		}
	}()
	kind, ok := blocks.Lookup(def.Type)
	if !ok {
		return nil, fmt.Errorf("unknown block type %q", def.Type)
	}
	options := substitute(def.Options, r.env.Params).(map[string]any)
	block, optErrs := kind.Compile(options, blocks.CompileContext{Params: r.paramTypes()})
	if len(optErrs) > 0 {
		return nil, fmt.Errorf("option %s: %s", optErrs[0].Option, optErrs[0].Message)
	}
	return block.Run(ctx, r.env, inputs)
}

func (r *dagRun) paramTypes() map[string]string {
	types := make(map[string]string, len(r.project.Parameters))
	for _, def := range r.project.Parameters {
		types[def.Name] = def.Type
	}
	return types
}

func (r *dagRun) fail(block string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed == nil {
		r.failed = &pool.BlockError{Block: block, Err: err}
	}
}

type rowStats struct {
	in, out int64
}

func (r *dagRun) reportEnd(def *Block, state pool.BlockState, start, end time.Time, stats *rowStats, err error) {
	run := blockRun(def, state, &start, &end)
	ms := end.Sub(start).Milliseconds()
	run.DurationMs = &ms
	run.RowsIn = &stats.in
	if state == pool.BlockCompleted {
		run.RowsOut = &stats.out
	}
	if err != nil {
		msg := r.redact(err.Error())
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			msg = "cancelled before it finished"
		}
		run.Error = &msg
	}
	r.update(run)
}

// maxErrorBytes caps a block's error message, which may quote a long
// parameter value, so that job records stay small.
const maxErrorBytes = 2000

// redact cuts a long message and removes the server's directories from a block's error message,
// so that API clients see paths relative to the files or output
// directory only.
func (r *dagRun) redact(msg string) string {
	if len(msg) > maxErrorBytes {
		msg = strings.ToValidUTF8(msg[:maxErrorBytes], "") + " ... (cut)"
	}
	for _, dir := range []string{r.env.FilesDir, r.env.OutputDir} {
		if dir == "" {
			continue
		}
		if abs, err := filepath.Abs(dir); err == nil {
			msg = strings.ReplaceAll(msg, abs+string(filepath.Separator), "")
		}
		msg = strings.ReplaceAll(msg, filepath.Clean(dir)+string(filepath.Separator), "")
	}
	return msg
}

func (r *dagRun) report(def *Block, state pool.BlockState, start, end *time.Time, err error) {
	run := blockRun(def, state, start, end)
	if err != nil {
		msg := err.Error()
		run.Error = &msg
	}
	r.update(run)
}

func blockRun(def *Block, state pool.BlockState, start, end *time.Time) pool.BlockRun {
	run := pool.BlockRun{Name: def.Name, Type: def.Type, State: state}
	if start != nil {
		run.StartedAt = timestamp.Ptr(*start)
	}
	if end != nil {
		run.FinishedAt = timestamp.Ptr(*end)
	}
	return run
}

func countRows(tables []*blocks.Table) int64 {
	var n int64
	for _, t := range tables {
		n += int64(len(t.Rows))
	}
	return n
}

// result returns up to limit rows of the named block in JSON form, or nil
// when the block is unnamed or did not complete. A float that is infinite
// or NaN, such as the result of 1 / 0, is an error because JSON cannot
// represent it.
func (r *dagRun) result(name string, limit int) (*pool.Result, error) {
	n, ok := r.nodes[name]
	if name == "" || !ok || !n.ok {
		return nil, nil
	}
	rows := n.table.Rows
	res := &pool.Result{Total: len(rows), Rows: make([]map[string]any, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows, res.Truncated = rows[:limit], true
	}
	for i, row := range rows {
		out, err := jsonRow(row)
		if err != nil {
			return nil, fmt.Errorf("result row %d: %w", i+1, err)
		}
		res.Rows = append(res.Rows, out)
	}
	return res, nil
}

// jsonRow converts a row's times to text: YYYY-MM-DD at midnight UTC,
// RFC 3339 otherwise.
func jsonRow(row blocks.Row) (map[string]any, error) {
	out := make(map[string]any, len(row))
	for k, v := range row {
		switch x := v.(type) {
		case time.Time:
			out[k] = formatText(x)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, fmt.Errorf("field %q is %v, which JSON cannot represent; guard the expression that makes it, such as a division by zero", k, x)
			}
			out[k] = x
		default:
			out[k] = v
		}
	}
	return out, nil
}

// listOutputs lists the files under dir, the output directory of jobID.
func listOutputs(dir, jobID string) ([]pool.Output, error) {
	outputs := []pool.Output{}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return outputs, nil // no block wrote a file
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		outputs = append(outputs, pool.Output{Name: name, Bytes: info.Size(),
			URL: "/api/v1/jobs/" + jobID + "/outputs/" + (&url.URL{Path: name}).EscapedPath()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing outputs of job %s: %w", jobID, err)
	}
	return outputs, nil
}

// substitute returns a copy of v with every ${name} in its strings
// replaced by the text of the parameter's value.
func substitute(v any, params map[string]any) any {
	switch x := v.(type) {
	case string:
		return placeholder.ReplaceAllStringFunc(x, func(m string) string {
			return formatText(params[m[2:len(m)-1]])
		})
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = substitute(item, params)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[k] = substitute(item, params)
		}
		return out
	}
	return v
}
