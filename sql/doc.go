// Package sql owns everything in the tracker that speaks SQL to the
// catalog's MySQL/MariaDB database: opening the pool ([Open]), the
// configurable table and column names ([Names]) and their validation,
// start-up schema detection ([CheckSchema]: required columns, optional XBT
// columns, HEAD-style "tid" keys), reading xbt_config ([LoadConfigRows]) and
// generating torrent_pass_private_key on first start ([EnsureSecret]).
//
// Identifiers (table and column names) come from configuration; they are
// accepted only when they match ^[A-Za-z0-9_]+$ and are always backquoted.
// Nothing else is ever spliced into SQL: values travel as parameters and
// dynamic statements are built with squirrel.
//
// The package name shadows the standard library's database/sql; files here
// import that as gosql.
package sql
