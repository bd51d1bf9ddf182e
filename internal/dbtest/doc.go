// Package dbtest gives database tests a throwaway MariaDB/MySQL database.
//
// It owns nothing but test plumbing: [New] creates a uniquely named database
// on the server named by XBT_TEST_DSN (default root:@tcp(127.0.0.1:3306)/),
// hands back an open pool and DSN for it, and drops it when the test ends.
// When the server is unreachable the test is skipped, or fails if the CI
// environment variable is set, so a missing database is never silently
// ignored in CI.
package dbtest
