-- Change tracking for cheap reloads (sql.Loader).
--
-- Why: the tracker re-reads users and torrents every read_db_interval (60 s).
-- Reading all of 1M xbt_users and 1M xbt_files rows costs seconds of
-- database and tracker CPU each time (docs/BENCHMARKS.md, "Database"), even
-- when nothing changed. With what this migration adds, a reload reads only
-- what changed: milliseconds.
--
-- How:
--   * AFTER INSERT/UPDATE/DELETE triggers on xbt_users upsert one row per
--     changed uid into xbt_tracker_changes, with the server's UTC time and a
--     version counter that grows on every change. UPDATEs mark a uid only
--     when a column the tracker READS changed (uid, torrent_pass,
--     torrent_pass_version, can_leech, wait_time, peers_limit,
--     torrents_limit), so the tracker's own uploaded/downloaded writes never
--     mark anything. A uid whose row is gone is a deleted user: hard DELETEs
--     are seen.
--   * AFTER INSERT/DELETE triggers on xbt_files do the same per fid, and
--     record the info_hash so a deleted row's torrent can be forgotten by
--     hash. No UPDATE trigger on xbt_files, on purpose: on MariaDB, any
--     UPDATE trigger on a table makes "INSERT ... ON DUPLICATE KEY UPDATE
--     fid = LAST_INSERT_ID(fid)" report insert id 0 to the client when the
--     row existed (checked on 10.11), and catalogs use exactly that to get a
--     torrent's fid. Instead an index on xbt_files.flags lets the tracker
--     find the flags & 1 rows (catalog deletions) at every reload without a
--     table scan; other edits of an existing row (ctime, info_hash) are
--     picked up by the tracker's periodic full reload (hourly by default).
--   * The tracker reads the changelog since its previous reload (minus a
--     safety window for transactions that commit late), joined to the
--     current rows. It deletes changelog rows older than a day.
--
-- No column is added to a catalog table, so catalogs that INSERT without a
-- column list or SELECT * keep working. The only visible change is
-- the one above: after "INSERT INTO xbt_users ... ON DUPLICATE KEY UPDATE
-- uid = LAST_INSERT_ID(uid)" on an existing row, MariaDB reports insert id
-- 0 to the client (SELECT LAST_INSERT_ID() is still right).
--
-- Privileges: CREATE TRIGGER needs the TRIGGER privilege, and when binary
-- logging is on (log_bin = ON) also SUPER, or log_bin_trust_function_creators
-- = 1 (otherwise ERROR 1419). Triggers run as their DEFINER (the user running
-- this migration): that account must keep existing, or the catalog's writes
-- to xbt_users/xbt_files fail with ERROR 1449. See docs/ADOPTING.md, "Change
-- tracking (triggers)". Re-running "migrate up" after a failure is safe:
-- every object is dropped-if-exists before it is created.
--
-- Only the classic table names are covered (like 00001/00002). With other
-- names (XBT HEAD's xbt_torrents) every reload is a full one.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_changes (
	tbl tinyint unsigned NOT NULL, -- 1 = xbt_users (id = uid), 2 = xbt_files (id = fid)
	id int NOT NULL,
	info_hash varbinary(20) NOT NULL DEFAULT '', -- xbt_files: the row's info_hash; '' for users
	changed datetime(6) NOT NULL, -- UTC_TIMESTAMP(6) of the last change
	version bigint unsigned NOT NULL DEFAULT 1, -- +1 on every change of this key
	PRIMARY KEY (tbl, id, info_hash),
	KEY changed (changed)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DROP TRIGGER IF EXISTS xbt_tracker_users_ai;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_users_ai AFTER INSERT ON xbt_users FOR EACH ROW
	INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (1, NEW.uid, '', UTC_TIMESTAMP(6))
	ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
-- +goose StatementEnd

DROP TRIGGER IF EXISTS xbt_tracker_users_au;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_users_au AFTER UPDATE ON xbt_users FOR EACH ROW
BEGIN
	-- CAST AS BINARY: a case-insensitive collation must not hide a changed passkey.
	IF NOT (NEW.uid <=> OLD.uid
		AND CAST(NEW.torrent_pass AS BINARY) <=> CAST(OLD.torrent_pass AS BINARY)
		AND NEW.torrent_pass_version <=> OLD.torrent_pass_version
		AND NEW.can_leech <=> OLD.can_leech
		AND NEW.wait_time <=> OLD.wait_time
		AND NEW.peers_limit <=> OLD.peers_limit
		AND NEW.torrents_limit <=> OLD.torrents_limit) THEN
		INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (1, NEW.uid, '', UTC_TIMESTAMP(6))
		ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
		IF NOT (NEW.uid <=> OLD.uid) THEN
			INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (1, OLD.uid, '', UTC_TIMESTAMP(6))
			ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
		END IF;
	END IF;
END;
-- +goose StatementEnd

DROP TRIGGER IF EXISTS xbt_tracker_users_ad;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_users_ad AFTER DELETE ON xbt_users FOR EACH ROW
	INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (1, OLD.uid, '', UTC_TIMESTAMP(6))
	ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
-- +goose StatementEnd

DROP TRIGGER IF EXISTS xbt_tracker_files_ai;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_files_ai AFTER INSERT ON xbt_files FOR EACH ROW
	INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (2, NEW.fid, NEW.info_hash, UTC_TIMESTAMP(6))
	ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
-- +goose StatementEnd

-- No UPDATE trigger on xbt_files, on purpose: on MariaDB, any UPDATE trigger
-- on a table makes "INSERT ... ON DUPLICATE KEY UPDATE fid = LAST_INSERT_ID(fid)"
-- report insert id 0 to the client when the row existed (checked on 10.11),
-- and catalogs use exactly that to get a torrent's fid. Instead the tracker
-- polls the rows with flags & 1 through the index below, and picks up other
-- edits of existing rows (ctime, info_hash) at its periodic full reload.
-- (An early development version of this migration had one; drop it.)
DROP TRIGGER IF EXISTS xbt_tracker_files_au;
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00004;
-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00004()
BEGIN
	IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND INDEX_NAME = 'xbt_tracker_flags') THEN
		ALTER TABLE xbt_files ADD INDEX xbt_tracker_flags (flags);
	END IF;
