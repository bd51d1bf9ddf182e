-- Opt-in columns, set "extras" (see 00001 and docs/ADOPTING.md, "Opt-in
-- columns"): per-torrent and per-user credit factors (issue 15, section 1).
--
-- Adds to xbt_files and to xbt_users, each only when missing:
--   up_multi smallint unsigned NOT NULL DEFAULT 100     upload credit, percent
--   down_multi smallint unsigned NOT NULL DEFAULT 100   download credit, percent
-- 100 credits the bytes as reported; down_multi = 0 on a torrent is
-- freeleech, 50 half leech, up_multi = 200 double upload. A user's
-- factors (a class's bonus) multiply with the torrent's and the site's
-- (xbt_config up_multi, down_multi).
--
-- And, on both tables, the indexes xbt_tracker_up_multi (up_multi) and
-- xbt_tracker_down_multi (down_multi), each only when no index starts with
-- that column already: at every reload the tracker reads the rows whose
-- factor is not 100 (WHERE up_multi <> 100 UNION ... WHERE down_multi <>
-- 100), which without them scans a table of a million rows each time.
--
-- Why opt-in: a catalog that INSERTs into xbt_files or xbt_users without a
-- column list breaks when a column is added (see 00004's header), so only
-- the operator can decide. No trigger is added or changed: the tracker reads
-- these columns wholesale at each reload, not through the change log, so
-- changing a factor needs no trigger, and xbt_files must keep having no
-- UPDATE trigger (00004: it would break the catalogs' "ON DUPLICATE KEY
-- UPDATE fid = LAST_INSERT_ID(fid)" on MariaDB).
--
-- Bookkeeping: each column added is recorded in xbt_tracker_added_columns
-- (migration 2) as (table, column), each index added as (table,
-- 'index:<index name>'). Down drops only what this migration recorded, so a
-- catalog's own up_multi column is kept (the index added on it is dropped).
-- xbt_files and xbt_users must exist: run "xbt-tracker migrate up" first.
-- Only the classic table names are covered (like the main set).

-- +goose NO TRANSACTION
-- +goose Up
DROP PROCEDURE IF EXISTS xbt_tracker_extras_00002;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_extras_00002()
BEGIN
	IF NOT EXISTS (SELECT 1 FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files') THEN
		SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'table xbt_files does not exist: run "xbt-tracker migrate up" first';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users') THEN
		SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'table xbt_users does not exist: run "xbt-tracker migrate up" first';
	END IF;
	-- Owned by 00001, which always runs first; IF NOT EXISTS only so that a
	-- table dropped by hand does not fail the whole set.
	CREATE TABLE IF NOT EXISTS xbt_tracker_added_columns (
		table_name varchar(64) NOT NULL,
		column_name varchar(64) NOT NULL,
		migration int NOT NULL,
		PRIMARY KEY (table_name, column_name)
	);

	-- xbt_files: columns, then indexes (an index needs its column, whoever
	-- added it). Each change is recorded right after it is made, so a run
	-- that fails half-way and is repeated still drops on Down all it added.
	IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND COLUMN_NAME = 'up_multi') THEN
		ALTER TABLE xbt_files ADD COLUMN up_multi smallint unsigned NOT NULL DEFAULT 100;
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_files', 'up_multi', 2);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND COLUMN_NAME = 'down_multi') THEN
		ALTER TABLE xbt_files ADD COLUMN down_multi smallint unsigned NOT NULL DEFAULT 100;
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_files', 'down_multi', 2);
	END IF;
	-- An index of the catalog's whose first column is the factor serves the
	-- tracker's query as well. The name test keeps ADD INDEX from failing on
	-- a catalog index that has our name but starts with another column (the
	-- tracker then warns at start that the factor has no index).
	IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files'
			AND ((COLUMN_NAME = 'up_multi' AND SEQ_IN_INDEX = 1) OR INDEX_NAME = 'xbt_tracker_up_multi')) THEN
		ALTER TABLE xbt_files ADD INDEX xbt_tracker_up_multi (up_multi);
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_files', 'index:xbt_tracker_up_multi', 2);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files'
			AND ((COLUMN_NAME = 'down_multi' AND SEQ_IN_INDEX = 1) OR INDEX_NAME = 'xbt_tracker_down_multi')) THEN
		ALTER TABLE xbt_files ADD INDEX xbt_tracker_down_multi (down_multi);
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_files', 'index:xbt_tracker_down_multi', 2);
	END IF;

	-- xbt_users: the same.
	IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'up_multi') THEN
		ALTER TABLE xbt_users ADD COLUMN up_multi smallint unsigned NOT NULL DEFAULT 100;
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_users', 'up_multi', 2);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'down_multi') THEN
		ALTER TABLE xbt_users ADD COLUMN down_multi smallint unsigned NOT NULL DEFAULT 100;
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_users', 'down_multi', 2);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users'
			AND ((COLUMN_NAME = 'up_multi' AND SEQ_IN_INDEX = 1) OR INDEX_NAME = 'xbt_tracker_up_multi')) THEN
		ALTER TABLE xbt_users ADD INDEX xbt_tracker_up_multi (up_multi);
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_users', 'index:xbt_tracker_up_multi', 2);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users'
			AND ((COLUMN_NAME = 'down_multi' AND SEQ_IN_INDEX = 1) OR INDEX_NAME = 'xbt_tracker_down_multi')) THEN
		ALTER TABLE xbt_users ADD INDEX xbt_tracker_down_multi (down_multi);
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_users', 'index:xbt_tracker_down_multi', 2);
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_extras_00002();
DROP PROCEDURE xbt_tracker_extras_00002;

