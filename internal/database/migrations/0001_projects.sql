CREATE TABLE projects (
	name        TEXT PRIMARY KEY,
	definition  TEXT NOT NULL,          -- the template as JSON
	vals        TEXT NOT NULL DEFAULT '{}', -- current parameter values as JSON
	version     INTEGER NOT NULL,       -- bumped on every change; the ETag
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
