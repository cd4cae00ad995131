-- Server-side sessions of the portal: the browser holds only a random id (its SHA-256 is the key here,
-- so a copy of this table opens no session). Tokens stay on the server.
CREATE TABLE sessions (
    id_hash              text PRIMARY KEY,
    subject              text NOT NULL,
    role                 text NOT NULL,
    department_code      text,
    staff_id             text,
    access_token         text NOT NULL,
    refresh_token        text,
    id_token             text,
    access_expires_at    timestamptz NOT NULL,
    csrf_token           text NOT NULL,
    created_at           timestamptz NOT NULL,
    last_seen_at         timestamptz NOT NULL,
    idle_timeout         interval NOT NULL,
    absolute_timeout     interval NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject);

-- A sign-in under way: authlib's state, nonce and PKCE code verifier between /auth/login and the callback.
CREATE TABLE sign_ins (
    id_hash      text PRIMARY KEY,
    state_data   jsonb NOT NULL,
    next_path    text NOT NULL,
    created_at   timestamptz NOT NULL
);
