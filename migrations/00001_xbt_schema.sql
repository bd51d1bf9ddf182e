-- The classic XBT Tracker schema (docs/XBT-COMPAT.md §1) plus xbt_deny_from_hosts6.
--
-- Every table is created with CREATE TABLE IF NOT EXISTS, so applying this to
-- a database a catalog already created with XBT's own xbt_tracker.sql neither
-- fails nor touches its data; 00002 then adds what such a database lacks.
--
-- Ownership: before each CREATE, the table's name is recorded in
-- xbt_tracker_created_tables if (and only if) the table does not exist yet.
-- Down drops exactly the recorded tables, so rolling back on an adopted
-- database never drops the catalog's own xbt_users, xbt_files, ...
--
-- Charset: binary(20)/varbinary(16) columns carry no charset; the text columns
-- use utf8mb4 with utf8mb4_bin (exact, case-sensitive comparison like XBT's
-- own string compares; the collation exists in MariaDB and MySQL 8 alike).

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS xbt_tracker_created_tables (
	table_name varchar(64) NOT NULL,
	PRIMARY KEY (table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_config' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_config');
CREATE TABLE IF NOT EXISTS xbt_config (
	name varchar(255) NOT NULL,
	value varchar(255) NOT NULL,
	PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_files' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files');
CREATE TABLE IF NOT EXISTS xbt_files (
	fid int NOT NULL AUTO_INCREMENT,
	info_hash binary(20) NOT NULL,
	leechers int NOT NULL DEFAULT 0,
	seeders int NOT NULL DEFAULT 0,
	completed int NOT NULL DEFAULT 0,
	flags int NOT NULL DEFAULT 0,
	mtime int NOT NULL DEFAULT 0,
	ctime int NOT NULL DEFAULT 0,
	PRIMARY KEY (fid),
	UNIQUE KEY info_hash (info_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_files_users' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users');
CREATE TABLE IF NOT EXISTS xbt_files_users (
	fid int NOT NULL,
	uid int NOT NULL,
	active tinyint NOT NULL DEFAULT 0,
	announced int NOT NULL DEFAULT 0,
	completed int NOT NULL DEFAULT 0,
	downloaded bigint unsigned NOT NULL DEFAULT 0,
	`left` bigint unsigned NOT NULL DEFAULT 0,
	uploaded bigint unsigned NOT NULL DEFAULT 0,
	mtime int NOT NULL DEFAULT 0,
	UNIQUE KEY fid (fid, uid),
	KEY uid (uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_users' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_users');
CREATE TABLE IF NOT EXISTS xbt_users (
	uid int NOT NULL AUTO_INCREMENT,
	torrent_pass char(32) NOT NULL DEFAULT '',
	torrent_pass_version int NOT NULL DEFAULT 0,
	downloaded bigint unsigned NOT NULL DEFAULT 0,
	uploaded bigint unsigned NOT NULL DEFAULT 0,
	can_leech tinyint NOT NULL DEFAULT 1,
	wait_time int NOT NULL DEFAULT 0,
	peers_limit int NOT NULL DEFAULT 0,
	torrents_limit int NOT NULL DEFAULT 0,
	PRIMARY KEY (uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_announce_log' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_announce_log');
CREATE TABLE IF NOT EXISTS xbt_announce_log (
	id bigint NOT NULL AUTO_INCREMENT,
	ipa int unsigned NOT NULL DEFAULT 0,
	ipv6 varbinary(16) NOT NULL DEFAULT '',
	port int NOT NULL,
	event int NOT NULL,
	info_hash binary(20) NOT NULL,
	peer_id binary(20) NOT NULL,
	downloaded bigint unsigned NOT NULL,
	left0 bigint unsigned NOT NULL,
	uploaded bigint unsigned NOT NULL,
	uid int NOT NULL,
	mtime int NOT NULL,
	PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_scrape_log' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_scrape_log');
CREATE TABLE IF NOT EXISTS xbt_scrape_log (
	id bigint NOT NULL AUTO_INCREMENT,
	ipa int unsigned NOT NULL DEFAULT 0,
	ipv6 varbinary(16) NOT NULL DEFAULT '',
	info_hash binary(20) NOT NULL DEFAULT '',
	uid int NOT NULL,
	mtime int NOT NULL,
	PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Inclusive IPv4 ranges, addresses as unsigned 32-bit integers (XBT).
INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_deny_from_hosts' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_deny_from_hosts');
CREATE TABLE IF NOT EXISTS xbt_deny_from_hosts (
	`begin` int unsigned NOT NULL,
	`end` int unsigned NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Our IPv6 extension: inclusive ranges of 16-byte addresses (IPv4 as
-- IPv4-mapped ::ffff:a.b.c.d), compared bytewise.
INSERT IGNORE INTO xbt_tracker_created_tables (table_name)
SELECT 'xbt_deny_from_hosts6' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_deny_from_hosts6');
CREATE TABLE IF NOT EXISTS xbt_deny_from_hosts6 (
	`begin` varbinary(16) NOT NULL,
	`end` varbinary(16) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
-- Drop only the tables Up created (recorded above); tables that existed
-- before (a catalog's own data) are left alone.
DROP PROCEDURE IF EXISTS xbt_tracker_migrate_00001_down;

-- +goose StatementBegin
CREATE PROCEDURE xbt_tracker_migrate_00001_down()
BEGIN
	IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_tracker_created_tables') THEN
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_deny_from_hosts6') THEN
			DROP TABLE IF EXISTS xbt_deny_from_hosts6;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_deny_from_hosts') THEN
			DROP TABLE IF EXISTS xbt_deny_from_hosts;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_scrape_log') THEN
			DROP TABLE IF EXISTS xbt_scrape_log;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_announce_log') THEN
			DROP TABLE IF EXISTS xbt_announce_log;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_users') THEN
			DROP TABLE IF EXISTS xbt_users;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_files_users') THEN
			DROP TABLE IF EXISTS xbt_files_users;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_files') THEN
			DROP TABLE IF EXISTS xbt_files;
		END IF;
		IF EXISTS (SELECT 1 FROM xbt_tracker_created_tables WHERE table_name = 'xbt_config') THEN
			DROP TABLE IF EXISTS xbt_config;
		END IF;
		DROP TABLE xbt_tracker_created_tables;
	END IF;
END;
-- +goose StatementEnd

CALL xbt_tracker_migrate_00001_down();
DROP PROCEDURE xbt_tracker_migrate_00001_down;
