package lambda

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Default values of Config fields left at zero.
const (
	DefaultMaxWait              = 60 * time.Second
	DefaultInstanceRetention    = 24 * time.Hour
	DefaultIdempotencyRetention = 24 * time.Hour
	DefaultMaxBatch             = 100
	DefaultMaxUploadBytes       = 32 << 20
	DefaultSweepInterval        = time.Minute
)

// instancesDirName is the directory under Config.FilesDir that holds one
// directory per instance with uploaded files.
const instancesDirName = ".instances"

// Config configures a Service. The zero value of each field selects its
// default.
type Config struct {
	// MaxWait caps the wait of an invocation: a request's longer wait is
	// cut to it. The default is 60s.
	MaxWait time.Duration
	// InstanceRetention is how long an instance invoked with
	// deleteExecutionOnFinish false stays readable after its job ended.
	// The default is 24h.
	InstanceRetention time.Duration
	// IdempotencyRetention is how long an idempotency key keeps returning
	// the first job queued under it. The default is 24h.
	IdempotencyRetention time.Duration
	// MaxBatch is the maximum number of parameter sets in one batch. The
	// default is 100.
	MaxBatch int
	// MaxUploadBytes bounds the whole body of a multipart invocation, in
	// bytes. The default is 32 MiB.
	MaxUploadBytes int64
	// MaxBodyBytes bounds a JSON request body, in bytes. The default is
	// httpapi.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// SweepInterval is the time between two runs of the cleaner, which
	// removes expired instances and idempotency keys. The default is 1m.
	SweepInterval time.Duration
	// FilesDir is the directory that reading blocks and file parameters
	// resolve paths against, the executor's FilesDir. Uploaded files are
	// stored under FilesDir/.instances/<instance id>. Empty disables
	// uploads: a multipart invocation is then rejected with 415.
	FilesDir string
	// Logger receives the service's logs. Nil discards them.
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.InstanceRetention == 0 {
		cfg.InstanceRetention = DefaultInstanceRetention
	}
	if cfg.IdempotencyRetention == 0 {
		cfg.IdempotencyRetention = DefaultIdempotencyRetention
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

// validate checks a Config that has its defaults applied and names the
// first invalid field.
func (cfg Config) validate() error {
	durations := []struct {
		name  string
		value time.Duration
	}{
		{"MaxWait", cfg.MaxWait},
		{"InstanceRetention", cfg.InstanceRetention},
		{"IdempotencyRetention", cfg.IdempotencyRetention},
		{"SweepInterval", cfg.SweepInterval},
	}
	for _, d := range durations {
		if d.value < 0 {
			return fmt.Errorf("invalid lambda config: %s must be positive, or 0 for the default, not %s", d.name, d.value)
		}
	}
	if cfg.MaxBatch < 0 {
		return fmt.Errorf("invalid lambda config: MaxBatch must be 1 or more, or 0 for the default, not %d", cfg.MaxBatch)
	}
	if cfg.MaxUploadBytes < 0 {
		return fmt.Errorf("invalid lambda config: MaxUploadBytes must be positive, or 0 for the default, not %d", cfg.MaxUploadBytes)
	}
	if cfg.MaxBodyBytes < 0 {
		return fmt.Errorf("invalid lambda config: MaxBodyBytes must be positive, or 0 for the default, not %d", cfg.MaxBodyBytes)
	}
	return nil
}
