-- The facts the stage rules are decided from (every fact once, by the id of the event that brought it),
-- the decisions last announced per trainee-year, and the person rows that serialise a person's processing.

CREATE TABLE person (
    staff_id      text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nomination (
    event_id      text PRIMARY KEY,
    staff_id      text NOT NULL,
    nomination_id text NOT NULL,
    fiscal_year   integer NOT NULL,
    slot          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nomination_of_person ON nomination (staff_id);
CREATE INDEX nomination_in_year ON nomination (fiscal_year, staff_id);

CREATE TABLE withdrawal (
    event_id      text PRIMARY KEY,
    staff_id      text NOT NULL,
    nomination_id text NOT NULL,
    fiscal_year   integer NOT NULL,
    withdrawn_at  timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX withdrawal_of_person ON withdrawal (staff_id);

-- SessionCompleted (waived = false) and CompletionWaived (waived = true).
CREATE TABLE completion (
    event_id    text PRIMARY KEY,
    staff_id    text NOT NULL,
    session_id  text NOT NULL,
    fiscal_year integer NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    waived      boolean NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX completion_of_person ON completion (staff_id);

CREATE TABLE curriculum_revision (
    event_id    text PRIMARY KEY,
    fiscal_year integer NOT NULL,
    stage       integer NOT NULL CHECK (stage BETWEEN 1 AND 5),
    revision    integer NOT NULL,
    session_ids text[] NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX curriculum_of_year ON curriculum_revision (fiscal_year, stage);

CREATE TABLE fiscal_year_closing (
    fiscal_year integer PRIMARY KEY,
    event_id    text NOT NULL UNIQUE,
    closed_at   timestamptz NOT NULL,
    actor       text
);

-- The last decision announced for each trainee-year (what `reconcile` compares the standing with).
CREATE TABLE announced_decision (
    staff_id            text NOT NULL,
    fiscal_year         integer NOT NULL,
    event_id            text NOT NULL,
    event               text NOT NULL,
    stage               integer NOT NULL,
    from_stage          integer,
    reason              text,
    sequence            integer NOT NULL,
    completion_event_id text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, fiscal_year)
);

-- Every decision event ever announced, for audit and for the trainee's history.
CREATE TABLE decision_log (
    seq          bigserial,
    event_id     text PRIMARY KEY,
    staff_id     text NOT NULL,
    fiscal_year  integer NOT NULL,
    event        text NOT NULL,
    payload      jsonb NOT NULL,
    announced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decision_log_of_person ON decision_log (staff_id, fiscal_year);
