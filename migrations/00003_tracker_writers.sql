-- The tracker's commit marker (sql.Writer).
--
-- The tracker writes its pending deltas in chunks, each in its own short
-- transaction. When the connection breaks while COMMIT is in flight, the
-- client cannot know whether the chunk was committed: retrying it might count
-- its uploaded/downloaded twice, dropping it might lose them. So every chunk
-- transaction also stores its sequence number in this table (one row per
-- running Writer, keyed by a random writer id). After an unclear COMMIT the
-- Writer reads its row back: seq >= the chunk's number means the chunk was
-- committed, anything else means it was not. Nothing is ever written twice
-- and nothing is silently dropped.
--
-- One row per tracker process start; the Writer deletes rows untouched for
-- 30 days. Not a catalog table: Down drops it.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_writers (
	writer binary(16) NOT NULL,
	seq bigint unsigned NOT NULL DEFAULT 0,
	mtime int NOT NULL DEFAULT 0,
	PRIMARY KEY (writer)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS xbt_tracker_writers;
