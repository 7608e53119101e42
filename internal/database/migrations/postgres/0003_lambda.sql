-- Ephemeral instances of the lambda API: a snapshot of a project's
-- definition with bound parameters, run as exactly one job. Times are Unix
-- milliseconds, so that expiry is a plain integer comparison.
CREATE TABLE instances (
	id               TEXT COLLATE "C" PRIMARY KEY, -- UUIDv7
	project          TEXT NOT NULL,
	job_id           TEXT NOT NULL,
	definition       TEXT NOT NULL,                -- JSON snapshot the job runs
	parameters       TEXT NOT NULL DEFAULT '{}',   -- JSON object of bound values
	delete_on_finish BOOLEAN NOT NULL,             -- removed when the job ends
	created_at       BIGINT NOT NULL,
	finished_at      BIGINT,                       -- when the job ended, once seen
	expires_at       BIGINT                        -- when a kept instance is removed
);

CREATE INDEX instances_expires_at ON instances (expires_at);
CREATE INDEX instances_finished_at ON instances (finished_at);

-- Idempotency keys of lambda invocations: the first job queued under a
-- key, and a hash of the request that queued it.
CREATE TABLE idempotency_keys (
	project      TEXT NOT NULL,
	key          TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	job_id       TEXT NOT NULL,
	instance_id  TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	PRIMARY KEY (project, key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
