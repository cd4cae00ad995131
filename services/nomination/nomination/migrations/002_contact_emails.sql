-- Where the prefecture's reminders go (the portal's reminder job): a department's contact address and a
-- staff member's work address, both optional columns of the imported lists. Personal data like the names
-- beside them: read only by the offices (GET /api/v1/contacts), never put in an event or a log line.
ALTER TABLE departments ADD COLUMN email text;
ALTER TABLE staff ADD COLUMN email text;
