package monitor

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// cgroupV2 reads the limits and usage of the process's cgroup v2 from a
// file system root, normally os.DirFS("/"). A limit set on an ancestor
// also bounds the process, so each method uses the cgroup with the
// smallest limit among the process's own and its ancestors. cgroup v1 is
// not read: on a v1 host the monitor reports the machine's figures.
type cgroupV2 struct {
	root fs.FS
}

// cgroupCPU is the CPU quota of a cgroup and its CPU time so far.
type cgroupCPU struct {
	// Cores is the quota in cores, cpu.max's quota divided by its period.
	Cores float64
	// UsageMicros is cpu.stat's usage_usec, the CPU time of every process
	// in the cgroup, in microseconds.
	UsageMicros uint64
}

// cgroupMemory is the memory limit of a cgroup and its use.
type cgroupMemory struct {
	// Limit is memory.max in bytes.
	Limit uint64
	// Used is memory.current minus the inactive file cache of
	// memory.stat, which the kernel reclaims before it hits the limit.
	Used uint64
}

// dirs returns the cgroup directories of the process, its own first and
// then each ancestor up to the root, relative to root.
func (c cgroupV2) dirs() []string {
	own := "/"
	if data, err := fs.ReadFile(c.root, "proc/self/cgroup"); err == nil {
		scanner := bufio.NewScanner(bytes.NewReader(data))
		for scanner.Scan() {
			if rest, ok := strings.CutPrefix(scanner.Text(), "0::"); ok {
				own = rest
			}
		}
	}
	var dirs []string
	for dir := path.Clean("/" + own); ; dir = path.Dir(dir) {
		dirs = append(dirs, path.Join("sys/fs/cgroup", dir))
		if dir == "/" {
			return dirs
		}
	}
}

// cpu returns the CPU quota and usage of the cgroup with the smallest
// quota, and false when no cgroup on the path sets one.
func (c cgroupV2) cpu() (cgroupCPU, bool) {
	var best cgroupCPU
	found := false
	for _, dir := range c.dirs() {
		cores, ok := readCPUMax(c.root, dir)
		if !ok || (found && cores >= best.Cores) {
			continue
		}
		usage, ok := readKeyedValue(c.root, path.Join(dir, "cpu.stat"), "usage_usec")
		if !ok {
			continue
		}
		best, found = cgroupCPU{Cores: cores, UsageMicros: usage}, true
	}
	return best, found
}

// memory returns the memory limit and use of the cgroup with the
// smallest memory.max, and false when no cgroup on the path sets one.
func (c cgroupV2) memory() (cgroupMemory, bool) {
	var best cgroupMemory
	found := false
	for _, dir := range c.dirs() {
		limit, ok := readUint(c.root, path.Join(dir, "memory.max"))
		if !ok || (found && limit >= best.Limit) {
			continue
		}
		current, ok := readUint(c.root, path.Join(dir, "memory.current"))
		if !ok {
			continue
		}
		inactive, _ := readKeyedValue(c.root, path.Join(dir, "memory.stat"), "inactive_file")
		used := current - min(inactive, current)
		best, found = cgroupMemory{Limit: limit, Used: min(used, limit)}, true
	}
	return best, found
}

// readCPUMax reads dir/cpu.max, "QUOTA PERIOD" in microseconds or
// "max PERIOD" for no limit, as a number of cores.
func readCPUMax(root fs.FS, dir string) (float64, bool) {
	data, err := fs.ReadFile(root, path.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 || fields[0] == "max" {
		return 0, false
	}
	quota, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil || quota == 0 {
		return 0, false
	}
	period, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil || period == 0 {
		return 0, false
	}
	return float64(quota) / float64(period), true
}

// readUint reads a file holding one unsigned integer. "max" (no limit)
// and unreadable files return false.
func readUint(root fs.FS, name string) (uint64, bool) {
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}

// readKeyedValue reads the value of key from a file of "KEY VALUE"
// lines, such as cpu.stat and memory.stat.
func readKeyedValue(root fs.FS, name, key string) (uint64, bool) {
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return 0, false
	}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		k, v, ok := strings.Cut(scanner.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
