-- The offices resolve an unmatched report by hand: matched to the person (and session) it meant, or
-- dismissed with a reason. Who did it is kept beside the resolution (the audit trail has the request too).
ALTER TABLE unmatched_results
    ADD COLUMN resolved_by       text,
    ADD COLUMN resolution_reason text,
    ADD COLUMN matched_staff_id  text,
    ADD COLUMN matched_session_id text;