END;
-- +goose StatementEnd
CALL xbt_tracker_migrate_00004();
DROP PROCEDURE xbt_tracker_migrate_00004;

DROP TRIGGER IF EXISTS xbt_tracker_files_ad;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_files_ad AFTER DELETE ON xbt_files FOR EACH ROW
	INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (2, OLD.fid, OLD.info_hash, UTC_TIMESTAMP(6))
	ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
-- +goose StatementEnd

-- Last: the sentinel row (tbl = 0) says every trigger above exists. The
-- tracker's own database user usually may not read information_schema.TRIGGERS
-- (that needs the TRIGGER privilege), so this row is how it knows.
INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (0, 0, '', UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6);

-- +goose Down
DROP TRIGGER IF EXISTS xbt_tracker_files_au;
DROP TRIGGER IF EXISTS xbt_tracker_files_ad;
DROP TRIGGER IF EXISTS xbt_tracker_files_ai;
DROP TRIGGER IF EXISTS xbt_tracker_users_ad;
DROP TRIGGER IF EXISTS xbt_tracker_users_au;
DROP TRIGGER IF EXISTS xbt_tracker_users_ai;
DROP TABLE IF EXISTS xbt_tracker_changes;
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00004_down;
-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00004_down()
BEGIN
	IF EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files' AND INDEX_NAME = 'xbt_tracker_flags') THEN
		ALTER TABLE xbt_files DROP INDEX xbt_tracker_flags;
	END IF;
END;
-- +goose StatementEnd
CALL xbt_tracker_migrate_00004_down();
DROP PROCEDURE xbt_tracker_migrate_00004_down;
