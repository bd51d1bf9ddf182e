package sql

import (
	"context"
	gosql "database/sql"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// CreateDatabase creates the database the dsn names if it does not exist
// (for `migrate up --create-database` and the demo). It reports whether it
// created it.
func CreateDatabase(ctx context.Context, dsn string) (bool, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return false, err
	}
	name, err := quoteIdent(cfg.DBName)
	if err != nil {
		return false, fmt.Errorf("database name in the DSN: %w", err)
	}
	server := cfg.Clone()
	server.DBName = ""
	connector, err := mysql.NewConnector(server)
	if err != nil {
		return false, err
	}
	db := gosql.OpenDB(connector)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return false, pingError(server, err)
	}
	var exists int
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", cfg.DBName).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("create database %s: %w", cfg.DBName, err)
	}
	if exists > 0 {
		return false, nil
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return false, fmt.Errorf("create database %s: %w", cfg.DBName, err)
	}
	return true, nil
}
