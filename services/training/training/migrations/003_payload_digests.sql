-- What was first received under each id, as a SHA-256 of its canonical JSON: a retry with the same
-- content is a duplicate, a different body under a reused id (webhook-id, statement id, completion id)
-- is refused (409 DELIVERY_ID_REUSED). Rows stored before this have none and are taken as retries.
ALTER TABLE webhook_deliveries ADD COLUMN body_sha256 text;
ALTER TABLE reported_results ADD COLUMN payload_sha256 text;
