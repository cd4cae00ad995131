-- E-mail reminders sent (portal.reminders): one row per kind × period × recipient, written in the same
-- transaction as the SMTP hand-over, so a second run sends nothing and a refused send is tried again.
-- The recipient is a department code or staff id; the address itself is not kept.
CREATE TABLE reminders_sent (
    kind       text        NOT NULL,
    period     text        NOT NULL,
    recipient  text        NOT NULL,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (kind, period, recipient)
);
