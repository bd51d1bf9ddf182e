// Package sql owns everything in the tracker that speaks SQL to the
// catalog's MySQL/MariaDB database: opening the pool ([Open]), the
// configurable table and column names ([Names]) and their validation,
// start-up schema detection ([CheckSchema]: required columns, optional XBT
// columns, HEAD-style "tid" keys), reading xbt_config ([LoadConfigRows]) and
// generating torrent_pass_private_key on first start ([EnsureSecret]),
// loading users and torrents and reloading what changed ([Loader], with the
// changelog of migration 00004), reading the deny list, the client rules and
// the credit factors and freeleech tokens ([Loader.CreditRules]), and
// writing the engine's pending deltas back in bounded, retried,
// primary-key-ordered chunks without losing or double-counting any
// ([Writer]).
//
// Identifiers (table and column names) come from configuration; they are
// accepted only when they match ^[A-Za-z0-9_]+$ and are always backquoted.
// Nothing else is ever spliced into SQL: values travel as parameters and
// dynamic statements are built with squirrel, except the Writer's large
// multi-row statements, which are assembled by hand for speed (see
// writer_parts*.go) under the same two rules.
//
// The package name shadows the standard library's database/sql; files here
// import that as gosql.
package sql
