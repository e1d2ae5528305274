-- Accounts and auth (the GoTrue subset of workers/auth/). Secrets are never stored in clear:
-- passwords as PBKDF2-SHA256, refresh tokens and magic-link token hashes as SHA-256, one-time
-- codes as HMAC-SHA256 keyed with the server secret (6 digits are too few for a plain hash).

ALTER TABLE accounts ADD COLUMN user_metadata TEXT NOT NULL DEFAULT '{}'; -- JSON object
ALTER TABLE accounts ADD COLUMN last_sign_in_at TEXT;

-- One row per sign-in. Access tokens name their session (`session_id` claim); the gateway
-- refuses a token whose session is revoked.
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL,
  refreshed_at TEXT,
  revoked_at TEXT,
  ip TEXT,
  user_agent TEXT
);
CREATE INDEX sessions_account_idx ON sessions(account_id);

-- Rotating refresh tokens: each use marks the row used and issues a child. Presenting a used
-- token again revokes the whole session (reuse detection).
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  parent_hash TEXT,
  created_at TEXT NOT NULL,
  used_at TEXT
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens(session_id);

-- Email one-time codes and magic links (at most one outstanding per email: a new one replaces
-- it). The account is created at the first successful verification, not when the code is
-- requested, so unverified addresses leave no account behind.
CREATE TABLE one_time_tokens (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  code_hash TEXT NOT NULL,
  link_hash TEXT NOT NULL UNIQUE,
  user_metadata TEXT, -- JSON `data` of signInWithOtp, applied if the account is created
  created_at TEXT NOT NULL,
  expires_at INTEGER NOT NULL, -- unix milliseconds
  used_at TEXT
);
CREATE INDEX one_time_tokens_email_idx ON one_time_tokens(email);

-- Mail of local development and tests (HEARTH_ENV development|test), read at GET /dev/mailbox.
-- A deployed Worker never writes here: it posts to HEARTH_EMAIL_WEBHOOK_URL.
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  to_email TEXT NOT NULL,
  message TEXT NOT NULL, -- the message JSON, as a webhook would receive it
  created_at TEXT NOT NULL
);
CREATE INDEX outbox_to_idx ON outbox(to_email, created_at);

-- Fixed-window counters: one row per key ("signin:email:a@b.c"), reset when a new window starts.
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL, -- unix milliseconds
  count INTEGER NOT NULL
);
