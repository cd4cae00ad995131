CREATE TABLE effects (
    event_id text NOT NULL,
    staff_id text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
