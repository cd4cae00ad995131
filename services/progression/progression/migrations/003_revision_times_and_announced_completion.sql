-- When each curriculum revision came into force (the CurriculumPublished event's own time), so a stage
-- is judged against the revision in force when its last required session was met (P3, revised).
-- Revisions stored before this column existed have no time: they count as in force from the start.
ALTER TABLE curriculum_revision ADD COLUMN published_at timestamptz;

-- The completed_at the announced StageCompleted said, so a completion whose moment changes once more
-- facts are known (a revision, an earlier waiver) is announced again: the same for every arrival order.
ALTER TABLE announced_decision ADD COLUMN completed_at timestamptz;
