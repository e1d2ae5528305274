-- Hearth catalog (D1). Applied by `npm start` (wrangler d1 migrations apply --local),
-- by the test pool before tests, and by `wrangler d1 migrations apply --remote` on deploy.
-- Secrets are never stored in clear: API keys by SHA-256 hash, passwords by a slow KDF.

CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT,
  email_confirmed_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  owner_account_id TEXT REFERENCES accounts(id),
  personal INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE INDEX projects_owner_idx ON projects(owner_account_id);

-- One row per issued key. The key itself is a JWT (HS256) that can be re-derived from
-- (id, project_id, role, issued_at) and the server secret; only its hash is kept here.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('anon', 'service')),
  key_hash TEXT NOT NULL UNIQUE,
  issued_at INTEGER NOT NULL,
  revoked_at TEXT
);
CREATE INDEX api_keys_project_idx ON api_keys(project_id);

CREATE TABLE project_members (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
  created_at TEXT NOT NULL,
  PRIMARY KEY (project_id, account_id)
);

CREATE TABLE apps (
  client_id TEXT PRIMARY KEY,
  owner_account_id TEXT NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  redirect_uris TEXT NOT NULL, -- JSON array
  confidential INTEGER NOT NULL DEFAULT 0,
  client_secret_hash TEXT,
  schema_json TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  scopes TEXT NOT NULL, -- space-separated
  created_at TEXT NOT NULL,
  last_used_at TEXT,
  revoked_at TEXT
);
CREATE INDEX grants_account_idx ON grants(account_id);
