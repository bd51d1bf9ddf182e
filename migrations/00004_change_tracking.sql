-- Change tracking for cheap reloads (sql.Loader).
--
-- Why: the tracker re-reads users and torrents every read_db_interval (60 s).
-- Reading all of 1M xbt_users and 1M xbt_files rows costs about 1.5-3 s of
-- database and tracker CPU each time (docs/BENCHMARKS.md, "Database"), even
-- when nothing changed. With the triggers below the tracker reads only what
-- changed: a few milliseconds.
--
-- How: AFTER INSERT/UPDATE/DELETE triggers on xbt_users and xbt_files upsert
-- one row per changed key into xbt_tracker_changes, with the server's UTC
-- time and a version counter that grows on every change. The tracker reads
-- the rows changed since its previous reload (minus a safety window for
-- transactions that commit late), joined to the current catalog rows:
--   * a key whose catalog row is gone is a deleted user / torrent (hard
--     DELETEs are seen, not only flags = 1);
--   * UPDATEs mark a key only when a column the tracker READS changed:
--     xbt_users: uid, torrent_pass, torrent_pass_version, can_leech,
--     wait_time, peers_limit, torrents_limit;
--     xbt_files: fid, info_hash, flags, ctime.
--     The tracker's own writes (uploaded/downloaded, seeders/leechers/
--     completed/mtime) therefore never mark anything.
--   * xbt_files rows also record the info_hash, so a torrent deleted from the
--     table can still be forgotten by its hash; when a row's info_hash (or
--     fid) changes, the old key is recorded too.
--
-- Nothing is added to the catalog's own tables (no column, no index), so
-- catalogs that INSERT without a column list or SELECT * keep working.
-- The changelog holds at most one row per key changed in the last day (the
-- tracker deletes older rows).
--
-- Privileges: CREATE TRIGGER needs the TRIGGER privilege, and when binary
-- logging is on (log_bin = ON) also SUPER, or log_bin_trust_function_creators
-- = 1 (ERROR 1419). Triggers run as their DEFINER (the user running this
-- migration): that account must keep existing, or the catalog's INSERTs and
-- UPDATEs on xbt_users/xbt_files fail with ERROR 1449. See docs/ADOPTING.md,
-- "Change tracking (triggers)". Re-running "migrate up" after a failure is
-- safe: every object is dropped-if-exists before it is created.
--
-- Only the classic table names are covered (like 00001/00002). For other
-- names (XBT HEAD's xbt_torrents) the tracker falls back to full reloads.

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

DROP TRIGGER IF EXISTS xbt_tracker_files_au;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_files_au AFTER UPDATE ON xbt_files FOR EACH ROW
BEGIN
	IF NOT (NEW.fid <=> OLD.fid
		AND NEW.info_hash <=> OLD.info_hash
		AND NEW.flags <=> OLD.flags
		AND NEW.ctime <=> OLD.ctime) THEN
		INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (2, NEW.fid, NEW.info_hash, UTC_TIMESTAMP(6))
		ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
		IF NOT (NEW.fid <=> OLD.fid AND NEW.info_hash <=> OLD.info_hash) THEN
			INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (2, OLD.fid, OLD.info_hash, UTC_TIMESTAMP(6))
			ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
		END IF;
	END IF;
END;
-- +goose StatementEnd

DROP TRIGGER IF EXISTS xbt_tracker_files_ad;
-- +goose StatementBegin
CREATE TRIGGER xbt_tracker_files_ad AFTER DELETE ON xbt_files FOR EACH ROW
	INSERT INTO xbt_tracker_changes (tbl, id, info_hash, changed) VALUES (2, OLD.fid, OLD.info_hash, UTC_TIMESTAMP(6))
	ON DUPLICATE KEY UPDATE changed = UTC_TIMESTAMP(6), version = version + 1;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER IF EXISTS xbt_tracker_files_ad;
DROP TRIGGER IF EXISTS xbt_tracker_files_au;
DROP TRIGGER IF EXISTS xbt_tracker_files_ai;
DROP TRIGGER IF EXISTS xbt_tracker_users_ad;
DROP TRIGGER IF EXISTS xbt_tracker_users_au;
DROP TRIGGER IF EXISTS xbt_tracker_users_ai;
DROP TABLE IF EXISTS xbt_tracker_changes;
