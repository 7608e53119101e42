package monitor

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
)

// fixedCounts is a Counter with constant counts.
type fixedCounts pool.Counts

func (c fixedCounts) Counts() pool.Counts { return pool.Counts(c) }

func newTestSampler(t *testing.T) *sampler {
	return newSampler(t.TempDir(), fixedCounts{Running: 1, Queued: 2, Blocked: 3, ConcurrentJobs: 1}, slog.New(slog.DiscardHandler))
}

func TestFirstCPUReadingIsAbsent(t *testing.T) {
	s := newTestSampler(t)
	first := s.sample(t.Context(), time.Now())
	for _, m := range []metric{metricCPUPercent, metricProcessCPUPercent, metricDiskRead, metricDiskWrite} {
		if measured(first.Values[m]) {
			t.Errorf("first sample has %s = %v, want it unmeasured", metricNames[m], first.Values[m])
		}
	}
	if !measured(first.Values[metricMemoryTotal]) || !measured(first.Values[metricProcessResident]) {
		t.Errorf("first sample lacks values that need one reading: %v", first.Values)
	}

	// The host's CPU counters advance in ticks of 10ms, so a later sample
	// has a CPU reading once a tick has passed.
	waitFor(t, "a CPU reading", func() bool {
		return measured(s.sample(t.Context(), time.Now()).Values[metricCPUPercent])
	})
}

func TestSampleValuesInRange(t *testing.T) {
	s := newTestSampler(t)
	var samples []Sample
	waitFor(t, "five samples with CPU readings", func() bool {
		sample := s.sample(t.Context(), time.Now())
		if measured(sample.Values[metricCPUPercent]) && measured(sample.Values[metricProcessCPUPercent]) {
			samples = append(samples, sample)
		}
		return len(samples) >= 5
	})

	for _, sample := range samples {
		v := sample.Values
		for _, m := range []metric{metricCPUPercent, metricProcessCPUPercent} {
			if v[m] < 0 || v[m] > 100 {
				t.Errorf("%s = %v, want 0 to 100", metricNames[m], v[m])
			}
		}
		if v[metricMemoryUsed] > v[metricMemoryTotal] || v[metricMemoryAvailable] > v[metricMemoryTotal] {
			t.Errorf("memory used %v and available %v, want both at most total %v",
				v[metricMemoryUsed], v[metricMemoryAvailable], v[metricMemoryTotal])
		}
		if v[metricMemoryTotal] <= 0 {
			t.Errorf("memory total = %v, want more than 0", v[metricMemoryTotal])
		}
		if v[metricSwapUsed] > v[metricSwapTotal] {
			t.Errorf("swap used %v, want at most total %v", v[metricSwapUsed], v[metricSwapTotal])
		}
		if v[metricDiskUsed] > v[metricDiskTotal] || v[metricDiskFree] > v[metricDiskTotal] || v[metricDiskTotal] <= 0 {
			t.Errorf("disk used %v, free %v, total %v, want used and free at most total",
				v[metricDiskUsed], v[metricDiskFree], v[metricDiskTotal])
		}
		for _, m := range []metric{metricLoad1, metricLoad5, metricLoad15, metricDiskRead, metricDiskWrite} {
			if !(v[m] >= 0) {
				t.Errorf("%s = %v, want 0 or more", metricNames[m], v[m])
			}
		}
		if v[metricProcessResident] <= 0 || v[metricGoroutines] < 1 {
			t.Errorf("resident %v bytes and %v goroutines, want both positive", v[metricProcessResident], v[metricGoroutines])
		}
		if v[metricRunningJobs] != 1 || v[metricQueuedJobs] != 2 || v[metricBlockedJobs] != 3 || v[metricConcurrentJobs] != 1 {
			t.Errorf("job counts %v %v %v limit %v, want 1 2 3 limit 1",
				v[metricRunningJobs], v[metricQueuedJobs], v[metricBlockedJobs], v[metricConcurrentJobs])
		}
	}
}

// cgroupFS returns a file system of a process in cgroup /app whose parent
// / sets a CPU quota of 2 cores and the memory limit.
func cgroupFS(usageMicros, memoryCurrent string) fstest.MapFS {
	return fstest.MapFS{
		"proc/self/cgroup":                 {Data: []byte("0::/app\n")},
		"sys/fs/cgroup/cpu.max":            {Data: []byte("200000 100000\n")},
		"sys/fs/cgroup/cpu.stat":           {Data: []byte("usage_usec " + usageMicros + "\nuser_usec 1\n")},
		"sys/fs/cgroup/memory.max":         {Data: []byte("1073741824\n")},
		"sys/fs/cgroup/memory.current":     {Data: []byte(memoryCurrent + "\n")},
		"sys/fs/cgroup/memory.stat":        {Data: []byte("anon 1\ninactive_file 1000\n")},
		"sys/fs/cgroup/app/cpu.max":        {Data: []byte("max 100000\n")},
		"sys/fs/cgroup/app/cpu.stat":       {Data: []byte("usage_usec 5\n")},
		"sys/fs/cgroup/app/memory.max":     {Data: []byte("max\n")},
		"sys/fs/cgroup/app/memory.stat":    {Data: []byte("inactive_file 0\n")},
		"sys/fs/cgroup/app/memory.current": {Data: []byte("10\n")},
	}
}

