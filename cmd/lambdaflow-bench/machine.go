package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// machine describes where a run happened.
type machine struct {
	cpu    string
	cores  int
	memory string
	kernel string
	goVer  string
	tools  []toolVersion
	date   time.Time
}

type toolVersion struct {
	name, version string
}

func describeMachine(ctx context.Context, opts options) machine {
	m := machine{cpu: "unknown", cores: runtime.NumCPU(), memory: "unknown", date: time.Now().UTC()}
	if model := procField("/proc/cpuinfo", "model name"); model != "" {
		m.cpu = model
	}
	if total := procField("/proc/meminfo", "MemTotal"); total != "" {
		var kib int64
		fmt.Sscanf(total, "%d", &kib)
		m.memory = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
	}
	m.kernel = firstLine(ctx, "uname", "-sr")
	m.goVer = firstLine(ctx, "go", "version")
	m.tools = []toolVersion{
		{"task-spooler", taskSpoolerVersion(ctx)},
		{"GNU parallel", firstLine(ctx, "parallel", "--version")},
		{"xargs", firstLine(ctx, "xargs", "--version")},
		{"Miller", firstLine(ctx, "mlr", "--version")},
		{"Node.js", firstLine(ctx, "node", "--version")},
		{"@duckdb/node-api", duckDBVersion(opts.depsDir)},
	}
	return m
}

// procField returns the value of the first "name: value" line of a
// /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == name {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// firstLine returns the first line a command prints, or "not installed".
func firstLine(ctx context.Context, name string, args ...string) string {
	if _, err := exec.LookPath(name); err != nil {
		return "not installed"
	}
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// taskSpoolerVersion reads the version from tsp's help text, since tsp
// has no version flag.
func taskSpoolerVersion(ctx context.Context) string {
	if _, err := exec.LookPath("tsp"); err != nil {
		return "not installed"
	}
	out, _ := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", "task-spooler").Output()
	if len(out) > 0 {
		return "tsp " + string(out) + " (Debian package)"
	}
	return "installed, version unknown"
}

func duckDBVersion(depsDir string) string {
	data, err := os.ReadFile(filepath.Join(depsDir, "node_modules", "@duckdb", "node-api", "package.json"))
	if err != nil {
		return "not installed"
	}
	const key = `"version": "`
	_, rest, ok := strings.Cut(string(data), key)
	if !ok {
		return "unknown"
	}
	version, _, _ := strings.Cut(rest, `"`)
	return version
}

// command returns a command that runs in dir with the output going to
// this process's stderr, so that a failure shows its cause.
func command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd
}

// installed reports whether every named program is on PATH.
func installed(names ...string) bool {
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			return false
		}
	}
	return true
}
