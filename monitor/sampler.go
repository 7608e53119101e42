package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/lambdaflow/lambdaflow/pool"
)

// sampler measures the machine and the service with gopsutil v4. Rates
// and CPU percentages are differences between two calls of sample, so
// the first sample leaves them unmeasured. It is not safe for concurrent
// use: the monitor's sampling goroutine alone calls sample.
type sampler struct {
	dataDir string
	jobs    Counter
	log     *slog.Logger
	cgroup  cgroupV2
	// numCPU returns the cores the process may use by its affinity mask.
	numCPU func() int

	proc    *process.Process
	disks   diskSelection
	prevCPU cpuCounter
	prevOwn ownCounter
	prevIO  ioCounter
	// failing holds the measurements that failed at their last attempt,
	// so that a failure is logged once until it recovers.
	failing map[string]bool
}

// Counter returns the numbers of active jobs, as pool.Pool.Counts does.
type Counter interface {
	Counts() pool.Counts
}

// cpuCounter is a reading of the machine's CPU time. A cgroup reading
// holds the cgroup's CPU time and its quota. A host reading holds the busy
// and total CPU time of all cores in /proc/stat.
type cpuCounter struct {
	valid  bool
	cgroup bool
	at     time.Time
	// busy and total are in seconds. total is unused for a cgroup.
	busy, total float64
	// cores is the cgroup's quota in cores.
	cores float64
}

// ownCounter is a reading of the service's CPU time in seconds.
type ownCounter struct {
	valid bool
	at    time.Time
	cpu   float64
}

// ioCounter is a reading of the bytes read and written by the disks.
type ioCounter struct {
	valid         bool
	at            time.Time
	read, written uint64
}

func newSampler(dataDir string, jobs Counter, log *slog.Logger) *sampler {
	return &sampler{
		dataDir: dataDir, jobs: jobs, log: log,
		cgroup:  cgroupV2{root: os.DirFS("/")},
		numCPU:  runtime.NumCPU,
		disks:   diskSelection{dataDir: dataDir},
		failing: map[string]bool{},
	}
}

// sample measures every metric at now. A measurement that fails leaves
// its values unmeasured and does not stop the others.
func (s *sampler) sample(ctx context.Context, now time.Time) Sample {
	sample := newSample(now)
	s.check("cpu", s.measureCPU(ctx, now, &sample))
	s.check("load", s.measureLoad(ctx, &sample))
	s.check("memory", s.measureMemory(ctx, &sample))
	s.check("swap", s.measureSwap(ctx, &sample))
	s.check("disk usage", s.measureDiskUsage(ctx, &sample))
	s.check("disk io", s.measureDiskIO(ctx, now, &sample))
	s.check("process", s.measureProcess(ctx, now, &sample))
	sample.Values[metricGoroutines] = float64(runtime.NumGoroutine())

	counts := s.jobs.Counts()
	sample.Values[metricRunningJobs] = float64(counts.Running)
	sample.Values[metricQueuedJobs] = float64(counts.Queued)
	sample.Values[metricBlockedJobs] = float64(counts.Blocked)
	sample.Values[metricConcurrentJobs] = float64(counts.ConcurrentJobs)
	return sample
}

// check logs a failing measurement once, at its first failure, and logs
// its recovery.
func (s *sampler) check(name string, err error) {
	if err == nil {
		if s.failing[name] {
			delete(s.failing, name)
			s.log.Info("measurement recovered", "measurement", name)
		}
		return
	}
	if errors.Is(err, context.Canceled) || s.failing[name] {
		return
	}
	s.failing[name] = true
	s.log.Warn("measurement failed; its values stay empty until it recovers", "measurement", name, "error", err)
}

// capacityCores returns the CPU capacity the percentages refer to: the
// cores of the affinity mask, capped by the cgroup CPU quota when one is
// set.
func (s *sampler) capacityCores() float64 {
	cores := float64(s.numCPU())
	if cg, ok := s.cgroup.cpu(); ok {
		cores = min(cores, cg.Cores)
	}
	return cores
}

