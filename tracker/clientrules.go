package tracker

import "bytes"

// ClientRules is an immutable pair of peer_id prefix lists that decide
// which BitTorrent clients may announce: the allow list
// (xbt_client_whitelist, Gazelle's table) and the deny list
// (xbt_deny_from_clients). A client whose peer_id starts with a deny
// prefix is refused (ErrClientDenied), even if the allow list names it;
// when the allow list is not empty, a client whose peer_id starts with
// none of its prefixes is refused (ErrClientNotAllowed). Prefixes are
// compared as raw bytes with the 20-byte peer_id; one longer than 20 bytes
// matches nothing.
type ClientRules struct {
	allow, deny [][]byte
}

// NewClientRules builds client rules from the allow and deny prefixes.
// Prefixes that are empty or only whitespace are ignored, and trailing
// spaces are removed (a char(20) column pads with them); duplicates are
// kept once. It returns nil (no rule: every client may announce) when
// nothing is left of either list.
func NewClientRules(allow, deny [][]byte) *ClientRules {
	r := &ClientRules{allow: prefixes(allow), deny: prefixes(deny)}
	if len(r.allow) == 0 && len(r.deny) == 0 {
		return nil
	}
	return r
}

func prefixes(in [][]byte) [][]byte {
	var out [][]byte
	for _, p := range in {
		if len(bytes.TrimSpace(p)) == 0 {
			continue
		}
		p = bytes.TrimRight(p, " ")
		dup := false
		for _, q := range out {
			if bytes.Equal(p, q) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, bytes.Clone(p))
		}
	}
	return out
}

// Check returns the refusal for a client announcing peer id id, or "" when
// it may announce. A nil ClientRules allows everyone. It does not allocate.
func (r *ClientRules) Check(id *PeerID) Failure {
	if r == nil {
		return ""
	}
	for _, p := range r.deny {
		if bytes.HasPrefix(id[:], p) {
			return ErrClientDenied
		}
	}
	if len(r.allow) == 0 {
		return ""
	}
	for _, p := range r.allow {
		if bytes.HasPrefix(id[:], p) {
			return ""
		}
	}
	return ErrClientNotAllowed
}

// Len returns the number of allow and deny prefixes (nil: 0, 0).
func (r *ClientRules) Len() (allow, deny int) {
	if r == nil {
		return 0, 0
	}
	return len(r.allow), len(r.deny)
}

// SetClientRules replaces the client rules (nil: every client may
// announce). Announces already running finish with the old ones.
func (t *Tracker) SetClientRules(r *ClientRules) {
	if a, d := r.Len(); a == 0 && d == 0 {
		r = nil // nothing to check: keep the announce path at one nil test
	}
	t.clients.Store(r)
}

// ClientRules returns the current client rules (nil: none).
func (t *Tracker) ClientRules() *ClientRules { return t.clients.Load() }

// checkClient applies the current client rules to a (Announce's step 1b)
// and counts a refusal under its rule.
func (t *Tracker) checkClient(a *Announce) Failure {
	r := t.clients.Load()
	if r == nil {
		return ""
	}
	f := r.Check(&a.PeerID)
	switch f {
	case ErrClientNotAllowed:
		t.clientRefused[ruleAllow].Add(1)
	case ErrClientDenied:
		t.clientRefused[ruleDeny].Add(1)
	}
	return f
}

// Indexes of Tracker.clientRefused.
const (
	ruleAllow = iota
	ruleDeny
)
