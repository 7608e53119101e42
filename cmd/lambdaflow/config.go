package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/lambdaflow/lambdaflow/internal/auth"
	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/monitor"
	"github.com/lambdaflow/lambdaflow/pool"
)

// serveConfig holds the settings of `lambdaflow serve`. Each has a flag
// and an environment variable LAMBDAFLOW_<FLAG IN UPPER SNAKE CASE>; a
// flag given on the command line wins over the environment.
type serveConfig struct {
	Addr                 string
	DataDir              string
	Database             string
	Cluster              bool
	NodeName             string
	NodeLease            time.Duration
	ClusterPoll          time.Duration
	FilesDir             string
	ConcurrentJobs       int
	QueueLimit           int
	ResultRows           int
	ShutdownGrace        time.Duration
	LambdaMaxWait        time.Duration
	InstanceRetention    time.Duration
	IdempotencyRetention time.Duration
	LambdaMaxBatch       int
	MaxUploadBytes       int64
	MaxBodyBytes         int64
	JobTimeout           time.Duration
	MaxJobTimeout        time.Duration
	LambdaSweepInterval  time.Duration
	LogLevel             string
	LogFormat            string
	Examples             bool
	TokensFile           string
	Insecure             bool
	MonitorInterval      time.Duration
	MonitorHistory       time.Duration
	MonitorRecentJobs    int

	// logOutput receives the log instead of standard error when set, and
	// serving is called with the listen address once the service serves.
	// Tests that run the service in-process set them.
	logOutput io.Writer
	serving   func(addr string)

	// tokens contains the tokens that finish read from TokensFile. It is
	// nil when TokensFile is empty, so the service runs without access
	// control.
	tokens *auth.Store
}

func (c *serveConfig) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address, host:port")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory of the database and the jobs' output directories")
	fs.StringVar(&c.Database, "database", "", "PostgreSQL URL, postgres://user:password@host:port/dbname, to store projects, jobs, instances and samples in instead of <data-dir>/lambdaflow.db; environment variable LAMBDAFLOW_DATABASE_URL")
	fs.BoolVar(&c.Cluster, "cluster", false, "run as one node of a cluster: several nodes on one --database share one queue; needs --database")
	fs.StringVar(&c.NodeName, "node-name", "", "name of this cluster node, unique among the running nodes (default the host name)")
	fs.DurationVar(&c.NodeLease, "node-lease", pool.DefaultLease, "how long a cluster node holds a running job without renewing its lease; a dead node's jobs are queued again after it")
	fs.DurationVar(&c.ClusterPoll, "cluster-poll", pool.DefaultPoll, "interval of the cluster node's slow poll, the safety net behind notifications")
	fs.StringVar(&c.FilesDir, "files-dir", "", "directory that reading blocks and file parameters resolve paths against (default <data-dir>/files)")
	fs.IntVar(&c.ConcurrentJobs, "concurrent-jobs", 1, "slots: jobs that may run at once, capped at the usable CPU cores; a value set at run time with PATCH /api/v1/settings is kept across restarts and wins")
	fs.IntVar(&c.QueueLimit, "queue-limit", 10000, "maximum number of waiting (QUEUED or BLOCKED) jobs; more submissions get 429; a value set with PATCH /api/v1/settings is kept across restarts and wins")
	fs.IntVar(&c.ResultRows, "result-rows", 1000, "maximum result rows a job returns inline")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 30*time.Second, "on SIGINT or SIGTERM, how long running jobs may finish before they are cancelled")
	fs.DurationVar(&c.LambdaMaxWait, "lambda-max-wait", 60*time.Second, "longest wait a lambda invocation may ask for; longer waits are cut to it")
	fs.DurationVar(&c.InstanceRetention, "instance-retention", 24*time.Hour, "how long an instance invoked with deleteExecutionOnFinish false stays readable after its job ended")
	fs.DurationVar(&c.IdempotencyRetention, "idempotency-retention", 24*time.Hour, "how long an idempotency key returns its first job")
	fs.IntVar(&c.LambdaMaxBatch, "lambda-max-batch", 100, "maximum parameter sets in one lambda batch")
	fs.Int64Var(&c.MaxUploadBytes, "max-upload-bytes", 32<<20, "maximum size in bytes of a multipart lambda invocation with its files")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 4<<20, "maximum size in bytes of any other request body; larger ones get 413")
	fs.DurationVar(&c.JobTimeout, "job-timeout", time.Hour, "run time limit of a job whose request and project set no timeout; 0 for none")
	fs.DurationVar(&c.MaxJobTimeout, "max-job-timeout", 24*time.Hour, "longest timeout a request or project may set; longer ones get 422; 0 for no cap")
	fs.DurationVar(&c.LambdaSweepInterval, "lambda-sweep-interval", time.Minute, "how often expired instances and idempotency keys are removed")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.TokensFile, "tokens-file", "", "file of API tokens, one \"ROLE TOKEN\" line each with ROLE admin, runner or viewer; without it every caller has full access and --addr must be a loopback address")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow serving without --tokens-file on an address that is not loopback, so that anyone who reaches it has full access")
	fs.DurationVar(&c.MonitorInterval, "monitor-interval", monitor.DefaultInterval, "time between two resource samples of the monitor, at least 10ms")
	fs.DurationVar(&c.MonitorHistory, "monitor-history", monitor.DefaultHistory, "how long resource samples are kept, in memory and in the database")
	fs.IntVar(&c.MonitorRecentJobs, "monitor-recent-jobs", monitor.DefaultRecentJobs, fmt.Sprintf("finished jobs the queue view lists unless a request asks for another number, 0 to %d", monitor.MaxRecentJobs))
	fs.BoolVar(&c.Examples, "examples", true, "store the example projects when the database holds no project, and copy their data into the files directory")
}

