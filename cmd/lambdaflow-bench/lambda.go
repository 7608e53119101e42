package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// lambdaResult is one run of the constant-rate latency test.
type lambdaResult struct {
	pool      string
	sent      int
	rate      int
	latencies []time.Duration
	errors    int64
	lateSends int64
	note      string
}

// measureLambda sends waiting invocations of the small project at a fixed
// rate, first to an idle pool and then to a busy one: one of the two
// slots held by a long job and blockedJobs jobs BLOCKED behind it.
func measureLambda(ctx context.Context, opts options, rep *report) error {
	for _, busy := range []bool{false, true} {
		result, err := lambdaAtRate(ctx, opts, busy)
		if err != nil {
			return err
		}
		rep.lambda = append(rep.lambda, result)
	}
	return nil
}

func lambdaAtRate(ctx context.Context, opts options, busy bool) (lambdaResult, error) {
	name := "idle"
	if busy {
		name = "busy"
	}
	srv, err := startServer(ctx, opts, "lambda-"+name)
	if err != nil {
		return lambdaResult{}, err
	}
	defer srv.stop()
	if err := srv.createProject(ctx, smallProject); err != nil {
		return lambdaResult{}, err
	}
	result := lambdaResult{pool: "idle: both slots free, empty queue", rate: opts.sizes.rate}
	if busy {
		if err := fillPool(ctx, srv, opts.sizes.blockedJobs); err != nil {
			return lambdaResult{}, err
		}
		result.pool = fmt.Sprintf("busy: one slot held by a running job, %s jobs BLOCKED behind it", count(float64(opts.sizes.blockedJobs)))
	}

	invoke := func() error {
		var job jobView
		status, err := srv.call(ctx, http.MethodPost, "/api/v1/projects/small/lambda",
			map[string]any{"parameters": map[string]any{"min": 3}, "wait": "30s"}, &job)
		if err == nil && (status != http.StatusOK || job.State != "COMPLETED") {
			err = fmt.Errorf("invocation returned %d with state %s", status, job.State)
		}
		return err
	}
	for range 20 {
		if err := invoke(); err != nil {
			return lambdaResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}

	log.Printf("sending %d waiting invocations/s for %s to the %s pool", opts.sizes.rate, opts.sizes.rateDuration, name)
	n := int(float64(opts.sizes.rate) * opts.sizes.rateDuration.Seconds())
	interval := time.Second / time.Duration(opts.sizes.rate)
	result.sent = n
	result.latencies = make([]time.Duration, n)
	var errs, late atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		// Each request has a scheduled send time, and its latency counts
		// from then, so a slow response does not hold back the next
		// requests (no coordinated omission).
		scheduled := start.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			time.Sleep(wait)
		} else if wait < -interval {
			late.Add(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := invoke()
			result.latencies[i] = time.Since(scheduled)
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	result.errors = errs.Load()
	result.lateSends = late.Load()
	if err, ok := firstErr.Load().(error); ok {
		result.note = "first error: " + err.Error()
	}
	return result, nil
}

// fillPool starts the sleeper project, which then holds one slot, and
// queues blocked more executions of it, which wait BLOCKED.
func fillPool(ctx context.Context, srv *server, blocked int) error {
	if err := srv.createProject(ctx, sleeperProject); err != nil {
		return err
	}
	return forEachConcurrently(blocked+1, 8, func(int) error {
		_, err := srv.call(ctx, http.MethodPost, "/api/v1/projects/sleeper/execute", nil, nil)
		return err
	})
}
