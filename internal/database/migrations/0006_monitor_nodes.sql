-- Resource samples of every node that shares the database, keyed by node
-- and time. A single node outside a cluster stores its samples under the
-- node ''. SQLite cannot change a primary key in place, so the table is
-- recreated with the rows copied; WITHOUT ROWID stores the rows in key
-- order, which is the order the monitor reads and prunes them in.
CREATE TABLE monitor_samples_by_node (
	node    TEXT NOT NULL DEFAULT '', -- name of the node that took the sample
	time_ms INTEGER NOT NULL,         -- Unix time in milliseconds
	metrics TEXT NOT NULL,            -- JSON object of metric name to value; unmeasured metrics are left out
	PRIMARY KEY (node, time_ms)
) WITHOUT ROWID;

INSERT INTO monitor_samples_by_node (node, time_ms, metrics)
	SELECT '', time_ms, metrics FROM monitor_samples;

DROP TABLE monitor_samples;

ALTER TABLE monitor_samples_by_node RENAME TO monitor_samples;
