-- An unmatched result is re-evaluated when the session or roster it was missing arrives; once it
-- matches it is kept, marked resolved, with what matching it did (completed / already_completed / not_met).
ALTER TABLE unmatched_results
    ADD COLUMN resolved_at   timestamptz,
    ADD COLUMN resolution    text,
    ADD COLUMN completion_id text;
CREATE INDEX unmatched_unresolved_by_staff ON unmatched_results (staff_id) WHERE resolved_at IS NULL;