// applyEnv sets every flag not given on the command line from its
// environment variable, when that is set.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok || f.Changed {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

// envNames lists the flags whose environment variable is not named after
// the flag. LAMBDAFLOW_DATABASE_URL follows the common DATABASE_URL name.
var envNames = map[string]string{"database": "LAMBDAFLOW_DATABASE_URL"}

func envName(flag string) string {
	if name, ok := envNames[flag]; ok {
		return name
	}
	return "LAMBDAFLOW_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// finish fills in derived defaults and checks every setting, naming the
// flag at fault.
func (c *serveConfig) finish() error {
	if c.FilesDir == "" {
		c.FilesDir = filepath.Join(c.DataDir, "files")
	}
	var errs []error
	if c.ConcurrentJobs < 1 {
		errs = append(errs, fmt.Errorf("--concurrent-jobs must be at least 1, got %d", c.ConcurrentJobs))
	}
	if c.QueueLimit < 1 {
		errs = append(errs, fmt.Errorf("--queue-limit must be at least 1, got %d", c.QueueLimit))
	}
	if c.ResultRows < 1 {
		errs = append(errs, fmt.Errorf("--result-rows must be at least 1, got %d", c.ResultRows))
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("--max-body-bytes must be at least 1, got %d", c.MaxBodyBytes))
	}
	if c.MaxUploadBytes < 1 {
		errs = append(errs, fmt.Errorf("--max-upload-bytes must be at least 1, got %d", c.MaxUploadBytes))
	}
	if c.JobTimeout < 0 || c.MaxJobTimeout < 0 {
		errs = append(errs, fmt.Errorf("--job-timeout and --max-job-timeout must not be negative, got %s and %s", c.JobTimeout, c.MaxJobTimeout))
	} else if c.MaxJobTimeout > 0 && (c.JobTimeout == 0 || c.JobTimeout > c.MaxJobTimeout) {
		errs = append(errs, fmt.Errorf("--job-timeout %s must be positive and at most --max-job-timeout %s", c.JobTimeout, c.MaxJobTimeout))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace must not be negative, got %s", c.ShutdownGrace))
	}
	errs = append(errs, c.checkMonitor()...)
	if err := checkDatabaseURL(c.Database); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.checkCluster()...)
	if _, err := c.level(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat))
	}
	if c.TokensFile != "" {
		tokens, err := auth.LoadFile(c.TokensFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--tokens-file: %w", err))
		case tokens.Len() == 0:
			errs = append(errs, fmt.Errorf("--tokens-file %s lists no token; add a ROLE TOKEN line or leave the flag out", c.TokensFile))
		default:
			c.tokens = tokens
		}
	}
	if err := checkListenAddr(c.Addr, c.TokensFile != "", c.Insecure); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkCluster checks the cluster flags and names the node when no
