-- Resource samples of every node that shares the database, keyed by node
-- and time. A single node outside a cluster stores its samples under the
-- node '', which the existing rows get.
ALTER TABLE monitor_samples ADD COLUMN node TEXT COLLATE "C" NOT NULL DEFAULT '';

ALTER TABLE monitor_samples DROP CONSTRAINT monitor_samples_pkey;
ALTER TABLE monitor_samples ADD PRIMARY KEY (node, time_ms);
