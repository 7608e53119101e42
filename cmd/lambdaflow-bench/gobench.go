package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// benchGroup is one go test run whose results benchstat compares along
// one sub-benchmark key.
type benchGroup struct {
	file    string
	pattern string
	// column is benchstat's -col: the key whose values it compares.
	column    string
	benchTime string
	results   map[string][]benchMetrics
	benchstat string
}

// benchMetrics are the values of one benchmark line by unit, such as
// "ns/op" or "B/waiting-job".
type benchMetrics map[string]float64

// measurePool runs the pool's Go benchmarks: dispatch and memory at
// depth, and Submit and a whole job with the SQLite and the in-memory
// store.
func measurePool(ctx context.Context, opts options, rep *report) error {
	benchTime := opts.sizes.benchTime
	groups := []*benchGroup{
		{file: "dispatch.txt", pattern: "^BenchmarkDispatch$", column: "/waiting", benchTime: benchTime},
		{file: "memory.txt", pattern: "^BenchmarkWaitingJobMemory$", column: "/waiting", benchTime: "1x"},
		{file: "store.txt", pattern: "^(BenchmarkSubmit|BenchmarkJobLifecycle)$", column: "/store", benchTime: benchTime},
	}
	if err := os.MkdirAll(opts.rawDir, 0o755); err != nil {
		return err
	}
	for _, g := range groups {
		if err := g.run(ctx, opts); err != nil {
			return err
		}
	}
	rep.pool = groups
	return nil
}

func (g *benchGroup) run(ctx context.Context, opts options) error {
	path := filepath.Join(opts.rawDir, g.file)
	if _, err := os.Stat(path); err == nil {
		// The previous run's figures stay next to the new ones, so that
		// benchstat can compare the two after a change.
		if err := os.Rename(path, strings.TrimSuffix(path, ".txt")+".prev.txt"); err != nil {
			return err
		}
	}
	log.Printf("go test -bench '%s' -count %d ./pool/", g.pattern, opts.sizes.benchCount)
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", g.pattern, "-benchmem",
		"-count", strconv.Itoa(opts.sizes.benchCount), "-benchtime", g.benchTime, "-timeout", "30m", "./pool/")
	cmd.Dir = opts.repo
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go test -bench %s: %w\n%s", g.pattern, err, out)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return err
	}
	g.results = parseBenchmarks(out)
	if opts.smoke {
		g.benchstat = "(benchstat is not run in smoke mode)"
		return nil
	}
	stat := exec.CommandContext(ctx, "go", "run", "golang.org/x/perf/cmd/benchstat@"+benchstatVersion, "-col", g.column, path)
	stat.Dir = opts.repo
	stat.Stderr = os.Stderr
	table, err := stat.Output()
	if err != nil {
		g.benchstat = fmt.Sprintf("(benchstat failed: %v)", err)
		return nil
	}
	g.benchstat = strings.TrimSpace(string(table))
	return nil
}

// parseBenchmarks reads go test -bench output into the metrics of each
// run of each benchmark, keyed by name without the -GOMAXPROCS suffix.
func parseBenchmarks(out []byte) map[string][]benchMetrics {
	results := map[string][]benchMetrics{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		metrics := benchMetrics{}
		for i := 2; i+1 < len(fields); i += 2 {
			value, err := strconv.ParseFloat(fields[i], 64)
			if err == nil {
				metrics[fields[i+1]] = value
			}
		}
		results[name] = append(results[name], metrics)
	}
	return results
}

// medianOf returns the median of one unit over the runs of a benchmark.
func (g *benchGroup) medianOf(name, unit string) float64 {
	var values []float64
	for _, m := range g.results[name] {
		if v, ok := m[unit]; ok {
			values = append(values, v)
		}
	}
	return median(values)
}
