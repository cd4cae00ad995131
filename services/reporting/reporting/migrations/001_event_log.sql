-- Every event the reporting service consumed, as received: the source the projections are rebuilt from.
CREATE TABLE event_log (
    seq          bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    event_type   text NOT NULL,
    routing_key  text NOT NULL,
    event_time   timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    body         jsonb NOT NULL
);