// measureCPU sets the machine's CPU use since the previous sample in
// percent of its capacity. Under a cgroup v2 CPU quota it is the
// cgroup's CPU time over the quota; otherwise the busy share of all
// cores in /proc/stat.
func (s *sampler) measureCPU(ctx context.Context, now time.Time, sample *Sample) error {
	cur, err := s.readCPU(ctx, now)
	if err != nil {
		s.prevCPU = cpuCounter{}
		return err
	}
	prev := s.prevCPU
	s.prevCPU = cur
	if !prev.valid || prev.cgroup != cur.cgroup {
		return nil
	}

	if cur.cgroup {
		capacity := cur.at.Sub(prev.at).Seconds() * cur.cores
		if capacity > 0 {
			sample.Values[metricCPUPercent] = clampPercent((cur.busy - prev.busy) / capacity * 100)
		}
		return nil
	}
	if total := cur.total - prev.total; total > 0 {
		sample.Values[metricCPUPercent] = clampPercent((cur.busy - prev.busy) / total * 100)
	}
	return nil
}

func (s *sampler) readCPU(ctx context.Context, now time.Time) (cpuCounter, error) {
	if cg, ok := s.cgroup.cpu(); ok {
		return cpuCounter{valid: true, cgroup: true, at: now, busy: float64(cg.UsageMicros) / 1e6, cores: cg.Cores}, nil
	}
	times, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return cpuCounter{}, err
	}
	if len(times) == 0 {
		return cpuCounter{}, errors.New("reading CPU times: no values")
	}
	t := times[0]
	// Guest time is already part of user time on Linux.
	total := t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	busy := total - t.Idle - t.Iowait
	return cpuCounter{valid: true, at: now, busy: busy, total: total}, nil
}

// clampPercent bounds a percentage to 0..100. Counters sampled a little
// apart from the wall clock can give values just past the bounds.
func clampPercent(p float64) float64 {
	return max(0, min(p, 100))
}

func (s *sampler) measureLoad(ctx context.Context, sample *Sample) error {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return err
	}
	sample.Values[metricLoad1] = avg.Load1
	sample.Values[metricLoad5] = avg.Load5
	sample.Values[metricLoad15] = avg.Load15
	return nil
}

// measureMemory sets the memory figures of the machine, or of the cgroup
// when its memory.max is below the machine's memory.
func (s *sampler) measureMemory(ctx context.Context, sample *Sample) error {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return err
	}
	total, used, available := vm.Total, vm.Used, vm.Available
	if cg, ok := s.cgroup.memory(); ok && cg.Limit < total {
		total, used = cg.Limit, cg.Used
		available = total - used
	}
	sample.Values[metricMemoryUsed] = float64(used)
	sample.Values[metricMemoryAvailable] = float64(available)
	sample.Values[metricMemoryTotal] = float64(total)
	return nil
}

func (s *sampler) measureSwap(ctx context.Context, sample *Sample) error {
	swap, err := mem.SwapMemoryWithContext(ctx)
	if err != nil {
		return err
	}
	sample.Values[metricSwapUsed] = float64(swap.Used)
	sample.Values[metricSwapTotal] = float64(swap.Total)
	return nil
}

// measureProcess sets the service's own CPU use since the previous
// sample, in percent of the capacity, and its resident memory.
func (s *sampler) measureProcess(ctx context.Context, now time.Time, sample *Sample) error {
	if s.proc == nil {
		proc, err := process.NewProcessWithContext(ctx, int32(os.Getpid()))
		if err != nil {
			return fmt.Errorf("finding own process: %w", err)
		}
		s.proc = proc
	}
	var errs []error
	if info, err := s.proc.MemoryInfoWithContext(ctx); err != nil {
		errs = append(errs, err)
	} else {
		sample.Values[metricProcessResident] = float64(info.RSS)
	}

	times, err := s.proc.TimesWithContext(ctx)
	if err != nil {
		s.prevOwn = ownCounter{}
		return errors.Join(append(errs, err)...)
	}
	cur := ownCounter{valid: true, at: now, cpu: times.User + times.System}
	prev := s.prevOwn
	s.prevOwn = cur
	if capacity := cur.at.Sub(prev.at).Seconds() * s.capacityCores(); prev.valid && capacity > 0 {
		sample.Values[metricProcessCPUPercent] = clampPercent((cur.cpu - prev.cpu) / capacity * 100)
	}
	return errors.Join(errs...)
}
