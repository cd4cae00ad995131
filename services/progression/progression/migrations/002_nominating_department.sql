-- The nominating department of each nomination, so a department head can be shown their own people (§5).
ALTER TABLE nomination ADD COLUMN department_code text;
CREATE INDEX nomination_by_department ON nomination (department_code, staff_id);
