-- Bearer tokens of the HTTP API. Only a hash of each token is stored.
CREATE TABLE api_tokens (
    token_id   uuid PRIMARY KEY,
    name       text NOT NULL,
    team       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin', 'contributor', 'inspector', 'viewer')),
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
