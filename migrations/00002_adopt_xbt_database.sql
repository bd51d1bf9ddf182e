-- Make an ADOPTED XBT database (one created by XBT's own xbt_tracker.sql and
-- already used by a catalog) match what this tracker relies on, without
-- destroying data. On a database 00001 created from scratch every check
-- below finds nothing to do.
--
-- Only the classic table names are touched (xbt_config, xbt_users,
-- xbt_files_users); a HEAD-named database (xbt_torrents/xbt_peers) keeps its
-- own tables as they are, see docs/ADOPTING.md.
--
-- 1. xbt_config without a primary/unique key on exactly (name): rows are
--    deduplicated to one per name, then PRIMARY KEY (name) is added.
--    The table has no id, so "the last inserted row" cannot be known; we keep
--    the row that comes LAST IN TABLE SCAN ORDER, which is the row XBT itself
--    used (it reads the table in scan order and the last value wins), and for
--    an InnoDB table without a key or a MyISAM table without deletes that is
--    insertion order. Exception: listen_port and listen_ipa may legitimately
--    repeat (XBT listens on every one); their distinct values are merged into
--    one row, comma-separated in table order, e.g. "2710,2711", so no port or
--    address is lost. The tracker's sql.LoadConfigRows splits such a row back
--    into several values.
-- 2. xbt_users: add each missing optional column with its default:
--    torrent_pass char(32) '' (older XBT schemas and some catalogs lack it),
--    torrent_pass_version 0, can_leech 1, wait_time 0, peers_limit 0,
--    torrents_limit 0.
-- 3. xbt_files_users: add announced int 0 when missing.
--
-- Existing columns are never altered, dropped or retyped. Portable to MySQL 8:
-- the conditions read information_schema inside a stored procedure (no
-- MariaDB-only ADD COLUMN IF NOT EXISTS). The procedure is created, called and
-- dropped here; creating it needs the CREATE ROUTINE privilege.

-- +goose NO TRANSACTION
-- +goose Up
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00002;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00002()
BEGIN
	DECLARE done INT DEFAULT 0;
	DECLARE v_name VARCHAR(255);
	DECLARE v_value VARCHAR(255);
	DECLARE config_rows CURSOR FOR SELECT name, value FROM xbt_config;
	DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;

	-- 1. xbt_config: one row per name, then PRIMARY KEY (name).
	IF EXISTS (SELECT 1 FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_config')
		AND NOT EXISTS (SELECT 1 FROM (
			SELECT INDEX_NAME FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_config' AND NON_UNIQUE = 0
			GROUP BY INDEX_NAME
			HAVING COUNT(*) = 1 AND MAX(COLUMN_NAME) = 'name') AS k)
	THEN
		DROP TEMPORARY TABLE IF EXISTS xbt_tracker_config_dedup;
		-- LIKE keeps the catalog's charset and collation, so "duplicate"
		-- means exactly what the new primary key will consider a duplicate.
		CREATE TEMPORARY TABLE xbt_tracker_config_dedup LIKE xbt_config;
		ALTER TABLE xbt_tracker_config_dedup ADD PRIMARY KEY (name);
		OPEN config_rows;
		read_loop: LOOP
			FETCH config_rows INTO v_name, v_value;
			IF done = 1 THEN
				LEAVE read_loop;
			END IF;
			INSERT INTO xbt_tracker_config_dedup (name, value) VALUES (v_name, v_value)
			ON DUPLICATE KEY UPDATE value = CASE
				WHEN name NOT IN ('listen_port', 'listen_ipa') THEN v_value
				WHEN FIND_IN_SET(v_value, value) > 0 THEN value
				ELSE LEFT(CONCAT(value, ',', v_value), 255)
			END;
		END LOOP;
		CLOSE config_rows;
		START TRANSACTION;
		DELETE FROM xbt_config;
		INSERT INTO xbt_config (name, value) SELECT name, value FROM xbt_tracker_config_dedup;
		COMMIT;
		DROP TEMPORARY TABLE xbt_tracker_config_dedup;
		ALTER TABLE xbt_config ADD PRIMARY KEY (name);
	END IF;

	-- 2. xbt_users: optional columns.
	IF EXISTS (SELECT 1 FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users') THEN
		IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'torrent_pass') THEN
			ALTER TABLE xbt_users ADD COLUMN torrent_pass char(32) NOT NULL DEFAULT '';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'torrent_pass_version') THEN
			ALTER TABLE xbt_users ADD COLUMN torrent_pass_version int NOT NULL DEFAULT 0;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'can_leech') THEN
			ALTER TABLE xbt_users ADD COLUMN can_leech tinyint NOT NULL DEFAULT 1;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'wait_time') THEN
			ALTER TABLE xbt_users ADD COLUMN wait_time int NOT NULL DEFAULT 0;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'peers_limit') THEN
			ALTER TABLE xbt_users ADD COLUMN peers_limit int NOT NULL DEFAULT 0;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'torrents_limit') THEN
			ALTER TABLE xbt_users ADD COLUMN torrents_limit int NOT NULL DEFAULT 0;
		END IF;
	END IF;

	-- 3. xbt_files_users: announced.
	IF EXISTS (SELECT 1 FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users')
		AND NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME = 'announced')
	THEN
		ALTER TABLE xbt_files_users ADD COLUMN announced int NOT NULL DEFAULT 0;
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_migrate_00002();
DROP PROCEDURE xbt_tracker_migrate_00002;

-- +goose Down
-- Deliberately a no-op. Everything Up did is additive or irreversible:
-- * the added columns may already hold values the catalog or the tracker
--   wrote after adoption (can_leech = 0 bans, wait_time, limits); dropping
--   them would destroy data, and a database 00001 created keeps them anyway
--   because they are part of its own CREATE TABLE;
-- * the duplicate xbt_config rows Up removed are gone and cannot be restored,
--   and the primary key on name is harmless to XBT and to every catalog.
-- Rolling back further (00001 Down) drops the tables this tracker created,
-- and with them these columns.
