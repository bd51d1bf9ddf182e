package ascii

import "testing"

func TestEqualFold(t *testing.T) {
	tests := []struct {
		b, s       string
		eq, prefix bool
	}{
		{"Connection", "connection", true, true},
		{"CONNECTION", "connection", true, true},
		{"connection", "connection", true, true},
		{"Connections", "connection", false, true},
		{"Connectio", "connection", false, false},
		{"Xonnection", "connection", false, false},
		{"", "", true, true},
		{"[", "{", false, false}, // '[' + 32 is '{': only letters fold
	}
	for _, tc := range tests {
		if got := EqualFold([]byte(tc.b), tc.s); got != tc.eq {
			t.Errorf("EqualFold(%q, %q) = %v", tc.b, tc.s, got)
		}
		if got := HasPrefixFold([]byte(tc.b), tc.s); got != tc.prefix {
			t.Errorf("HasPrefixFold(%q, %q) = %v", tc.b, tc.s, got)
		}
	}
}
