-- The projections: every table here is rebuilt from event_log by `python -m reporting.rebuild`,
-- which runs the migrations named *_projections*.sql into a fresh schema and swaps it in.
-- Entity rows hold the facts per key; *_tally tables hold the counters the reports read, kept equal
-- to the sum of the rows' contributions (reporting.domain), so a report never scans events.

CREATE TABLE projected_event (
    event_id text PRIMARY KEY
);

CREATE TABLE trainee_year (
    staff_id           text NOT NULL,
    fiscal_year        integer NOT NULL,
    decision_kind      text,
    stage              integer,
    from_stage         integer,
    decided_at         timestamptz,
    decision_event_id  text,
    completed_stage    integer,
    completed_at       timestamptz,
    department_code    text,
    PRIMARY KEY (staff_id, fiscal_year)
);

CREATE TABLE nomination (
    nomination_id    text PRIMARY KEY,
    staff_id         text NOT NULL,
    fiscal_year      integer NOT NULL,
    department_code  text,
    slot             text,
    nominated        boolean NOT NULL DEFAULT false,
    withdrawn        boolean NOT NULL DEFAULT false
);
CREATE INDEX nomination_by_trainee_year ON nomination (staff_id, fiscal_year);

CREATE TABLE department (
    fiscal_year  integer NOT NULL,
    code         text NOT NULL,
    name         text NOT NULL,
    bureau       text NOT NULL,
    active       boolean NOT NULL,
    PRIMARY KEY (fiscal_year, code)
);

CREATE TABLE baseline_person (
    fiscal_year         integer NOT NULL,
    staff_id            text NOT NULL,
    on_roster           boolean NOT NULL DEFAULT false,
    department_code     text,
    is_manager          boolean NOT NULL DEFAULT false,
    all_staff_sessions  integer NOT NULL DEFAULT 0,
    managers_sessions   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (fiscal_year, staff_id)
);
CREATE INDEX baseline_person_by_staff ON baseline_person (staff_id);

CREATE TABLE session (
    session_id   text PRIMARY KEY,
    fiscal_year  integer NOT NULL,
    method       text NOT NULL,
    audience     text NOT NULL,
    stage        integer,
    title        text NOT NULL,
    starts_at    timestamptz,
    capacity     integer
);
CREATE INDEX session_by_fiscal_year ON session (fiscal_year);

CREATE TABLE curriculum (
    fiscal_year  integer NOT NULL,
    stage        integer NOT NULL,
    revision     integer NOT NULL,
    session_ids  text[] NOT NULL,
    PRIMARY KEY (fiscal_year, stage)
);

CREATE TABLE completion_record (
    record_id    text PRIMARY KEY,
    kind         text NOT NULL,
    session_id   text NOT NULL,
    staff_id     text NOT NULL,
    fiscal_year  integer NOT NULL,
    method       text,
    source       text,
    occurred_at  timestamptz,
    recorded_at  timestamptz
);
CREATE INDEX completion_record_by_person ON completion_record (staff_id, fiscal_year);
CREATE INDEX completion_record_by_year ON completion_record (fiscal_year, recorded_at);

CREATE TABLE attendance (
    session_id   text NOT NULL,
    staff_id     text NOT NULL,
    fiscal_year  integer NOT NULL,
    completions  integer NOT NULL DEFAULT 0,
    waivers      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, staff_id)
);

CREATE TABLE fiscal_year_closure (
    fiscal_year  integer PRIMARY KEY,
    closed_at    timestamptz NOT NULL
);

CREATE TABLE late_completion (
    record_id    text PRIMARY KEY,
    session_id   text NOT NULL,
    staff_id     text NOT NULL,
    fiscal_year  integer NOT NULL,
    recorded_at  timestamptz NOT NULL,
    closed_at    timestamptz NOT NULL
);
CREATE INDEX late_completion_recent ON late_completion (recorded_at DESC);

CREATE TABLE unmatched_statement (
    unmatched_id  text PRIMARY KEY,
    reason        text NOT NULL,
    session_ref   text,
    staff_id      text,
    received_at   timestamptz NOT NULL
);
CREATE INDEX unmatched_statement_recent ON unmatched_statement (received_at DESC);

CREATE TABLE stream_health (
    routing_key       text PRIMARY KEY,
    events            bigint NOT NULL DEFAULT 0,
    last_event_time   timestamptz,
    last_received_at  timestamptz
);

CREATE TABLE plan_tally (
    fiscal_year  integer NOT NULL,
    stage        integer NOT NULL,
    entered      integer NOT NULL DEFAULT 0,
    new          integer NOT NULL DEFAULT 0,
    completed    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (fiscal_year, stage)
);

CREATE TABLE department_tally (
    fiscal_year      integer NOT NULL,
    department_code  text NOT NULL,
    recommended      integer NOT NULL DEFAULT 0,
    self_slot        integer NOT NULL DEFAULT 0,
    completions      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (fiscal_year, department_code)
);

CREATE TABLE baseline_tally (
    fiscal_year      integer NOT NULL,
    department_code  text NOT NULL,
    staff            integer NOT NULL DEFAULT 0,
    staff_done       integer NOT NULL DEFAULT 0,
    managers         integer NOT NULL DEFAULT 0,
    managers_done    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (fiscal_year, department_code)
);

CREATE TABLE session_tally (
    session_id   text PRIMARY KEY,
    completions  integer NOT NULL DEFAULT 0,
    waived       integer NOT NULL DEFAULT 0
);
