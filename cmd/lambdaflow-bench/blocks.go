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
// tool. Every tool writes its answer as CSV with the same column names.
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

func runBlockTask(ctx context.Context, opts options, task blockTask, filesDir, input string, duck *duckDB) (blockResult, error) {
	result := blockResult{task: task}
	dir := filepath.Join(opts.workDir, "task-"+task.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result, err
	}

	lfOut, times, err := runLambdaflowTask(ctx, opts, task, filesDir, dir)
	if err != nil {
		return result, fmt.Errorf("lambdaflow: %w", err)
	}
	result.lambdaflow = medianDuration(times)
	want, err := readCSV(lfOut)
	if err != nil {
		return result, err
	}
	result.outputRows = len(want.rows)

	if installed("mlr") {
		out := filepath.Join(dir, "miller.csv")
		times, err := repeat(opts.sizes.repeats, func() error { return runMiller(ctx, task, input, out) })
		if err != nil {
			return result, fmt.Errorf("miller: %w", err)
		}
		if err := compareOutputs(task, want, out); err != nil {
			return result, fmt.Errorf("Miller's output differs from lambdaflow's: %w", err)
		}
		result.miller = medianDuration(times)
	} else {
		result.notes = append(result.notes, "Miller not installed")
	}

	if duck.available() {
		out := filepath.Join(dir, "duckdb.csv")
		times, err := duck.run(ctx, task, input, out, opts.sizes.repeats)
		if err != nil {
			return result, fmt.Errorf("duckdb: %w", err)
		}
		if err := compareOutputs(task, want, out); err != nil {
			return result, fmt.Errorf("DuckDB's output differs from lambdaflow's: %w", err)
		}
		result.duckdb = medianDuration(times)
	}
	return result, nil
}

// runLambdaflowTask runs the task's workflow in process through the
// executor, as a job would run it without the HTTP server and the store.
func runLambdaflowTask(ctx context.Context, opts options, task blockTask, filesDir, dir string) (string, []time.Duration, error) {
	definition := `{"name": "flights-` + task.name + `", "blocks": [
		{"name": "load", "type": "csv.read", "options": {"path": "flights.csv"}}, ` + task.blocks + `,
		{"name": "save", "type": "csv.write", "inputs": ["` + lastBlockName(task.blocks) + `"], "options": {"path": "out.csv"}}]}`
	if !json.Valid([]byte(definition)) {
		return "", nil, fmt.Errorf("invalid definition: %s", definition)
	}
	executor := projects.NewExecutor(projects.ExecutorConfig{
		FilesDir: filesDir, OutputRoot: dir, Logger: slog.New(slog.DiscardHandler),
	})
	var out string
	times, err := repeat(opts.sizes.repeats, func() error {
		id := fmt.Sprintf("lambdaflow-%d", time.Now().UnixNano())
		job := &pool.Job{ID: id, Definition: json.RawMessage(definition), Parameters: map[string]any{}}
		if _, err := executor.Run(ctx, job, func(pool.BlockRun) {}); err != nil {
			return err
		}
		out = filepath.Join(dir, id, "out.csv")
		return nil
	})
	return out, times, err
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

// repeat calls fn n times and returns the duration of each call.
func repeat(n int, fn func() error) ([]time.Duration, error) {
	times := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		times = append(times, time.Since(start))
	}
	return times, nil
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
