package statefile

import (
	"fmt"
	"time"
)

// Expect is what the starting tracker is: a state file is believed only if
// its header matches it.
type Expect struct {
	Now        time.Time
	MaxAge     time.Duration // the peer expiry: 1.5 × announce_interval
	SecretHash [32]byte      // SecretHash of the current torrent_pass_private_key
	Database   string        // DATABASE()
	Server     string        // @@server_uuid, or @@hostname:@@port
}

// clockSlack is how far in the future a file's time may be (another
// clock's second, an NTP step) before the file is refused.
const clockSlack = time.Minute

// Check returns "" when the header belongs to the expected database and
// secret and is younger than the peer expiry, else the reason it is not to
// be used, in words for a log line. The commit marker is checked against
// the database by the caller.
func (h *Header) Check(e Expect) string {
	if h.Database != e.Database || h.Server != e.Server {
		return fmt.Sprintf("saved for database %q on server %q, this is database %q on server %q",
			h.Database, h.Server, e.Database, e.Server)
	}
	if h.SecretHash != e.SecretHash {
		return "saved under another torrent_pass_private_key"
	}
	age := e.Now.Sub(h.SavedAt)
	if age < -clockSlack {
		return fmt.Sprintf("saved %s in the future (the clock went back?)", (-age).Round(time.Second))
	}
	if age >= e.MaxAge {
		return fmt.Sprintf("saved %s ago, not younger than the peer expiry %s (1.5 × announce_interval): its peers are gone",
			age.Round(time.Second), e.MaxAge)
	}
	return ""
}
