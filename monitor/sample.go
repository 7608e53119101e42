package monitor

import (
	"math"
	"time"
)

// metric indexes one measured value of a Sample.
type metric int

// The measured values. The order is the order of Sample.Values and of
// metricNames.
const (
	metricCPUPercent metric = iota
	metricLoad1
	metricLoad5
	metricLoad15
	metricMemoryUsed
	metricMemoryAvailable
	metricMemoryTotal
	metricSwapUsed
	metricSwapTotal
	metricDiskUsed
	metricDiskFree
	metricDiskTotal
	metricDiskRead
	metricDiskWrite
	metricProcessCPUPercent
	metricProcessResident
	metricGoroutines
	metricRunningJobs
	metricQueuedJobs
	metricBlockedJobs
	metricConcurrentJobs
	metricCount
)

// metricNames are the JSON names of the metrics, in metric order. They
// name the fields of ResourceBucket and the keys stored in the database.
var metricNames = [metricCount]string{
	"cpuPercent", "load1", "load5", "load15",
	"memoryUsedBytes", "memoryAvailableBytes", "memoryTotalBytes",
	"swapUsedBytes", "swapTotalBytes",
	"diskUsedBytes", "diskFreeBytes", "diskTotalBytes",
	"diskReadBytesPerSecond", "diskWriteBytesPerSecond",
	"processCpuPercent", "processResidentBytes", "goroutines",
	"runningJobs", "queuedJobs", "blockedJobs", "concurrentJobs",
}

// metricByName returns the metric with the given JSON name.
func metricByName(name string) (metric, bool) {
	for m, n := range metricNames {
		if n == name {
			return metric(m), true
		}
	}
	return 0, false
}

// Sample is one measurement of every metric at one instant.
type Sample struct {
	Time time.Time
	// Values holds one value per metric, NaN where the value was not
	// measured, such as the first CPU reading or a failed measurement.
	Values [metricCount]float64
}

// newSample returns a sample at t with every value unmeasured.
func newSample(t time.Time) Sample {
	s := Sample{Time: t}
	for i := range s.Values {
		s.Values[i] = math.NaN()
	}
	return s
}

// Value returns the value of the metric with the given JSON name and
// whether it was measured.
func (s Sample) Value(name string) (float64, bool) {
	m, ok := metricByName(name)
	if !ok || math.IsNaN(s.Values[m]) {
		return 0, false
	}
	return s.Values[m], true
}
