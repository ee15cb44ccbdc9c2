-- depends: 0005.webhooks-and-metrics
-- Token roles, and web sessions kept in the store so that logging out or revoking a token ends
-- them at once (a signed cookie alone stays valid until it expires).

-- A read token reads the registry; an admin token also changes sources, publications, slots and
-- webhooks. Tokens made before roles existed could do everything: they stay admin.
ALTER TABLE api_tokens
    ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CONSTRAINT api_tokens_role_check CHECK (role IN ('read', 'admin'));
-- From now on every new token names its role (rosetta token create NAME --role read|admin).
ALTER TABLE api_tokens ALTER COLUMN role DROP DEFAULT;

-- One row per logged-in browser. id is the SHA-256 of the session id the cookie carries, so the
-- table alone does not give a usable cookie.
CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    token_id BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX web_sessions_token_id_idx ON web_sessions (token_id);
CREATE INDEX web_sessions_expires_at_idx ON web_sessions (expires_at);
