package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// monitorResult is the estimated cost of the resource sampler.
type monitorResult struct {
	measured bool
	note     string
	// samples is the number of samples taken in the fast run, and
	// extraCPU the CPU time the fast run used beyond the idle one.
	samples  int
	extraCPU time.Duration
	duration time.Duration
	fast     time.Duration
}

// shareOfCore returns the sampler's CPU time per hour at the default 5s
// interval as a share of one core.
func (m monitorResult) shareOfCore() float64 {
	perSample := m.extraCPU.Seconds() / float64(m.samples)
	return perSample * (3600 / 5.0) / 3600
}

// measureMonitor estimates what the resource sampler costs. It runs the
// server twice for the same time, once sampling every 20ms and once every
// 24h, reads each process's CPU time from /proc, and divides the
// difference by the number of extra samples. The per-sample cost times
// 720 samples an hour (the default 5s interval) is the figure.
func measureMonitor(ctx context.Context, opts options, rep *report) error {
	help, _ := exec.CommandContext(ctx, opts.binary, "serve", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--monitor-interval") {
		rep.monitor = monitorResult{note: "PLACEHOLDER: not measured; this binary has no resource sampler (no --monitor-interval flag)"}
		return nil
	}
	duration := 20 * time.Second
	if opts.smoke {
		duration = 3 * time.Second
	}
	fast := 20 * time.Millisecond
	log.Printf("running the server for %s with the sampler every %s, then every 24h", duration, fast)
	busy, err := serverCPU(ctx, opts, "monitor-fast", duration, "--monitor-interval", fast.String(), "--monitor-history", "1h")
	if err != nil {
		return err
	}
	idle, err := serverCPU(ctx, opts, "monitor-idle", duration, "--monitor-interval", "24h", "--monitor-history", "48h")
	if err != nil {
		return err
	}
	rep.monitor = monitorResult{
		measured: true, samples: int(duration / fast), extraCPU: max(0, busy-idle), duration: duration, fast: fast,
	}
	return nil
}

// serverCPU runs the server with extra flags for duration and returns the
// CPU time (user and system) it used.
func serverCPU(ctx context.Context, opts options, name string, duration time.Duration, flags ...string) (time.Duration, error) {
	srv, err := startServer(ctx, opts, name, flags...)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	start, err := processCPU(srv.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(duration):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	end, err := processCPU(srv.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	return end - start, nil
}

// processCPU reads the user and system time of a process from
// /proc/PID/stat, in clock ticks of 10ms (USER_HZ is 100 on Linux).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in brackets may hold spaces, so the fields are
	// counted from the closing bracket: utime and stime are fields 14
	// and 15 of the line, the 12th and 13th after it.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
