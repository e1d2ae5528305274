-- Bucket-native storage (issue 3): which manifest is current for each project, every
-- manifest version kept (time travel, retention) and the statistics of every segment.
-- The segments themselves live in R2 under projects/<projectId>/tables/<table>/; a forked
-- project's manifests refer to its parent's segment objects by key (copy-on-write).

ALTER TABLE projects ADD COLUMN manifest_version INTEGER NOT NULL DEFAULT 0;
-- When the project was last frozen (flushed and its DO storage emptied); NULL while awake.
ALTER TABLE projects ADD COLUMN frozen_at TEXT;
-- The project whose segments a fork started from (informational; references are per segment).
ALTER TABLE projects ADD COLUMN forked_from TEXT;

CREATE TABLE manifests (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  r2_key TEXT NOT NULL,
  last_lsn INTEGER NOT NULL,
  segments INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (project_id, version)
);

-- One row per (manifest version, segment it refers to): a segment object may be deleted
-- only when no kept manifest of any project refers to it.
CREATE TABLE segments (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  r2_key TEXT NOT NULL,
  table_name TEXT NOT NULL,
  rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_lsn INTEGER NOT NULL,
  last_lsn INTEGER NOT NULL,
  stats TEXT NOT NULL, -- JSON: {column: {min, max, nulls}}
  PRIMARY KEY (project_id, version, r2_key)
);
CREATE INDEX segments_key_idx ON segments(r2_key);