-- +goose Down
DROP PROCEDURE IF EXISTS xbt_tracker_extras_00002_down;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_extras_00002_down()
BEGIN
	-- Indexes first: dropping a column drops a one-column index on it too,
	-- and each DROP is guarded by the object still existing, so the order
	-- only saves work. A catalog's own column keeps its values; only the
	-- index this migration put on it goes.
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_files' AND column_name = 'index:xbt_tracker_up_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND INDEX_NAME = 'xbt_tracker_up_multi') THEN
		ALTER TABLE xbt_files DROP INDEX xbt_tracker_up_multi;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_files' AND column_name = 'index:xbt_tracker_down_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND INDEX_NAME = 'xbt_tracker_down_multi') THEN
		ALTER TABLE xbt_files DROP INDEX xbt_tracker_down_multi;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_users' AND column_name = 'index:xbt_tracker_up_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND INDEX_NAME = 'xbt_tracker_up_multi') THEN
		ALTER TABLE xbt_users DROP INDEX xbt_tracker_up_multi;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_users' AND column_name = 'index:xbt_tracker_down_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND INDEX_NAME = 'xbt_tracker_down_multi') THEN
		ALTER TABLE xbt_users DROP INDEX xbt_tracker_down_multi;
	END IF;

	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_files' AND column_name = 'up_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND COLUMN_NAME = 'up_multi') THEN
		ALTER TABLE xbt_files DROP COLUMN up_multi;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_files' AND column_name = 'down_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND COLUMN_NAME = 'down_multi') THEN
		ALTER TABLE xbt_files DROP COLUMN down_multi;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_users' AND column_name = 'up_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'up_multi') THEN
		ALTER TABLE xbt_users DROP COLUMN up_multi;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_users' AND column_name = 'down_multi' AND migration = 2)
		AND EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users' AND COLUMN_NAME = 'down_multi') THEN
		ALTER TABLE xbt_users DROP COLUMN down_multi;
	END IF;
	-- The bookkeeping table itself belongs to 00001.
	DELETE FROM xbt_tracker_added_columns WHERE migration = 2;
END;
-- +goose StatementEnd

CALL xbt_tracker_extras_00002_down();
DROP PROCEDURE xbt_tracker_extras_00002_down;
