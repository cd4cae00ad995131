-- A file an office uploaded for an import preview, held until they confirm it (or it expires): the
-- confirmation imports exactly these bytes. Bound to the uploading session (the SHA-256 of its cookie,
-- as in `sessions`); the id in the page is random. Nothing reaches the nomination service before then.
CREATE TABLE import_drafts (
    draft_id     text PRIMARY KEY,
    session_key  text NOT NULL,
    kind         text NOT NULL,
    fiscal_year  integer NOT NULL,
    filename     text NOT NULL,
    content      bytea NOT NULL,
    sha256       text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX import_drafts_expiry ON import_drafts (expires_at);
