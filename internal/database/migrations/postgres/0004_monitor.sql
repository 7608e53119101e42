-- Resource samples of the monitor, one row per sample, kept for the
-- monitor's history length and pruned by time.
CREATE TABLE monitor_samples (
	time_ms BIGINT PRIMARY KEY, -- Unix time in milliseconds
	metrics TEXT NOT NULL       -- JSON object of metric name to value; unmeasured metrics are left out
);
