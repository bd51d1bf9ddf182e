-- Personal freeleech tokens (issue 15): one row per user and torrent the
-- catalog gave a token for, the shape Gazelle-family catalogs keep (uid, fid
-- and when it runs out). While now < expires, the tracker credits that
-- user's download on that torrent as nothing (xbt_users.downloaded is not
-- raised; the real bytes still go to xbt_files_users). The tracker only
-- reads the table, at every reload, the rows not yet expired (hence the
-- index on expires); the catalog inserts, extends and deletes rows.
--
-- The table is optional: without it there is no token, as before. A
-- catalog that already has it keeps it as it is: CREATE TABLE IF NOT
-- EXISTS, and like 00006 the table is recorded in xbt_tracker_created_tables
-- only when this migration creates it, so Down drops only what Up created.
-- No column is added to any existing table (see 00004): the per-torrent and
-- per-user factors (up_multi, down_multi) are columns of catalog tables, so
-- they are in the opt-in set (extras/00002_multipliers.sql).

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_created_tables (
	table_name varchar(64) NOT NULL,
	PRIMARY KEY (table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_freeleech_tokens' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_freeleech_tokens');
CREATE TABLE IF NOT EXISTS xbt_freeleech_tokens (
	uid int unsigned NOT NULL,
	fid int unsigned NOT NULL,
	expires int unsigned NOT NULL, -- Unix time; the token counts while now < expires
	PRIMARY KEY (uid, fid),
	KEY expires (expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
-- Drop xbt_freeleech_tokens only if Up created it (recorded above); a
-- catalog's own table is left alone. xbt_tracker_created_tables itself
-- belongs to 00001.
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00007_down;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00007_down()
BEGIN
	IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_tracker_created_tables') THEN
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_freeleech_tokens') THEN
			DROP TABLE IF EXISTS xbt_freeleech_tokens;
			DELETE FROM xbt_tracker_created_tables WHERE table_name = 'xbt_freeleech_tokens';
		END IF;
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_migrate_00007_down();
DROP PROCEDURE xbt_tracker_migrate_00007_down;
