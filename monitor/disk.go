package monitor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
)

// diskSelection finds the block devices whose reads and writes the disk
// rates count. That is the device of the file system that holds the data
// directory when /proc/diskstats lists it. Otherwise it is every disk of
// the machine: the devices of /sys/block with a device link, which
// leaves out partitions, loop, RAM and device-mapper devices.
type diskSelection struct {
	dataDir string
	// names holds the selected device names once resolved.
	names    []string
	resolved bool
}

// devices returns the selected device names, resolving them at the
// first call.
func (d *diskSelection) devices(ctx context.Context, counters map[string]disk.IOCountersStat) []string {
	if d.resolved {
		return d.names
	}
	d.resolved = true
	if name, ok := dataDevice(ctx, d.dataDir, counters); ok {
		d.names = []string{name}
		return d.names
	}
	for name := range counters {
		if _, err := os.Stat(filepath.Join("/sys/block", name, "device")); err == nil {
			d.names = append(d.names, name)
		}
	}
	slices.Sort(d.names)
	return d.names
}

// dataDevice returns the name in counters of the device mounted at the
// longest mount point that contains dir.
func dataDevice(ctx context.Context, dir string, counters map[string]disk.IOCountersStat) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	partitions, err := disk.PartitionsWithContext(ctx, true)
	if err != nil {
		return "", false
	}
	var best disk.PartitionStat
	for _, p := range partitions {
		if within(abs, p.Mountpoint) && len(p.Mountpoint) > len(best.Mountpoint) {
			best = p
		}
	}
	device := filepath.Base(best.Device)
	if _, ok := counters[device]; ok && strings.HasPrefix(best.Device, "/dev/") {
		return device, true
	}
	// A device-mapper device is mounted by its /dev/mapper name, which
	// gopsutil reports as the label of its dm-N entry.
	for name, c := range counters {
		if c.Label != "" && c.Label == device {
			return name, true
		}
	}
	return "", false
}

// within reports whether path is mount or lies below it.
func within(path, mount string) bool {
	if mount == "/" {
		return true
	}
	return path == mount || strings.HasPrefix(path, mount+"/")
}

// measureDiskUsage sets the use of the file system that holds the data
// directory.
func (s *sampler) measureDiskUsage(ctx context.Context, sample *Sample) error {
	usage, err := disk.UsageWithContext(ctx, s.dataDir)
	if err != nil {
		return err
	}
	sample.Values[metricDiskUsed] = float64(usage.Used)
	sample.Values[metricDiskFree] = float64(usage.Free)
	sample.Values[metricDiskTotal] = float64(usage.Total)
	return nil
}

// measureDiskIO sets the bytes per second read from and written to the
// selected devices since the previous sample.
func (s *sampler) measureDiskIO(ctx context.Context, now time.Time, sample *Sample) error {
	counters, err := disk.IOCountersWithContext(ctx)
	if err != nil {
		s.prevIO = ioCounter{}
		return err
	}
	cur := ioCounter{valid: true, at: now}
	for _, name := range s.disks.devices(ctx, counters) {
		cur.read += counters[name].ReadBytes
		cur.written += counters[name].WriteBytes
	}
	prev := s.prevIO
	s.prevIO = cur
	elapsed := cur.at.Sub(prev.at).Seconds()
	// Counters that went backwards were reset, as when a device was
	// removed, so that interval has no rate.
	if !prev.valid || elapsed <= 0 || cur.read < prev.read || cur.written < prev.written {
		return nil
	}
	sample.Values[metricDiskRead] = float64(cur.read-prev.read) / elapsed
	sample.Values[metricDiskWrite] = float64(cur.written-prev.written) / elapsed
	return nil
}
