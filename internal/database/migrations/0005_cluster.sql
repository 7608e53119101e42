-- The node that runs or ran a job, set only when nodes share a
-- PostgreSQL database, and the rule that at most one job per lock key
-- holds its lock, enforced by the database itself.
ALTER TABLE jobs ADD COLUMN node TEXT;

CREATE UNIQUE INDEX jobs_one_holder ON jobs (lock_key) WHERE state IN ('RUNNING', 'CANCELLING');
