// Package migrations owns the database schema: goose v3 SQL migrations,
// embedded in the binary and run by "xbt-tracker migrate".
//
//   - 00001_xbt_schema.sql creates the classic XBT tables (docs/XBT-COMPAT.md §1)
//     with CREATE TABLE IF NOT EXISTS, plus xbt_deny_from_hosts6, and records
//     which tables it created so Down never drops a catalog's own tables.
//   - 00002_adopt_xbt_database.sql brings a database made by XBT's own
//     xbt_tracker.sql up to what the tracker needs (unique config names,
//     missing optional columns) without destroying data.
//
// The API wraps goose's Provider (no goose global state). The *sql.DB must
// be opened with parseTime=true (sql.Open in this module does that), because
// goose scans its version table's DATETIME column into time.Time.
package migrations