// --node-name is given.
func (c *serveConfig) checkCluster() []error {
	var errs []error
	if c.Cluster && c.Database == "" {
		errs = append(errs, errors.New("--cluster needs --database: the nodes of a cluster share a PostgreSQL database"))
	}
	if c.NodeLease < 300*time.Millisecond {
		errs = append(errs, fmt.Errorf("--node-lease must be at least 300ms, got %s", c.NodeLease))
	}
	if c.ClusterPoll < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--cluster-poll must be at least 10ms, got %s", c.ClusterPoll))
	}
	switch {
	case c.NodeName != "" && !c.Cluster:
		errs = append(errs, errors.New("--node-name names a cluster node; add --cluster or leave it out"))
	case utf8.RuneCountInString(c.NodeName) > 200 || !utf8.ValidString(c.NodeName) || strings.TrimSpace(c.NodeName) != c.NodeName ||
		strings.ContainsFunc(c.NodeName, func(r rune) bool { return r < ' ' || r == 0x7f }):
		errs = append(errs, fmt.Errorf("--node-name must be at most 200 characters of UTF-8, without control characters "+
			"or leading or trailing spaces, got %q", c.NodeName))
	case c.Cluster && c.NodeName == "":
		// The host name stays the same across restarts, so a restarted
		// node finds the jobs of its previous process at once.
		host, err := os.Hostname()
		if err != nil || host == "" {
			errs = append(errs, errors.New("--node-name is needed because the host name is unknown"))
		}
		c.NodeName = host
	}
	return errs
}

func (c *serveConfig) checkMonitor() []error {
	var errs []error
	if c.MonitorInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--monitor-interval must be at least 10ms, got %s", c.MonitorInterval))
	}
	if c.MonitorHistory < c.MonitorInterval {
		errs = append(errs, fmt.Errorf("--monitor-history must be at least --monitor-interval (%s), got %s", c.MonitorInterval, c.MonitorHistory))
	}
	if c.MonitorRecentJobs < 0 || c.MonitorRecentJobs > monitor.MaxRecentJobs {
		errs = append(errs, fmt.Errorf("--monitor-recent-jobs must be from 0 to %d, got %d", monitor.MaxRecentJobs, c.MonitorRecentJobs))
	}
	return errs
}

// checkDatabaseURL accepts an empty value (SQLite) or a postgres:// or
// postgresql:// URL. The message never repeats the URL, which may hold a
// password.
func checkDatabaseURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("--database is not a valid URL; use postgres://user:password@host:port/dbname")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("--database must be a postgres:// URL, got scheme %q; leave it out to use SQLite in --data-dir", u.Scheme)
	}
	return nil
}

func (c *serveConfig) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return l, nil
}

func (c *serveConfig) logger() *slog.Logger {
	level, _ := c.level()
	opts := &slog.HandlerOptions{Level: level}
	var out io.Writer = os.Stderr
	if c.logOutput != nil {
		out = c.logOutput
	}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// databaseName returns where the service stores its data, for the log:
// the SQLite file, or the PostgreSQL URL without its password.
func (c *serveConfig) databaseName() string {
	if c.Database == "" {
		return filepath.Join(c.DataDir, "lambdaflow.db")
	}
	return database.RedactURL(c.Database)
}
