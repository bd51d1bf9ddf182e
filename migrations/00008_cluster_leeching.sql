-- Per-user leeching torrents of each tracker instance (cluster = 1, docs/
-- CLUSTER.md). torrents_limit counts the torrents a user leeches, and in a
-- cluster those torrents are spread over instances that each see only their
-- own. So every instance publishes here, once per write_db_interval, how
-- many torrents each user with a torrents_limit leeches on it, and adds up
-- the other instances' rows when it checks the limit. A row is one
-- instance's (writer: a random id per process start) count for one user;
-- updated is refreshed at every publication, and rows not refreshed for a
-- few intervals (an instance that stopped or died) are ignored, then
-- deleted. A lone instance (cluster = 0) never touches the table. Not a
-- catalog table: Down drops it.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_leeching (
	writer binary(16) NOT NULL,
	uid int unsigned NOT NULL,
	leeching int unsigned NOT NULL,
	updated int unsigned NOT NULL, -- Unix time of the writer's last publication
	PRIMARY KEY (writer, uid),
	KEY updated (updated)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS xbt_tracker_leeching;
