package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

// blockTask is one piece of work over the flights file, written for each
// tool. Every tool writes its result as CSV with the same column names.
type blockTask struct {
	name        string
	description string
	// blocks are the lambdaflow blocks after the load block, which reads
	// the file; the last one writes out.csv.
	blocks string
	// miller is Miller's verb chain after `mlr --icsv --ocsv`.
	miller []string
	// sql is DuckDB's query, with FLIGHTS standing for the input table.
	sql string
	// ordered means the rows must come in the same order; otherwise the
	// outputs are compared as multisets of rows.
	ordered bool
	// orderedBy names the columns whose sequence must match even when
	// ties may come in any order.
	orderedBy []string
}

var blockTasks = []blockTask{
	{
		name:        "read",
		description: "read the file and count the rows",
		blocks:      `{"name": "count", "type": "aggregate", "inputs": ["load"], "options": {"aggregates": {"rows": "count()"}}}`,
		miller:      []string{"count", "then", "rename", "count,rows"},
		sql:         "SELECT count(*) AS rows FROM FLIGHTS",
		ordered:     true,
	},
	{
		name:        "filter",
		description: "keep the flights delayed over 60 minutes on routes over 1,000 miles",
		blocks:      `{"name": "pick", "type": "filter", "inputs": ["load"], "options": {"where": "delay > 60 && distance > 1000"}}`,
		miller:      []string{"filter", "$delay > 60 && $distance > 1000"},
		sql:         "SELECT * FROM FLIGHTS WHERE delay > 60 AND distance > 1000",
	},
	{
		name:        "aggregate",
		description: "per origin: flights, mean delay, total distance, ordered by origin",
		blocks: `{"name": "agg", "type": "aggregate", "inputs": ["load"], "options": {"groupBy": ["origin"],
			"aggregates": {"flights": "count()", "avg_delay": "avg(delay)", "distance": "sum(distance)"}}},
			{"name": "sorted", "type": "sort", "inputs": ["agg"], "options": {"by": "origin"}}`,
		miller: []string{"stats1", "-a", "count,mean,sum", "-f", "delay,distance", "-g", "origin",
			"then", "cut", "-o", "-f", "origin,delay_count,delay_mean,distance_sum",
			"then", "rename", "delay_count,flights,delay_mean,avg_delay,distance_sum,distance",
			"then", "sort", "-f", "origin"},
		sql:     "SELECT origin, count(*) AS flights, avg(delay) AS avg_delay, sum(distance) AS distance FROM FLIGHTS GROUP BY origin ORDER BY origin",
		ordered: true,
	},
	{
		name:        "sort",
		description: "order every flight by delay, then distance, both descending",
		blocks:      `{"name": "sorted", "type": "sort", "inputs": ["load"], "options": {"by": ["delay", "distance"], "desc": true}}`,
		miller:      []string{"sort", "-nr", "delay,distance"},
		sql:         "SELECT * FROM FLIGHTS ORDER BY delay DESC, distance DESC",
		orderedBy:   []string{"delay", "distance"},
	},
}

// blockResult is the median time of each tool on one task.
type blockResult struct {
	task       blockTask
	lambdaflow time.Duration
	miller     time.Duration
	duckdb     time.Duration
	outputRows int
	notes      []string
}

// measureBlocks writes the flights file, runs every task with each tool
// and checks that the outputs agree before keeping the times.
func measureBlocks(ctx context.Context, opts options, rep *report) error {
	source, err := findFlights(opts)
	if err != nil {
		rep.blocksNote = err.Error() + ": block tasks skipped"
		log.Print(rep.blocksNote)
		return nil
	}
	filesDir := filepath.Join(opts.workDir, "files")
	input := filepath.Join(filesDir, "flights.csv")
	rows, err := writeFlights(source, input, opts.sizes.rows)
	if err != nil {
		return err
	}
	rep.blocksRows = rows

	duck := newDuckDB(opts)
	if duck.note != "" {
		rep.blocksNote = duck.note
	}
	for _, task := range blockTasks {
		log.Printf("block task %s over %s rows", task.name, count(float64(rows)))
		result, err := runBlockTask(ctx, opts, task, filesDir, input, duck)
		if err != nil {
			return fmt.Errorf("task %s: %w", task.name, err)
		}
		rep.blocks = append(rep.blocks, result)
	}
	return nil
}

