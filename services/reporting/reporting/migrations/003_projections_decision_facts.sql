-- A trainee-year keeps every stage decision and every StageCompleted it was told of, so that a
-- completion stops counting once progression corrects the decision it belonged to, whatever the order
-- the events arrive in. The columns beside them keep the standing decision and counted completion.
-- Existing rows keep what they counted (one decision, one completion without a decision id); a rebuild
-- fills the facts from the event log.
ALTER TABLE trainee_year
    ADD COLUMN decisions   jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN completions jsonb NOT NULL DEFAULT '[]';

UPDATE trainee_year SET decisions = jsonb_build_array(jsonb_build_object(
    'kind', decision_kind, 'stage', stage, 'from_stage', from_stage, 'decided_at', decided_at,
    'event_id', decision_event_id, 'corrects', NULL))
WHERE decision_kind IS NOT NULL;

UPDATE trainee_year SET completions = jsonb_build_array(jsonb_build_object(
    'stage', completed_stage, 'completed_at', completed_at, 'decision_id', NULL))
WHERE completed_stage IS NOT NULL;
