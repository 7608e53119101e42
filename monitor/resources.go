package monitor

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// maxBuckets caps the buckets of one resources request.
const maxBuckets = 10_000

// Resources is the resource history between From and To, downsampled to
// buckets of Step.
type Resources struct {
	// Interval is the time between two samples, a Go duration.
	Interval string         `json:"interval" example:"5s"`
	From     timestamp.Time `json:"from"`
	To       timestamp.Time `json:"to"`
	// Step is the bucket length, a Go duration.
	Step string `json:"step" example:"1m"`
	// Samples lists the buckets that hold at least one sample, oldest
	// first.
	Samples []ResourceBucket `json:"samples"`
}

// Stats summarises the values of one metric in a bucket.
type Stats struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// ResourceBucket summarises the samples taken from Time until Time plus
// the step. A metric is null when no sample of the bucket measured it,
// as for the first CPU reading after a start, which needs two samples.
// CPU percentages are of the usable capacity: the cores of the
// process's affinity mask, capped by a cgroup v2 CPU quota, so they run
// from 0 to 100 whatever the number of cores.
type ResourceBucket struct {
	// Time is the start of the bucket.
	Time timestamp.Time `json:"time"`
	// Count is the number of samples in the bucket.
	Count int `json:"count"`
	// CPUPercent is the machine's CPU use, or the cgroup's under a CPU
	// quota, in percent of the capacity.
	CPUPercent *Stats `json:"cpuPercent"`
	// Load1, Load5 and Load15 are the load averages over 1, 5 and 15
	// minutes.
	Load1  *Stats `json:"load1"`
	Load5  *Stats `json:"load5"`
	Load15 *Stats `json:"load15"`
	// MemoryUsedBytes, MemoryAvailableBytes and MemoryTotalBytes are the
	// machine's memory, or the cgroup's when its memory.max is lower.
	MemoryUsedBytes      *Stats `json:"memoryUsedBytes"`
	MemoryAvailableBytes *Stats `json:"memoryAvailableBytes"`
	MemoryTotalBytes     *Stats `json:"memoryTotalBytes"`
	// SwapUsedBytes and SwapTotalBytes are the machine's swap space.
	SwapUsedBytes  *Stats `json:"swapUsedBytes"`
	SwapTotalBytes *Stats `json:"swapTotalBytes"`
	// DiskUsedBytes, DiskFreeBytes and DiskTotalBytes describe the file
	// system that holds the data directory.
	DiskUsedBytes  *Stats `json:"diskUsedBytes"`
	DiskFreeBytes  *Stats `json:"diskFreeBytes"`
	DiskTotalBytes *Stats `json:"diskTotalBytes"`
	// DiskReadBytesPerSecond and DiskWriteBytesPerSecond are the rates of
	// the device that holds the data directory, or of all disks when
	// that device is not listed in /proc/diskstats.
	DiskReadBytesPerSecond  *Stats `json:"diskReadBytesPerSecond"`
	DiskWriteBytesPerSecond *Stats `json:"diskWriteBytesPerSecond"`
	// ProcessCPUPercent is the service's own CPU use in percent of the
	// capacity.
	ProcessCPUPercent *Stats `json:"processCpuPercent"`
	// ProcessResidentBytes is the service's resident memory.
	ProcessResidentBytes *Stats `json:"processResidentBytes"`
	// Goroutines counts the service's goroutines.
	Goroutines *Stats `json:"goroutines"`
	// RunningJobs, QueuedJobs and BlockedJobs count the jobs by state;
	// running counts CANCELLING jobs too.
	RunningJobs *Stats `json:"runningJobs"`
	QueuedJobs  *Stats `json:"queuedJobs"`
	BlockedJobs *Stats `json:"blockedJobs"`
	// ConcurrentJobs is the slot limit in force.
	ConcurrentJobs *Stats `json:"concurrentJobs"`
}

// fields returns pointers to the bucket's metric fields in metric order.
func (b *ResourceBucket) fields() [metricCount]**Stats {
	return [metricCount]**Stats{
		&b.CPUPercent, &b.Load1, &b.Load5, &b.Load15,
		&b.MemoryUsedBytes, &b.MemoryAvailableBytes, &b.MemoryTotalBytes,
		&b.SwapUsedBytes, &b.SwapTotalBytes,
		&b.DiskUsedBytes, &b.DiskFreeBytes, &b.DiskTotalBytes,
		&b.DiskReadBytesPerSecond, &b.DiskWriteBytesPerSecond,
		&b.ProcessCPUPercent, &b.ProcessResidentBytes, &b.Goroutines,
		&b.RunningJobs, &b.QueuedJobs, &b.BlockedJobs, &b.ConcurrentJobs,
	}
}