// runBlockTask runs the task with each tool in turn, repeats times, so
// that a change in the machine's load hits every tool alike, and keeps
// each tool's median once its output matches lambdaflow's.
func runBlockTask(ctx context.Context, opts options, task blockTask, filesDir, input string, duck *duckDB) (blockResult, error) {
	result := blockResult{task: task}
	dir := filepath.Join(opts.workDir, "task-"+task.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result, err
	}
	runMillerToo := opts.peers && installed("mlr")
	runDuckToo := opts.peers && duck.available()
	if opts.peers && !runMillerToo {
		result.notes = append(result.notes, "Miller (mlr) not installed: its column is skipped (run `make bench-deps`)")
	}

	lambdaflow := newLambdaflowTask(task, filesDir, dir)
	millerOut, duckOut := filepath.Join(dir, "miller.csv"), filepath.Join(dir, "duckdb.csv")
	var lfTimes, millerTimes, duckTimes []time.Duration
	for range opts.sizes.repeats {
		elapsed, err := lambdaflow.run(ctx)
		if err != nil {
			return result, fmt.Errorf("lambdaflow: %w", err)
		}
		lfTimes = append(lfTimes, elapsed)
		if runMillerToo {
			start := time.Now()
			if err := runMiller(ctx, task, input, millerOut); err != nil {
				return result, fmt.Errorf("miller: %w", err)
			}
			millerTimes = append(millerTimes, time.Since(start))
		}
		if runDuckToo {
			times, err := duck.run(ctx, task, input, duckOut, 1)
			if err != nil {
				return result, fmt.Errorf("duckdb: %w", err)
			}
			duckTimes = append(duckTimes, times...)
		}
	}

	want, err := readCSV(lambdaflow.out)
	if err != nil {
		return result, err
	}
	result.outputRows = len(want.rows)
	result.lambdaflow = medianDuration(lfTimes)
	if runMillerToo {
		if err := compareOutputs(task, want, millerOut); err != nil {
			return result, fmt.Errorf("Miller's output differs from lambdaflow's: %w", err)
		}
		result.miller = medianDuration(millerTimes)
	}
	if runDuckToo {
		if err := compareOutputs(task, want, duckOut); err != nil {
			return result, fmt.Errorf("DuckDB's output differs from lambdaflow's: %w", err)
		}
		result.duckdb = medianDuration(duckTimes)
	}
	return result, nil
}

// lambdaflowTask runs a task's workflow in process through the executor,
// as a job would run it without the HTTP server and the store.
type lambdaflowTask struct {
	executor   *projects.Executor
	definition json.RawMessage
	dir        string
	runs       int
	// out is the output file of the last run.
	out string
}

func newLambdaflowTask(task blockTask, filesDir, dir string) *lambdaflowTask {
	definition := `{"name": "flights-` + task.name + `", "blocks": [
		{"name": "load", "type": "csv.read", "options": {"path": "flights.csv"}}, ` + task.blocks + `,
		{"name": "save", "type": "csv.write", "inputs": ["` + lastBlockName(task.blocks) + `"], "options": {"path": "out.csv"}}]}`
	executor := projects.NewExecutor(projects.ExecutorConfig{
		FilesDir: filesDir, OutputRoot: dir, Logger: slog.New(slog.DiscardHandler),
	})
	return &lambdaflowTask{executor: executor, definition: json.RawMessage(definition), dir: dir}
}

func (t *lambdaflowTask) run(ctx context.Context) (time.Duration, error) {
	t.runs++
	id := fmt.Sprintf("lambdaflow-%d", t.runs)
	job := &pool.Job{ID: id, Definition: t.definition, Parameters: map[string]any{}}
	start := time.Now()
	if _, err := t.executor.Run(ctx, job, func(pool.BlockRun) {}); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	t.out = filepath.Join(t.dir, id, "out.csv")
	return elapsed, nil
}

// lastBlockName returns the name of the last block in a list of block
// definitions.
func lastBlockName(blocks string) string {
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte("["+blocks+"]"), &list); err != nil || len(list) == 0 {
		return ""
	}
	return list[len(list)-1].Name
}

func runMiller(ctx context.Context, task blockTask, input, out string) error {
	args := append([]string{"--icsv", "--ocsv"}, task.miller...)
	args = append(args, input)
	cmd := exec.CommandContext(ctx, "mlr", args...)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	var stderr strings.Builder
	cmd.Stdout = f
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mlr %s: %w: %s", strings.Join(task.miller, " "), err, stderr.String())
	}
	return nil
}

func medianDuration(times []time.Duration) time.Duration {
	values := make([]float64, len(times))
	for i, t := range times {
		values[i] = float64(t)
	}
	return time.Duration(median(values))
}

// findFlights returns the path of flights-20k.json.
func findFlights(opts options) (string, error) {
	candidates := []string{
		filepath.Join(opts.repo, "..", "shared", "data", "vega-datasets"),
		"/work/shared/data/vega-datasets",
	}
	if opts.dataDir != "" {
		candidates = []string{opts.dataDir}
	}
	for _, dir := range candidates {
		path := filepath.Join(dir, "flights-20k.json")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("flights-20k.json not found in %s", strings.Join(candidates, " or "))
}

// writeFlights converts the flights JSON to CSV, repeating its records
// until the file has rows data rows, and returns the number written.
func writeFlights(source, path string, rows int) (int, error) {
	data, err := os.ReadFile(source)
	if err != nil {
		return 0, err
	}
	var flights []struct {
		Date        string `json:"date"`
		Delay       int64  `json:"delay"`
		Distance    int64  `json:"distance"`
		Origin      string `json:"origin"`
		Destination string `json:"destination"`
	}
	if err := json.Unmarshal(data, &flights); err != nil {
		return 0, fmt.Errorf("reading %s: %w", source, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"date", "delay", "distance", "origin", "destination"})
	for i := range rows {
		r := flights[i%len(flights)]
		w.Write([]string{r.Date, strconv.FormatInt(r.Delay, 10), strconv.FormatInt(r.Distance, 10), r.Origin, r.Destination})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return 0, err
	}
	return rows, f.Close()
}

// table is a CSV file read for comparison.
type table struct {
	header []string
	rows   [][]string
}

func readCSV(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	t := &table{header: header}
	for {
		record, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		t.rows = append(t.rows, record)
	}
	return t, nil
}
