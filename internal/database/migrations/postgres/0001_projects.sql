-- The PostgreSQL schema mirrors the SQLite one column for column and keeps
-- its encodings: JSON as text, times as RFC 3339 text or Unix
-- milliseconds. The stores then read and write both the same way. Keys
-- that are listed in order use the "C" collation, which sorts by code
-- point like SQLite's default.
CREATE TABLE projects (
	name        TEXT COLLATE "C" PRIMARY KEY,
	definition  TEXT NOT NULL,              -- the template as JSON
	vals        TEXT NOT NULL DEFAULT '{}', -- current parameter values as JSON
	version     BIGINT NOT NULL,            -- bumped on every change; the ETag
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
