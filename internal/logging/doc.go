// Package logging builds the process's zap logger: human-readable console
// output when a person is watching a terminal, JSON lines for log collectors
// otherwise. Info level stays quiet (no line per request); warnings and errors
// are reserved for things an operator must act on.
package logging
