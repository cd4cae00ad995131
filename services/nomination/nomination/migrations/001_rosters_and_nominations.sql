-- Per fiscal year: the department list and the staff roster as imported from the HR system
-- (POLICY.md §2). People's names live here and nowhere else (APPI).
CREATE TABLE departments (
    fiscal_year integer NOT NULL,
    code        text    NOT NULL,
    name        text    NOT NULL,
    bureau      text    NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    PRIMARY KEY (fiscal_year, code)
);

CREATE TABLE staff (
    fiscal_year     integer NOT NULL,
    staff_id        text    NOT NULL,
    name            text    NOT NULL,
    department_code text    NOT NULL,
    is_manager      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (fiscal_year, staff_id)
);
CREATE INDEX staff_by_department ON staff (fiscal_year, department_code);

CREATE TABLE nominations (
    nomination_id     uuid        PRIMARY KEY,
    fiscal_year       integer     NOT NULL,
    staff_id          text        NOT NULL,
    department_code   text        NOT NULL,
    slot              text        NOT NULL CHECK (slot IN ('recommended', 'self')),
    status            text        NOT NULL CHECK (status IN ('active', 'withdrawn')),
    nominated_at      timestamptz NOT NULL,
    withdrawn_at      timestamptz,
    withdrawal_reason text,
    CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL))
);
-- N1 and N4 are enforced here too: two requests that both saw a free slot cannot both commit.
CREATE UNIQUE INDEX nominations_one_recommended_per_department
    ON nominations (fiscal_year, department_code) WHERE slot = 'recommended' AND status = 'active';
CREATE UNIQUE INDEX nominations_one_active_per_staff
    ON nominations (fiscal_year, staff_id) WHERE status = 'active';
CREATE INDEX nominations_by_staff ON nominations (staff_id, fiscal_year);
CREATE INDEX nominations_by_department ON nominations (fiscal_year, department_code, slot, status);

-- Fiscal years closed by progression (FiscalYearClosed): nominations for them are refused (N6).
CREATE TABLE closed_fiscal_years (
    fiscal_year integer     PRIMARY KEY,
    closed_at   timestamptz NOT NULL,
    event_id    text        NOT NULL
);
