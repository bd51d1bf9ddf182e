-- Completion log (issue 15): one row per completion in xbt_snatched, the
-- table Gazelle's schema has (uid, tstamp, fid, IP, seedtime). The catalog
-- reads it for snatch lists and hit-and-run checks; the tracker only
-- inserts, in the batched flush, once per completion it counted.
--
-- The table is optional: without it nothing is written, as before. The
-- tracker writes it whenever it exists, whoever created it, into the
-- columns it has. A catalog that already has it (Gazelle creates it
-- itself, with IP varchar(15)) keeps it as it is: CREATE TABLE IF NOT
-- EXISTS, and like 00001 the table is recorded in xbt_tracker_created_tables
-- only when this migration creates it, so Down drops only what Up created.
-- Ours has Gazelle's columns, but IP is varchar(39), wide enough for a
-- textual IPv6 address (in a narrower column the tracker writes an empty
-- string for an IPv6 address that does not fit). No column is added to any
-- existing table (see 00004).

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_created_tables (
	table_name varchar(64) NOT NULL,
	PRIMARY KEY (table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_snatched' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_snatched');
CREATE TABLE IF NOT EXISTS xbt_snatched (
	uid int NOT NULL DEFAULT 0,
	tstamp int NOT NULL, -- Unix time of the completion
	fid int NOT NULL,
	IP varchar(39) NOT NULL, -- the completing peer's address, as text
	seedtime int NOT NULL DEFAULT 0, -- not written by the tracker
	KEY fid (fid),
	KEY tstamp (tstamp),
	KEY uid_tstamp (uid, tstamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
-- Drop xbt_snatched only if Up created it (recorded above); a catalog's own
-- table is left alone. xbt_tracker_created_tables itself belongs to 00001.
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00006_down;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00006_down()
BEGIN
	IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_tracker_created_tables') THEN
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_snatched') THEN
			DROP TABLE IF EXISTS xbt_snatched;
			DELETE FROM xbt_tracker_created_tables WHERE table_name = 'xbt_snatched';
		END IF;
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_migrate_00006_down();
DROP PROCEDURE xbt_tracker_migrate_00006_down;
