package pool

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// Default values of Config fields left at zero.
const (
	DefaultConcurrentJobs = 1
	DefaultQueueLimit     = 10000
)

// Config configures a Pool. The zero value of each field selects its
// default.
type Config struct {
	// ConcurrentJobs is the requested number of slots, the maximum number
	// of jobs that run at once. The default is 1. A value stored with
	// SetConcurrentJobs survives restarts and replaces this one.
	ConcurrentJobs int
	// MaxConcurrentJobs caps ConcurrentJobs. The default, 0, is the
	// number of CPU cores this process may use: the CPU affinity mask
	// capped by a cgroup CPU quota when one is set, and at least 1.
	MaxConcurrentJobs int
	// QueueLimit is the maximum number of waiting (QUEUED or BLOCKED)
	// jobs. Submit rejects jobs past it. The default is 10000. A value
	// stored through the settings API survives restarts and replaces
	// this one.
	QueueLimit int
	// OutputRoot is the directory that holds one output directory per
	// job, OutputRoot/<job id>. Empty means jobs get no output directory
	// and the outputs endpoint finds no files.
	OutputRoot string
	// BaseURL prefixes the download URLs of job outputs, such as
	// "https://lambdaflow.example.com". Empty gives URLs relative to the
	// server root, "/api/v1/jobs/{id}/outputs/{name}".
	BaseURL string
	// JobTimeout is the run time limit of a job whose submission sets no
	// Timeout. Zero means such jobs run without a limit.
	JobTimeout time.Duration
	// MaxJobTimeout caps the Timeout of a submission: Submit rejects a
	// longer one with a 400 problem naming the field "timeout". Zero
	// means no cap.
	MaxJobTimeout time.Duration
	// Logger receives the pool's logs. Nil discards them.
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero field set to its default.
// usableCores is called only when MaxConcurrentJobs is 0.
func (cfg Config) withDefaults(usableCores func() int) Config {
	if cfg.ConcurrentJobs == 0 {
		cfg.ConcurrentJobs = DefaultConcurrentJobs
	}
	if cfg.MaxConcurrentJobs == 0 {
		cfg.MaxConcurrentJobs = usableCores()
	}
	if cfg.QueueLimit == 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	if cfg.OutputRoot != "" {
		cfg.OutputRoot = filepath.Clean(cfg.OutputRoot)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

// validate checks a Config that has its defaults applied.
func (cfg Config) validate() error {
	if cfg.ConcurrentJobs < 1 {
		return fmt.Errorf("invalid pool config: ConcurrentJobs must be 1 or more, or 0 for the default, not %d", cfg.ConcurrentJobs)
	}
	if cfg.MaxConcurrentJobs < 1 {
		return fmt.Errorf("invalid pool config: MaxConcurrentJobs must be 1 or more, or 0 for the usable cores, not %d", cfg.MaxConcurrentJobs)
	}
	if cfg.QueueLimit < 1 {
		return fmt.Errorf("invalid pool config: QueueLimit must be 1 or more, or 0 for the default, not %d", cfg.QueueLimit)
	}
	if cfg.JobTimeout < 0 || cfg.MaxJobTimeout < 0 {
		return fmt.Errorf("invalid pool config: JobTimeout %s and MaxJobTimeout %s must not be negative", cfg.JobTimeout, cfg.MaxJobTimeout)
	}
	if cfg.MaxJobTimeout > 0 && cfg.JobTimeout > cfg.MaxJobTimeout {
		return fmt.Errorf("invalid pool config: JobTimeout %s exceeds MaxJobTimeout %s", cfg.JobTimeout, cfg.MaxJobTimeout)
	}
	if cfg.BaseURL != "" && !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return fmt.Errorf("invalid pool config: BaseURL %q must start with http:// or https://", cfg.BaseURL)
	}
	return nil
}
