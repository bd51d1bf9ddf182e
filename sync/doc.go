// Package sync is the tracker's clock: it moves data between the in-memory
// engine (package tracker) and the catalog's database (package sql).
//
//   - Load: the start-up load of users, torrents, the deny list, the client
//     rules and the credit rules (factors and freeleech tokens).
//   - Run: every write_db_interval the ledger is drained and written
//     (Flush); every read_db_interval what changed in the database is
//     applied (users, torrents, deletions, the deny list, the client rules,
//     the credit rules), and in between,
//     every change_poll_interval, what the change log reports (Poll); every
//     read_config_interval the settings are rebuilt from xbt_config and the
//     operator's layers; every clean_up_interval silent peers expire.
//   - Shutdown: final flushes, with retries, until the ledger is empty or the
//     deadline passes; whatever could not be written is reported at error
//     level, per table, with the bytes at stake.
//   - Resolver: on-demand lookups of users and torrents the engine does not
//     hold yet, and of a newer torrent_pass_version for a passkey that does
//     not verify with the loaded one, bounded (single flight per key, a negative cache, a global
//     rate limit and a per-lookup timeout) so that random passkeys or info
//     hashes cannot hammer the database.
//
// Nothing here blocks announces: the Syncer only calls the engine's
// thread-safe methods (Drain and Restore swap pointers; reloads update one
// shard at a time).
//
// Nothing accounted is dropped: a failed write puts back exactly what was not
// committed (tracker.Restore adds it to what arrived since). The ledger has a
// bound (ledger_max_entries) used for alerting only; see Syncer.checkBound.
//
// The package name shadows the standard library's sync; files here import
// that one as gosync.
package sync
