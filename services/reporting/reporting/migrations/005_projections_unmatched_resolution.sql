-- Unmatched completions that training matched later (CompletionRematched). Kept apart from
-- unmatched_statement so the resolution may arrive before or after the unmatched report itself.
CREATE TABLE unmatched_resolution (
    unmatched_id  text PRIMARY KEY,
    resolution    text NOT NULL,
    completion_id text,
    resolved_at   timestamptz NOT NULL
);
