-- Jobs of the pool. Scalar fields the pool filters or orders by are
-- columns; nested values are JSON text.
CREATE TABLE jobs (
	id           TEXT COLLATE "C" PRIMARY KEY, -- UUIDv7
	seq          BIGINT NOT NULL UNIQUE,       -- submission order, orders the queue
	project      TEXT COLLATE "C" NOT NULL,
	instance     TEXT,                         -- ephemeral instance id of a lambda job
	kind         TEXT NOT NULL,                -- execute | lambda
	lock_key     TEXT NOT NULL,                -- at most one running job per lock key
	state        TEXT NOT NULL,
	attempt      INTEGER NOT NULL,
	timeout_ms   BIGINT NOT NULL DEFAULT 0,    -- 0 is no timeout
	parameters   TEXT NOT NULL DEFAULT '{}',   -- JSON object
	definition   TEXT,                         -- JSON snapshot of the definition the job runs
	only_blocks  TEXT,                         -- JSON array of block names, or NULL for all
	blocks       TEXT NOT NULL DEFAULT '[]',   -- JSON array of block runs
	result       TEXT,                         -- JSON object
	outputs      TEXT NOT NULL DEFAULT '[]',   -- JSON array
	error        TEXT,                         -- JSON object
	stop         TEXT,                         -- JSON object: who stopped the job, why, when
	submitted_at TEXT NOT NULL,                -- RFC 3339 UTC with milliseconds
	started_at   TEXT,
	finished_at  TEXT
);

CREATE INDEX jobs_state_seq ON jobs (state, seq);
CREATE INDEX jobs_project_seq ON jobs (project, seq);

-- Settings changed at run time that survive restarts, such as the pool's
-- slot limit.
CREATE TABLE settings (
	key        TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
