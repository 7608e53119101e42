package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// jobsResult is one tool's run of the trivial jobs.
type jobsResult struct {
	tool    string
	how     string
	jobs    int
	elapsed time.Duration
	// latencies holds submission to completion per job; empty when the
	// tool does not show it.
	latencies []time.Duration
	errors    int64
	note      string
}

func (r jobsResult) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.jobs) / r.elapsed.Seconds()
}

// measureJobs runs the same number of trivial jobs through lambdaflow's
// lambda API and through task-spooler, GNU parallel and xargs.
func measureJobs(ctx context.Context, opts options, rep *report) error {
	lf, err := lambdaflowJobs(ctx, opts)
	if err != nil {
		return err
	}
	rep.jobs = append(rep.jobs, lf)
	peers := []struct {
		tool, program string
		run           func(context.Context, options) (jobsResult, error)
	}{
		{"task-spooler", "tsp", taskSpoolerJobs},
		{"GNU parallel", "parallel", parallelJobs},
		{"xargs", "xargs", xargsJobs},
	}
	for _, peer := range peers {
		if !opts.peers {
			break
		}
		if !installed(peer.program) {
			rep.jobs = append(rep.jobs, jobsResult{tool: peer.tool, note: "not installed: skipped (run `make bench-deps`)"})
			continue
		}
		log.Printf("running %d trivial jobs through %s", opts.sizes.jobs, peer.tool)
		result, err := peer.run(ctx, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", peer.tool, err)
		}
		rep.jobs = append(rep.jobs, result)
	}
	return nil
}

// lambdaflowJobs invokes the trivial project through the lambda API from
// several clients at once, each waiting for its job's end in the
// response, which is what a client that wants many small runs of one
// workflow does. Each invocation gets an instance with its own lock, so
// jobs run two at a time in the two slots.
func lambdaflowJobs(ctx context.Context, opts options) (jobsResult, error) {
	srv, err := startServer(ctx, opts, "jobs")
	if err != nil {
		return jobsResult{}, err
	}
	defer srv.stop()
	if err := srv.createProject(ctx, trivialProject); err != nil {
		return jobsResult{}, err
	}
	log.Printf("running %d trivial jobs through lambdaflow", opts.sizes.jobs)

	// A short warm-up opens the connections and fills the caches.
	invoke := func() (time.Duration, error) {
		start := time.Now()
		var job jobView
		status, err := srv.call(ctx, http.MethodPost, "/api/v1/projects/trivial/lambda", map[string]any{"wait": "60s"}, &job)
		if err == nil && (status != http.StatusOK || job.State != "COMPLETED") {
			err = fmt.Errorf("invocation returned %d with state %s", status, job.State)
		}
		return time.Since(start), err
	}
	for range opts.sizes.clients {
		if _, err := invoke(); err != nil {
			return jobsResult{}, err
		}
	}

	result := jobsResult{tool: "lambdaflow", how: fmt.Sprintf("lambda API, `wait`, %d clients", opts.sizes.clients), jobs: opts.sizes.jobs}
	latencies := make([]time.Duration, opts.sizes.jobs)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range opts.sizes.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(opts.sizes.jobs) {
					return
				}
				latency, err := invoke()
				latencies[i] = latency
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	result.elapsed = time.Since(start)
	result.latencies = latencies
	result.errors = errs.Load()
	if err, ok := firstErr.Load().(error); ok {
		result.note = "first error: " + err.Error()
	}
	return result, nil
}

// taskSpoolerJobs queues `true` through tsp with two slots, submitting
// from as many concurrent callers as lambdaflow had clients, and waits
// until no job is queued or running.
func taskSpoolerJobs(ctx context.Context, opts options) (jobsResult, error) {
	dir, err := os.MkdirTemp(opts.workDir, "tsp-")
	if err != nil {
		return jobsResult{}, err
	}
	env := append(os.Environ(), "TS_SOCKET="+filepath.Join(dir, "socket"), "TMPDIR="+dir,
		"TS_MAXFINISHED="+strconv.Itoa(opts.sizes.jobs+100))
	tsp := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "tsp", args...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	if out, err := tsp("-S", "2"); err != nil {
		return jobsResult{}, fmt.Errorf("tsp -S 2: %w: %s", err, out)
	}
	defer tsp("-K")

	result := jobsResult{tool: "task-spooler", how: fmt.Sprintf("`tsp -S 2`, `tsp -n true` from %d callers", opts.sizes.clients), jobs: opts.sizes.jobs}
	start := time.Now()
	err = forEachConcurrently(opts.sizes.jobs, opts.sizes.clients, func(int) error {
		if out, err := tsp("-n", "true"); err != nil {
			return fmt.Errorf("tsp -n true: %w: %s", err, out)
		}
		return nil
	})
	if err != nil {
		return jobsResult{}, err
	}
	for {
		out, err := tsp("-l")
		if err != nil {
			return jobsResult{}, fmt.Errorf("tsp -l: %w: %s", err, out)
		}
		if !strings.Contains(string(out), " queued ") && !strings.Contains(string(out), " running ") {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling the job list; tsp has no "wait for all"
	}
	result.elapsed = time.Since(start)
	return result, nil
}

// parallelJobs runs `true` once per input line with GNU parallel -j2.
func parallelJobs(ctx context.Context, opts options) (jobsResult, error) {
	return timedPipe(ctx, opts, "GNU parallel", "`parallel -j2 true`", "parallel", "--will-cite", "-j2", "true")
}

// xargsJobs runs `true` once per input line with xargs -P2.
func xargsJobs(ctx context.Context, opts options) (jobsResult, error) {
	return timedPipe(ctx, opts, "xargs", "`xargs -P2 -n1 true`", "xargs", "-P2", "-n1", "true")
}

// timedPipe feeds one line per job to a command and times it.
func timedPipe(ctx context.Context, opts options, tool, how, name string, args ...string) (jobsResult, error) {
	var input strings.Builder
	for i := range opts.sizes.jobs {
		fmt.Fprintln(&input, i)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(input.String())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return jobsResult{}, fmt.Errorf("%s: %w: %s", name, err, out)
	}
	return jobsResult{tool: tool, how: how, jobs: opts.sizes.jobs, elapsed: time.Since(start)}, nil
}

// forEachConcurrently calls fn(0) to fn(n-1) from workers goroutines and
// returns the first error.
func forEachConcurrently(n, workers int, fn func(int) error) error {
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
