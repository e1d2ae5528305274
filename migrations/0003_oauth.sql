-- OAuth 2.1 for apps (DESIGN.md "Contracts": apps, grants). `apps` and `grants` exist since
-- 0001; this adds the one-time authorization codes and the rotating refresh tokens.
-- Codes and refresh tokens are bearer secrets: only their SHA-256 is stored.

CREATE TABLE oauth_codes (
  code_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  scopes TEXT NOT NULL, -- space-separated, what this code may be exchanged for
  expires_at INTEGER NOT NULL, -- epoch ms
  used_at TEXT
);
CREATE INDEX oauth_codes_grant_idx ON oauth_codes(grant_id);

-- One row per refresh token ever issued. `family` is the hash of the code the chain started
-- from: a replayed code revokes its family. `rotated_at` is set when the token was exchanged;
-- presenting a rotated token again is reuse and revokes every refresh token of the grant.
CREATE TABLE oauth_refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
  client_id TEXT NOT NULL,
  family TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at INTEGER NOT NULL, -- epoch ms
  rotated_at TEXT,
  revoked_at TEXT
);
CREATE INDEX oauth_refresh_grant_idx ON oauth_refresh_tokens(grant_id);
CREATE INDEX oauth_refresh_family_idx ON oauth_refresh_tokens(family);

CREATE INDEX grants_lookup_idx ON grants(account_id, client_id, project_id);
CREATE INDEX apps_owner_idx ON apps(owner_account_id);