func TestCgroupLimitsFromAncestor(t *testing.T) {
	cg := cgroupV2{root: cgroupFS("1000000", "5000")}
	cpu, ok := cg.cpu()
	if !ok || cpu.Cores != 2 || cpu.UsageMicros != 1000000 {
		t.Errorf("cpu() = %+v, %v; want 2 cores and the parent's usage 1000000", cpu, ok)
	}
	mem, ok := cg.memory()
	if !ok || mem.Limit != 1<<30 || mem.Used != 4000 {
		t.Errorf("memory() = %+v, %v; want limit 1 GiB and 5000-1000 bytes used", mem, ok)
	}
}

func TestCgroupWithoutLimits(t *testing.T) {
	cg := cgroupV2{root: fstest.MapFS{
		"proc/self/cgroup":             {Data: []byte("0::/\n")},
		"sys/fs/cgroup/cpu.max":        {Data: []byte("max 100000\n")},
		"sys/fs/cgroup/cpu.stat":       {Data: []byte("usage_usec 5\n")},
		"sys/fs/cgroup/memory.max":     {Data: []byte("max\n")},
		"sys/fs/cgroup/memory.current": {Data: []byte("10\n")},
	}}
	if cpu, ok := cg.cpu(); ok {
		t.Errorf("cpu() = %+v, want no quota", cpu)
	}
	if mem, ok := cg.memory(); ok {
		t.Errorf("memory() = %+v, want no limit", mem)
	}
	if _, ok := (cgroupV2{root: fstest.MapFS{}}).cpu(); ok {
		t.Error("cpu() without cgroup files reports a quota")
	}
}

func TestSamplerFollowsCgroup(t *testing.T) {
	s := newTestSampler(t)
	s.numCPU = func() int { return 8 }
	fs := cgroupFS("1000000", "5000")
	s.cgroup = cgroupV2{root: fs}

	start := time.Now()
	first := s.sample(t.Context(), start)
	if measured(first.Values[metricCPUPercent]) {
		t.Errorf("first cgroup CPU reading = %v, want unmeasured", first.Values[metricCPUPercent])
	}
	// One second later the cgroup used half a second of CPU time out of
	// the two cores of its quota: 25%.
	fs["sys/fs/cgroup/cpu.stat"] = &fstest.MapFile{Data: []byte("usage_usec 1500000\n")}
	second := s.sample(t.Context(), start.Add(time.Second))
	if got := second.Values[metricCPUPercent]; math.Abs(got-25) > 1e-9 {
		t.Errorf("cgroup CPU = %v%%, want 25%%", got)
	}
	if got := second.Values[metricMemoryTotal]; got != 1<<30 {
		t.Errorf("memory total = %v, want the cgroup limit 1 GiB", got)
	}
	if used, available := second.Values[metricMemoryUsed], second.Values[metricMemoryAvailable]; used != 4000 || available != 1<<30-4000 {
		t.Errorf("memory used %v and available %v, want 4000 and the rest of 1 GiB", used, available)
	}
	if got := s.capacityCores(); got != 2 {
		t.Errorf("capacity = %v cores, want the quota of 2 rather than 8 cores", got)
	}
}

func TestFailingMeasurementLoggedOnce(t *testing.T) {
	handler := &countingHandler{}
	s := newSampler(t.TempDir()+"/missing", fixedCounts{}, slog.New(handler))
	for range 3 {
		sample := s.sample(t.Context(), time.Now())
		if measured(sample.Values[metricDiskTotal]) {
			t.Fatalf("disk total of a missing directory = %v, want unmeasured", sample.Values[metricDiskTotal])
		}
		if !measured(sample.Values[metricMemoryTotal]) {
			t.Fatal("a failing disk measurement left memory unmeasured")
		}
	}
	if handler.warnings != 1 {
		t.Errorf("%d warnings for three failures of one measurement, want 1", handler.warnings)
	}
}

// countingHandler is a slog.Handler that counts warnings. It is used from
// one goroutine only.
type countingHandler struct {
	warnings int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.warnings++
	}
	return nil
}
