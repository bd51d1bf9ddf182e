// Package integration holds end-to-end tests: the real xbt-tracker binary,
// built once per test run (or taken from XBT_TEST_BINARY), against a real
// MariaDB database that each test creates and drops.
package integration