// getResources returns the resource history.
//
//	@Summary		Get the resource history
//	@Description	Returns the samples between from and to, grouped into buckets of step with the minimum, mean and maximum of each metric. Buckets without samples are left out; a metric no sample of a bucket measured is null.
//	@Tags			monitor
//	@Produce		json
//	@Param			from	query		string	false	"Start, RFC 3339; default one hour before to"	format(date-time)
//	@Param			to		query		string	false	"End, RFC 3339; default now"	format(date-time)
//	@Param			step	query		string	false	"Bucket length, a Go duration such as 1m; default the sampling interval; at most 10000 buckets"
//	@Success		200		{object}	Resources
//	@Failure		400		{object}	httpapi.Problem	"An invalid from, to or step"
//	@Router			/monitor/resources [get]
func (m *Monitor) getResources(c *gin.Context) error {
	from, to, step, err := m.parseRange(c)
	if err != nil {
		return err
	}
	samples := m.history.between(from, to)
	c.JSON(http.StatusOK, Resources{
		Interval: formatDuration(m.cfg.Interval),
		From:     timestamp.From(from),
		To:       timestamp.From(to),
		Step:     formatDuration(step),
		Samples:  downsample(samples, from, step),
	})
	return nil
}

// parseRange reads from, to and step, applying their defaults.
func (m *Monitor) parseRange(c *gin.Context) (from, to time.Time, step time.Duration, err error) {
	to = time.Now().UTC()
	if value, ok := c.GetQuery("to"); ok {
		if to, err = time.Parse(time.RFC3339Nano, value); err != nil {
			return from, to, 0, httpapi.BadRequest("to", fmt.Sprintf("to must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", value))
		}
	}
	from = to.Add(-time.Hour)
	if value, ok := c.GetQuery("from"); ok {
		if from, err = time.Parse(time.RFC3339Nano, value); err != nil {
			return from, to, 0, httpapi.BadRequest("from", fmt.Sprintf("from must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", value))
		}
	}
	if !from.Before(to) {
		return from, to, 0, httpapi.BadRequest("from", fmt.Sprintf("from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}

	step = m.cfg.Interval
	if value, ok := c.GetQuery("step"); ok {
		if step, err = time.ParseDuration(value); err != nil || step <= 0 {
			return from, to, 0, httpapi.BadRequest("step", fmt.Sprintf("step must be a positive Go duration such as 1m, not %q", value))
		}
	}
	if buckets := to.Sub(from) / step; buckets > maxBuckets {
		return from, to, 0, httpapi.BadRequest("step", fmt.Sprintf(
			"step %s splits %s into %d buckets; the maximum is %d, so choose a longer step or a shorter range",
			step, to.Sub(from), buckets, maxBuckets))
	}
	return from.UTC(), to.UTC(), step, nil
}

// downsample groups samples, which are in time order, into buckets of
// step from the start time.
func downsample(samples []Sample, start time.Time, step time.Duration) []ResourceBucket {
	buckets := []ResourceBucket{}
	var acc bucketAccumulator
	current := int64(-1)
	for _, s := range samples {
		index := int64(s.Time.Sub(start) / step)
		if index != current {
			if current >= 0 {
				buckets = append(buckets, acc.bucket(start.Add(time.Duration(current)*step)))
			}
			acc, current = bucketAccumulator{}, index
		}
		acc.add(s)
	}
	if current >= 0 {
		buckets = append(buckets, acc.bucket(start.Add(time.Duration(current)*step)))
	}
	return buckets
}

// bucketAccumulator gathers the minimum, sum and maximum of each metric.
type bucketAccumulator struct {
	count    int
	measured [metricCount]int
	min, max [metricCount]float64
	sum      [metricCount]float64
}

func (a *bucketAccumulator) add(s Sample) {
	a.count++
	for m, v := range s.Values {
		if math.IsNaN(v) {
			continue
		}
		if a.measured[m] == 0 || v < a.min[m] {
			a.min[m] = v
		}
		if a.measured[m] == 0 || v > a.max[m] {
			a.max[m] = v
		}
		a.sum[m] += v
		a.measured[m]++
	}
}

func (a *bucketAccumulator) bucket(t time.Time) ResourceBucket {
	b := ResourceBucket{Time: timestamp.From(t), Count: a.count}
	for m, field := range b.fields() {
		if a.measured[m] > 0 {
			*field = &Stats{Min: a.min[m], Mean: a.sum[m] / float64(a.measured[m]), Max: a.max[m]}
		}
	}
	return b
}

// formatDuration writes d as time.Duration.String does, without zero
// trailing units: "1m" rather than "1m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
