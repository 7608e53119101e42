package pool

import (
	"bufio"
	"bytes"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// usableCores returns the number of CPU cores this process may use: the
// size of its CPU affinity mask (runtime.NumCPU reads it), capped by the
// cgroup CPU quota when one is set. A quota of 1.5 cores counts as 1, so
// the pool never runs more jobs than whole cores. The result is at
// least 1.
func usableCores() int {
	limit, ok := cgroupCPULimit(os.DirFS("/"))
	return capCores(runtime.NumCPU(), limit, ok)
}

func capCores(affinity int, quota float64, hasQuota bool) int {
	n := affinity
	if hasQuota && quota < float64(n) {
		n = int(math.Floor(quota))
	}
	return max(n, 1)
}

// cgroupCPULimit returns the CPU quota in cores of the process's cgroup,
// read from root (the file system root), and whether one is set. It reads
// cgroup v2's cpu.max in the process's cgroup and every ancestor, keeping
// the smallest, and otherwise cgroup v1's cpu.cfs_quota_us and
// cpu.cfs_period_us.
func cgroupCPULimit(root fs.FS) (float64, bool) {
	data, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		// Without /proc, a container's own cgroup is still mounted at the
		// root of /sys/fs/cgroup.
		if limit, ok := cgroupV2Limit(root, "sys/fs/cgroup"); ok {
			return limit, true
		}
		return cgroupV1Limit(root, "sys/fs/cgroup/cpu")
	}
	v2Path, v1Path, v1Found := parseProcCgroup(data)
	if limit, ok := cgroupV2Ancestors(root, v2Path); ok {
		return limit, true
	}
	if !v1Found {
		return 0, false
	}
	for _, mount := range []string{"sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu"} {
		// Inside a container the mount root is the container's cgroup, so
		// the host path from /proc/self/cgroup may not exist there.
		if limit, ok := cgroupV1Limit(root, path.Join(mount, v1Path)); ok {
			return limit, true
		}
		if limit, ok := cgroupV1Limit(root, mount); ok {
			return limit, true
		}
	}
	return 0, false
}

// parseProcCgroup returns the cgroup v2 path ("0::/path") and the path of
// the cgroup v1 hierarchy that has the cpu controller, from the contents
// of /proc/self/cgroup.
func parseProcCgroup(data []byte) (v2Path, v1Path string, v1Found bool) {
	v2Path = "/"
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		fields := strings.SplitN(scanner.Text(), ":", 3)
		if len(fields) != 3 {
			continue
		}
		if fields[0] == "0" && fields[1] == "" {
			v2Path = fields[2]
			continue
		}
		for _, controller := range strings.Split(fields[1], ",") {
			if controller == "cpu" {
				v1Path, v1Found = fields[2], true
			}
		}
	}
	return v2Path, v1Path, v1Found
}

// cgroupV2Ancestors returns the smallest cpu.max quota of the cgroup at
// cgroupPath and its ancestors, since a parent's quota also limits its
// children.
func cgroupV2Ancestors(root fs.FS, cgroupPath string) (float64, bool) {
	best, found := math.Inf(1), false
	dir := path.Clean("/" + cgroupPath)
	for {
		if limit, ok := cgroupV2Limit(root, path.Join("sys/fs/cgroup", dir)); ok && limit < best {
			best, found = limit, true
		}
		if dir == "/" {
			return best, found
		}
		dir = path.Dir(dir)
	}
}

// cgroupV2Limit reads dir/cpu.max, "QUOTA PERIOD" in microseconds or
// "max PERIOD" for no limit.
func cgroupV2Limit(root fs.FS, dir string) (float64, bool) {
	data, err := fs.ReadFile(root, path.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 || fields[0] == "max" {
		return 0, false
	}
	return quotaCores(fields[0], fields[1])
}

// cgroupV1Limit reads dir/cpu.cfs_quota_us (-1 for no limit) and
// dir/cpu.cfs_period_us.
func cgroupV1Limit(root fs.FS, dir string) (float64, bool) {
	quota, err := fs.ReadFile(root, path.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, false
	}
	period, err := fs.ReadFile(root, path.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, false
	}
	return quotaCores(strings.TrimSpace(string(quota)), strings.TrimSpace(string(period)))
}

func quotaCores(quota, period string) (float64, bool) {
	q, err := strconv.ParseInt(quota, 10, 64)
	if err != nil || q <= 0 {
		return 0, false
	}
	p, err := strconv.ParseInt(period, 10, 64)
	if err != nil || p <= 0 {
		return 0, false
	}
	return float64(q) / float64(p), true
}
