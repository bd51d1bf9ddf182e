// Package archtest holds one test: the import rules of docs/ARCHITECTURE.md,
// checked on the package graph `go list -deps -test` prints (tracker/ never
// reaches sql/, sync/, database/sql or the MySQL driver; passkey/ imports
// only the standard library; sql/ never imports sync/).
package archtest
