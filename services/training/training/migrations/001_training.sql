-- Sessions, curricula, completions and what the e-learning platform sent (POLICY.md §3, P2).

CREATE TABLE sessions (
    session_id       text PRIMARY KEY,
    fiscal_year      integer NOT NULL,
    method           text NOT NULL,
    audience         text NOT NULL,
    stage            integer,
    title            text NOT NULL,
    starts_at        timestamptz,
    ends_at          timestamptz,
    capacity         integer,
    move_on          text NOT NULL,
    xapi_activity_id text UNIQUE,
    scheduled_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_by_fiscal_year ON sessions (fiscal_year);

-- Every published revision is kept: progression counts a stage as completed under any of them.
CREATE TABLE curriculum_revisions (
    fiscal_year  integer NOT NULL,
    stage        integer NOT NULL,
    revision     integer NOT NULL,
    session_ids  text[] NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fiscal_year, stage, revision)
);

-- One row per webhook-id: a retried delivery conflicts here and changes nothing.
CREATE TABLE webhook_deliveries (
    webhook_id  text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    status      text NOT NULL,
    source_key  text
);

-- One row per reported result, keyed by the source's own id (xAPI statement id, completion id or,
-- failing those, the delivery): the same statement in another delivery conflicts here.
CREATE TABLE reported_results (
    source_key  text PRIMARY KEY,
    webhook_id  text NOT NULL,
    source      text NOT NULL,
    session_ref text NOT NULL,
    staff_id    text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    completed   boolean NOT NULL,
    passed      boolean NOT NULL,
    success     boolean,
    score       double precision,
    status      text NOT NULL,
    body        text NOT NULL
);

-- What a person has shown for a session in a fiscal year (cmi5 completed / passed may come apart).
CREATE TABLE session_progress (
    session_id  text NOT NULL REFERENCES sessions,
    staff_id    text NOT NULL,
    fiscal_year integer NOT NULL,
    completed   boolean NOT NULL,
    passed      boolean NOT NULL,
    PRIMARY KEY (session_id, staff_id, fiscal_year)
);

-- A person completes a session at most once per fiscal year, whatever the source.
CREATE TABLE completions (
    completion_id text PRIMARY KEY,
    session_id    text NOT NULL REFERENCES sessions,
    staff_id      text NOT NULL,
    fiscal_year   integer NOT NULL,
    method        text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    source        text NOT NULL,
    success       boolean,
    score         double precision,
    UNIQUE (session_id, staff_id, fiscal_year)
);
CREATE INDEX completions_by_staff ON completions (staff_id, fiscal_year);

CREATE TABLE unmatched_results (
    unmatched_id text PRIMARY KEY,
    source_key   text NOT NULL UNIQUE,
    reason       text NOT NULL,
    source       text NOT NULL,
    session_ref  text,
    staff_id     text,
    occurred_at  timestamptz,
    received_at  timestamptz NOT NULL
);

CREATE TABLE waivers (
    waiver_id   text PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions,
    staff_id    text NOT NULL,
    fiscal_year integer NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL,
    recorded_at timestamptz NOT NULL,
    UNIQUE (session_id, staff_id, fiscal_year)
);

-- Known staff per fiscal year, from StaffImported (no names). A year without a row in `rosters`
-- has had no roster yet, and then nobody is treated as unknown.
CREATE TABLE rosters (
    fiscal_year integer PRIMARY KEY,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE roster_staff (
    fiscal_year integer NOT NULL,
    staff_id    text NOT NULL,
    PRIMARY KEY (fiscal_year, staff_id)
);
