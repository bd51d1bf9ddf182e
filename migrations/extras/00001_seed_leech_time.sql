-- Opt-in columns, set "extras" (applied only by "xbt-tracker migrate up
-- --extras", recorded in its own version table xbt_tracker_extras_version;
-- plain "migrate up" never runs it). See docs/ADOPTING.md, "Opt-in columns".
--
-- Adds to xbt_files_users, each only when missing:
--   timespent int unsigned NOT NULL DEFAULT 0   seconds seeding (Gazelle's
--                                                name and type)
--   leechtime int unsigned NOT NULL DEFAULT 0   seconds leeching
-- The tracker sums into whichever of them exists (issue 15, section 3).
--
-- Why opt-in: a catalog that INSERTs into xbt_files_users without a column
-- list breaks when a column is added to the table (see 00004's header), so
-- only the operator can decide.
--
-- Every column this set adds is recorded in xbt_tracker_added_columns; Down
-- drops only the columns recorded by this migration, so a column the catalog
-- had already (Gazelle's timespent) is kept. Portable to MySQL 8:
-- information_schema inside a stored procedure (no ADD COLUMN IF NOT
-- EXISTS), created, called and dropped here (needs CREATE ROUTINE).
-- xbt_files_users must exist: run "xbt-tracker migrate up" first.

-- +goose NO TRANSACTION
-- +goose Up
DROP PROCEDURE IF EXISTS xbt_tracker_extras_00001;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_extras_00001()
BEGIN
	IF NOT EXISTS (SELECT 1 FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users') THEN
		SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'table xbt_files_users does not exist: run "xbt-tracker migrate up" first';
	END IF;
	-- The set's bookkeeping: which column which migration added.
	CREATE TABLE IF NOT EXISTS xbt_tracker_added_columns (
		table_name varchar(64) NOT NULL,
		column_name varchar(64) NOT NULL,
		migration int NOT NULL,
		PRIMARY KEY (table_name, column_name)
	);
	IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME = 'timespent') THEN
		ALTER TABLE xbt_files_users ADD COLUMN timespent int unsigned NOT NULL DEFAULT 0;
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_files_users', 'timespent', 1);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME = 'leechtime') THEN
		ALTER TABLE xbt_files_users ADD COLUMN leechtime int unsigned NOT NULL DEFAULT 0;
		INSERT IGNORE INTO xbt_tracker_added_columns (table_name, column_name, migration)
			VALUES ('xbt_files_users', 'leechtime', 1);
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_extras_00001();
DROP PROCEDURE xbt_tracker_extras_00001;

-- +goose Down
DROP PROCEDURE IF EXISTS xbt_tracker_extras_00001_down;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_extras_00001_down()
BEGIN
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_files_users' AND column_name = 'timespent' AND migration = 1)
		AND EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME = 'timespent') THEN
		ALTER TABLE xbt_files_users DROP COLUMN timespent;
	END IF;
	IF EXISTS (SELECT 1 FROM xbt_tracker_added_columns
			WHERE table_name = 'xbt_files_users' AND column_name = 'leechtime' AND migration = 1)
		AND EXISTS (SELECT 1 FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME = 'leechtime') THEN
		ALTER TABLE xbt_files_users DROP COLUMN leechtime;
	END IF;
	DELETE FROM xbt_tracker_added_columns WHERE migration = 1;
END;
-- +goose StatementEnd

CALL xbt_tracker_extras_00001_down();
DROP PROCEDURE xbt_tracker_extras_00001_down;
-- The first migration of the set owns the bookkeeping table.
DROP TABLE xbt_tracker_added_columns;
