-- Issue 9: browser sessions, per-user API tokens and the audit log.

-- A browser session. The cookie holds a 128-bit random value; only its SHA-256 is stored, so a
-- copy of this table logs nobody in. public_id is what the API and the pages name a session by.
CREATE TABLE sessions (
    id            text PRIMARY KEY,
    public_id     bigserial NOT NULL UNIQUE,
    user_name     text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
    via           text NOT NULL,                -- password, oidc
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    client_addr   text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_active ON sessions (user_name, public_id DESC) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- A per-user API token ("slw_…"), shown once when created; only its SHA-256 is stored. via is how
-- its creator had logged in: a password user's token never outlives or outranks the config entry.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    user_name     text NOT NULL,
    via           text NOT NULL,
    name          text NOT NULL,
    hash          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_name, id DESC);

-- Every action and login: who (actor, and how they authenticated), what, on what, from where.
-- Pages read it newest first by id (the primary key, scanned backwards: keyset paging).
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    via          text NOT NULL DEFAULT '',
    action       text NOT NULL,
    object       text NOT NULL DEFAULT '',
    detail       jsonb NOT NULL DEFAULT '{}',
    client_addr  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);
