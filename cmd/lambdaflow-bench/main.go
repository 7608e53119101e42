// Command lambdaflow-bench measures lambdaflow against the tools people
// would use instead and writes the report docs/benchmarks.md. Every figure
// is shown as a ratio to a peer measured in the same run, because the
// absolute figures move with the load on the machine.
//
// It starts the lambdaflow binary on a loopback port for the HTTP
// measurements, runs the Go benchmarks of the pool with go test and runs
// data workflows in process through the executor. The peers are
// task-spooler, GNU parallel, xargs, Miller and DuckDB (through Node.js),
// which bench/install.sh installs. A peer that is missing is skipped with
// a note in the report.
//
//	go run ./cmd/lambdaflow-bench [-smoke] [-out docs/benchmarks.md]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// sizes are the sizes of one run of the suite.
type sizes struct {
	// jobs is the number of trivial jobs each tool runs.
	jobs int
	// clients is the number of concurrent HTTP clients submitting them.
	clients int
	// rate is the lambda invocations per second of the latency test, and
	// rateDuration how long it lasts.
	rate         int
	rateDuration time.Duration
	// blockedJobs is the number of BLOCKED jobs of the busy pool.
	blockedJobs int
	// rows is the number of flights rows the block tasks read, and
	// repeats how often each task runs; the median counts.
	rows    int
	repeats int
	// benchCount and benchTime are go test's -count and -benchtime;
	// benchstat needs 6 runs for a confidence interval. A
	// fixed number of iterations keeps go test from running the setup of
	// a deep queue again for each trial count of iterations.
	benchCount int
	benchTime  string
}

var (
	fullSizes = sizes{
		jobs: 5000, clients: 16, rate: 200, rateDuration: 10 * time.Second, blockedJobs: 1000,
		rows: 1_000_000, repeats: 3, benchCount: 6, benchTime: "5000x",
	}
	smokeSizes = sizes{
		jobs: 200, clients: 8, rate: 50, rateDuration: 2 * time.Second, blockedJobs: 20,
		rows: 20_000, repeats: 1, benchCount: 1, benchTime: "100x",
	}
)

// benchstatVersion pins golang.org/x/perf for benchstat.
const benchstatVersion = "v0.0.0-20260908200009-22c9c6c9d4da"

type options struct {
	smoke    bool
	out      string
	repo     string
	dataDir  string
	depsDir  string
	rawDir   string
	sizes    sizes
	workDir  string
	binary   string
	sections string
	profile  string
	peers    bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("lambdaflow-bench: ")
	var opts options
	flag.BoolVar(&opts.smoke, "smoke", false, "tiny sizes and no benchstat, to check that the suite still runs (under a minute)")
	flag.StringVar(&opts.out, "out", "docs/benchmarks.md", "report file to write")
	flag.StringVar(&opts.repo, "repo", ".", "root of the lambdaflow repository")
	flag.StringVar(&opts.dataDir, "data", "", "directory holding flights-20k.json (default: the first of ../shared/data/vega-datasets and /work/shared/data/vega-datasets that exists)")
	flag.StringVar(&opts.depsDir, "deps", "bench/.deps", "directory whose node_modules holds @duckdb/node-api")
	flag.StringVar(&opts.rawDir, "raw", "bench/out", "directory for raw go test output, kept for benchstat comparisons across runs")
	flag.StringVar(&opts.sections, "sections", "jobs,lambda,pool,blocks,monitor", "comma-separated sections to run")
	flag.StringVar(&opts.binary, "binary", "", "lambdaflow binary to measure (default: build one from -repo)")
	flag.StringVar(&opts.profile, "cpuprofile", "", "write a CPU profile of this process, which runs the block tasks in process, to `file`")
	flag.BoolVar(&opts.peers, "peers", true, "run the tools lambdaflow is compared with; false measures lambdaflow alone, such as for a profile")
	flag.Parse()

	opts.sizes = fullSizes
	if opts.smoke {
		opts.sizes = smokeSizes
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, opts); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, opts options) error {
	var err error
	if opts.repo, err = filepath.Abs(opts.repo); err != nil {
		return err
	}
	for _, dir := range []*string{&opts.depsDir, &opts.rawDir, &opts.out} {
		if !filepath.IsAbs(*dir) {
			*dir = filepath.Join(opts.repo, *dir)
		}
	}
	opts.workDir, err = os.MkdirTemp("", "lambdaflow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(opts.workDir)

	if opts.profile != "" {
		f, err := os.Create(opts.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	started := time.Now()
	rep := &report{smoke: opts.smoke, sizes: opts.sizes, machine: describeMachine(ctx, opts)}
	sections := strings.Split(opts.sections, ",")
	has := func(name string) bool {
		for _, s := range sections {
			if s == name {
				return true
			}
		}
		return false
	}
	if opts.binary == "" && (has("jobs") || has("lambda") || has("monitor")) {
		log.Print("building the lambdaflow binary")
		opts.binary = filepath.Join(opts.workDir, "lambdaflow")
		if err := command(ctx, opts.repo, "go", "build", "-o", opts.binary, "./cmd/lambdaflow").Run(); err != nil {
			return fmt.Errorf("building lambdaflow: %w", err)
		}
	}
	steps := []struct {
		name string
		run  func(context.Context, options, *report) error
	}{
		{"jobs", measureJobs},
		{"lambda", measureLambda},
		{"pool", measurePool},
		{"blocks", measureBlocks},
		{"monitor", measureMonitor},
	}
	for _, step := range steps {
		if !has(step.name) {
			continue
		}
		log.Printf("measuring %s", step.name)
		if err := step.run(ctx, opts, rep); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	rep.elapsed = time.Since(started)
	if err := os.WriteFile(opts.out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s in %s", opts.out, rep.elapsed.Round(time.Second))
	return nil
}
