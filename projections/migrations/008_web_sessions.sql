-- Browser sessions (services/web/sessions.py): made at sign-in with an API token, ended by
-- signing out, by idling or by age, and with the token (revoked, or deleted). Not built from
-- the log; a replay copies them across with the tokens. Only a hash of the cookie is stored.
CREATE TABLE web_sessions (
    session_hash text PRIMARY KEY,
    token_id     uuid NOT NULL REFERENCES api_tokens (token_id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- What the next page shows once: an outcome, or a form's values and errors (POST-redirect-GET).
    flash        jsonb
);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen_at);
