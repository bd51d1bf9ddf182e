-- Client rules (issue 15): which BitTorrent clients may announce, by
-- peer_id prefix. Both tables are optional: without them every client may
-- announce, as before. The catalog writes their rows; the tracker reads
-- them at every reload (read_db_interval) and checks each announce in
-- memory.
--
--   * xbt_client_whitelist: the allow list, Gazelle's table (its own
--     schema: id, peer_id varchar(20), vstring varchar(200)). When it has
--     rows, only clients whose peer_id starts with one of them may announce.
--   * xbt_deny_from_clients: the deny list, the name XBT's own schema file
--     gives it (commented out there). A client whose peer_id starts with one
--     of its rows is always refused, even if the allow list names it.
--
-- A catalog that already has either table (Gazelle creates
-- xbt_client_whitelist itself) keeps it as it is: CREATE TABLE IF NOT
-- EXISTS, and like 00001 the table is recorded in xbt_tracker_created_tables
-- only when this migration creates it, so Down drops only what Up created.
-- No column is added to any existing table (see 00004).

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_created_tables (
	table_name varchar(64) NOT NULL,
	PRIMARY KEY (table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_client_whitelist' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_client_whitelist');
CREATE TABLE IF NOT EXISTS xbt_client_whitelist (
	id int unsigned NOT NULL AUTO_INCREMENT,
	peer_id varchar(20) NOT NULL, -- peer_id prefix, e.g. '-TR3'
	vstring varchar(200) NOT NULL DEFAULT '', -- the client's name, for people
	PRIMARY KEY (id),
	UNIQUE KEY peer_id (peer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_deny_from_clients' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_deny_from_clients');
CREATE TABLE IF NOT EXISTS xbt_deny_from_clients (
	peer_id varbinary(20) NOT NULL, -- peer_id prefix, compared as bytes
	PRIMARY KEY (peer_id)
) ENGINE=InnoDB;

-- +goose Down
-- Drop only the tables Up created (recorded above); a catalog's own
-- xbt_client_whitelist is left alone. xbt_tracker_created_tables itself
-- belongs to 00001.
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00005_down;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00005_down()
BEGIN
	IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_tracker_created_tables') THEN
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_deny_from_clients') THEN
			DROP TABLE IF EXISTS xbt_deny_from_clients;
			DELETE FROM xbt_tracker_created_tables WHERE table_name = 'xbt_deny_from_clients';
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_client_whitelist') THEN
			DROP TABLE IF EXISTS xbt_client_whitelist;
			DELETE FROM xbt_tracker_created_tables WHERE table_name = 'xbt_client_whitelist';
		END IF;
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_migrate_00005_down();
DROP PROCEDURE xbt_tracker_migrate_00005_down;
