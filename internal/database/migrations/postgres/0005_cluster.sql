-- The node that runs or ran a job, and until when its lease on a running
-- job holds; the rule that at most one job per lock key holds its lock,
-- enforced by the database itself; and the nodes of a cluster.
ALTER TABLE jobs ADD COLUMN node TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at TIMESTAMPTZ;

CREATE UNIQUE INDEX jobs_one_holder ON jobs (lock_key) WHERE state IN ('RUNNING', 'CANCELLING');
CREATE INDEX jobs_waiting_seq ON jobs (seq) WHERE state IN ('QUEUED', 'BLOCKED');
CREATE INDEX jobs_holding_lease ON jobs (lease_expires_at) WHERE state IN ('RUNNING', 'CANCELLING');

-- One row per node that ever ran in the cluster. A node renews its
-- heartbeat with its leases; a node whose heartbeat is older than its
-- lease is dead.
CREATE TABLE nodes (
	name                TEXT COLLATE "C" PRIMARY KEY,
	started_at          TIMESTAMPTZ NOT NULL,
	heartbeat_at        TIMESTAMPTZ NOT NULL,
	lease_ms            BIGINT NOT NULL,
	concurrent_jobs     INTEGER NOT NULL,  -- slots in force on the node
	max_concurrent_jobs INTEGER NOT NULL,  -- the node's usable cores
	resources           TEXT               -- JSON object: the node's latest monitor sample
);
