-- The per-stream counter is split over shards (one per consuming database session, by backend pid):
-- a single row per routing key, updated by every event, made concurrent consumers wait on each other
-- until each commit. The pipeline report sums a stream's shards (at most 64 rows per stream).
ALTER TABLE stream_health ADD COLUMN shard integer NOT NULL DEFAULT 0;
ALTER TABLE stream_health DROP CONSTRAINT stream_health_pkey;
ALTER TABLE stream_health ADD PRIMARY KEY (routing_key, shard);
