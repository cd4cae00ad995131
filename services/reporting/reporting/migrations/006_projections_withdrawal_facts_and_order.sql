-- What a trainee-year's status is derived from besides the decisions (P7, P8): when each nomination was
-- withdrawn (a withdrawal after the year's closing changes nothing), and every session any revision of
-- a year's curricula ever required (a withdrawal after completing one of them does not cancel the year).
ALTER TABLE nomination ADD COLUMN withdrawn_at timestamptz;
ALTER TABLE curriculum ADD COLUMN all_session_ids text[] NOT NULL DEFAULT '{}';
UPDATE curriculum SET all_session_ids = session_ids;

-- The organisation's order: a department's place in the imported department list (bureaus follow it).
ALTER TABLE department ADD COLUMN position integer;
