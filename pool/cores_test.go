package pool

import (
	"testing"
	"testing/fstest"
)

func TestCgroupCPULimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  float64
		found bool
	}{
		{"no cgroup files", map[string]string{}, 0, false},
		{"v2 root quota", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"sys/fs/cgroup/cpu.max": "150000 100000\n",
		}, 1.5, true},
		{"v2 no limit", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"sys/fs/cgroup/cpu.max": "max 100000\n",
		}, 0, false},
		{"v2 parent quota is smaller", map[string]string{
			"proc/self/cgroup":                          "0::/app.slice/job.scope\n",
			"sys/fs/cgroup/app.slice/job.scope/cpu.max": "400000 100000\n",
			"sys/fs/cgroup/app.slice/cpu.max":           "200000 100000\n",
		}, 2, true},
		{"v2 without proc", map[string]string{
			"sys/fs/cgroup/cpu.max": "300000 100000\n",
		}, 3, true},
		{"v1 in container", map[string]string{
			"proc/self/cgroup":                            "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  "250000\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
		}, 2.5, true},
		{"v1 on host path", map[string]string{
			"proc/self/cgroup": "4:cpu,cpuacct:/user.slice\n",
			"sys/fs/cgroup/cpu/user.slice/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpu/user.slice/cpu.cfs_period_us": "100000\n",
		}, 1, true},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                            "4:cpu,cpuacct:/\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
		}, 0, false},
		{"malformed cpu.max", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"sys/fs/cgroup/cpu.max": "lots\n",
		}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fstest.MapFS{}
			for name, data := range tc.files {
				root[name] = &fstest.MapFile{Data: []byte(data)}
			}
			got, found := cgroupCPULimit(root)
			if found != tc.found {
				t.Fatalf("found = %t, want %t", found, tc.found)
			}
			if got != tc.want {
				t.Errorf("limit = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCapCores(t *testing.T) {
	for _, tc := range []struct {
		affinity int
		quota    float64
		hasQuota bool
		want     int
	}{
		{8, 0, false, 8},
		{8, 2.5, true, 2},
		{8, 0.5, true, 1},
		{2, 16, true, 2},
		{0, 0, false, 1},
	} {
		if got := capCores(tc.affinity, tc.quota, tc.hasQuota); got != tc.want {
			t.Errorf("capCores(%d, %v, %t) = %d, want %d", tc.affinity, tc.quota, tc.hasQuota, got, tc.want)
		}
	}
	if got := usableCores(); got < 1 {
		t.Errorf("usableCores() = %d, want at least 1", got)
	}
}
