// Package ascii holds the byte-level ASCII helpers that the HTTP frontend
// and the load tool's HTTP client share: they read the same protocol, so
// they must fold case the same way. Standard library only, allocation-free.
package ascii

// EqualFold reports whether b equals the lower-case ASCII string s,
// ignoring the case of ASCII letters in b (HTTP header names and tokens).
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// HasPrefixFold reports whether b starts with the lower-case ASCII string
// s, ignoring the case of ASCII letters in b.
func HasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && EqualFold(b[:len(s)], s)
}
