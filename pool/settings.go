package pool

import (
	"context"
	"fmt"
	"strconv"
)

// Store keys of the settings that survive restarts.
const (
	settingConcurrentJobs = "pool.concurrent_jobs"
	settingQueueLimit     = "pool.queue_limit"
	// settingClusterJobs is the cluster-wide slot limit, "0" for none.
	settingClusterJobs = "pool.cluster_concurrent_jobs"
)

// Settings are the pool's limits as GET /settings shows them.
type Settings struct {
	// ConcurrentJobs is the slot limit in force: the requested value
	// capped at MaxConcurrentJobs.
	ConcurrentJobs int `json:"concurrentJobs"`
	// RequestedConcurrentJobs is the slot limit that was requested.
	RequestedConcurrentJobs int `json:"requestedConcurrentJobs"`
	// MaxConcurrentJobs is the cap on the slot limit, by default the
	// number of CPU cores the server may use.
	MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	// QueueLimit is the maximum number of waiting jobs.
	QueueLimit int `json:"queueLimit"`
	// ClusterConcurrentJobs caps the running jobs of all nodes of a
	// cluster together. Null means no cluster-wide cap, which is always
	// the case on a server that is not a cluster node.
	ClusterConcurrentJobs *int `json:"clusterConcurrentJobs" extensions:"x-nullable"`
}

// SettingsUpdate changes the settings whose fields are set.
type SettingsUpdate struct {
	// ConcurrentJobs is the requested slot limit, 1 or more. A value
	// above maxConcurrentJobs is kept but capped when applied.
	ConcurrentJobs *int `json:"concurrentJobs,omitempty" minimum:"1"`
	// QueueLimit is the maximum number of waiting jobs, 1 or more.
	QueueLimit *int `json:"queueLimit,omitempty" minimum:"1"`
	// ClusterConcurrentJobs sets the cluster-wide slot limit, 1 or more,
	// on a cluster node; null removes it.
	ClusterConcurrentJobs *int `json:"clusterConcurrentJobs,omitempty" minimum:"1" extensions:"x-nullable"`
	// NoClusterLimit removes the cluster-wide slot limit. PATCH sets it
	// for "clusterConcurrentJobs": null.
	NoClusterLimit bool `json:"-"`
}

// Settings returns the limits in force.
func (p *Pool) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settingsLocked()
}

func (p *Pool) settingsLocked() Settings {
	return Settings{
		ConcurrentJobs:          p.effectiveLimitLocked(),
		RequestedConcurrentJobs: p.requestedJobs,
		MaxConcurrentJobs:       p.cfg.MaxConcurrentJobs,
		QueueLimit:              p.queueLimit,
	}
}

// SetConcurrentJobs sets the requested slot limit to n and stores it, so
// that it survives restarts. An n below 1 returns a *SettingsError.
// Raising the limit starts waiting jobs at once. Lowering it stops no
// running job, and no job starts until fewer jobs than the new limit run.
func (p *Pool) SetConcurrentJobs(ctx context.Context, n int) (Settings, error) {
	return p.UpdateSettings(ctx, SettingsUpdate{ConcurrentJobs: &n})
}

// UpdateSettings validates and stores the set fields of update in one
// transaction, applies them and returns the new settings. An invalid value,
// and a cluster-wide limit, which a single server does not have, return a
// *SettingsError and change nothing. A lower queue limit
// rejects new submissions until the queue is below it, but keeps the jobs
// already waiting.
func (p *Pool) UpdateSettings(ctx context.Context, update SettingsUpdate) (Settings, error) {
	if update.ClusterConcurrentJobs != nil {
		return Settings{}, &SettingsError{Field: "clusterConcurrentJobs",
			Message: "applies only to the nodes of a cluster, which run with --cluster"}
	}
	update.NoClusterLimit = false
	values, err := update.values()
	if err != nil {
		return Settings{}, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if len(values) == 0 {
		return p.settingsLocked(), nil
	}
	if err := p.store.SaveSettings(ctx, values); err != nil {
		return Settings{}, fmt.Errorf("storing settings: %w", err)
	}
	if n := update.ConcurrentJobs; n != nil {
		p.requestedJobs = *n
	}
	if n := update.QueueLimit; n != nil {
		p.queueLimit = *n
	}
	settings := p.settingsLocked()
	p.log.Info("pool settings changed", "concurrent_jobs", settings.ConcurrentJobs,
		"requested_concurrent_jobs", settings.RequestedConcurrentJobs, "queue_limit", settings.QueueLimit)
	p.dispatchLocked()
	return settings, nil
}

// values validates update and returns the store values of its set
// fields.
func (u SettingsUpdate) values() (map[string]string, error) {
	values := map[string]string{}
	for _, field := range []struct {
		name, key string
		value     *int
	}{
		{"concurrentJobs", settingConcurrentJobs, u.ConcurrentJobs},
		{"queueLimit", settingQueueLimit, u.QueueLimit},
		{"clusterConcurrentJobs", settingClusterJobs, u.ClusterConcurrentJobs},
	} {
		if field.value == nil {
			continue
		}
		if *field.value < 1 {
			return nil, &SettingsError{Field: field.name, Message: fmt.Sprintf("must be 1 or more, not %d", *field.value)}
		}
		values[field.key] = strconv.Itoa(*field.value)
	}
	if u.NoClusterLimit {
		values[settingClusterJobs] = "0"
	}
	return values, nil
}

// loadSettingsLocked replaces the configured limits with the stored ones.
// A stored value that is not a positive integer is logged and ignored.
func (p *Pool) loadSettingsLocked(ctx context.Context) error {
	for key, target := range map[string]*int{
		settingConcurrentJobs: &p.requestedJobs,
		settingQueueLimit:     &p.queueLimit,
	} {
		value, ok, err := p.store.LoadSetting(ctx, key)
		if err != nil {
			return fmt.Errorf("loading setting %s: %w", key, err)
		}
		if !ok {
			continue
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			p.log.Warn("ignoring invalid stored setting", "key", key, "value", value)
			continue
		}
		*target = n
	}
	return nil
}
