package loadgen

import (
	"math/rand/v2"
	"strconv"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

// Event is an announce's event, numbered as in BEP 15.
type Event uint8

// The announce events, with BEP 15's numbers (EventNone is a periodic
// announce without event).
const (
	EventNone      Event = 0
	EventCompleted Event = 1
	EventStarted   Event = 2
	EventStopped   Event = 3
)

func (e Event) String() string {
	switch e {
	case EventCompleted:
		return "completed"
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	}
	return "periodic"
}

// World is what the simulated clients know: the site secret, the users who
// may announce and the torrents.
type World struct {
	Secret string
	Users  []WorldUser
	Hashes [][20]byte
}

// WorldUser is one user who may announce: uid and torrent_pass_version.
type WorldUser struct {
	UID     uint32
	Version int32
}

// Behaviour shapes the simulated clients.
type Behaviour struct {
	SeederRatio float64 // share of sessions that start as seeders (left = 0)
	StopRatio   float64 // chance that a running session's next announce is event=stopped
	MinSize     uint64  // torrent sizes are uniform in [MinSize, MaxSize]
	MaxSize     uint64
}

// DefaultBehaviour is 60% seeders, a session lasts 20 announces on average,
// torrents of 100 MB to 4 GB.
var DefaultBehaviour = Behaviour{SeederRatio: 0.6, StopRatio: 0.05, MinSize: 100 << 20, MaxSize: 4 << 30}

// simPeer is one simulated client session on one torrent. Within a session
// uploaded and downloaded only grow and left only shrinks, as a real
// client's counters do, so the tracker credits real deltas. After a stopped
// announce the slot starts a new session: another torrent, user and peer_id,
// counters from zero.
type simPeer struct {
	up, down, left, size uint64
	torrent              uint32 // index into World.Hashes
	user                 uint32 // index into World.Users
	port                 uint16
	running              bool // started was sent
	ended                bool // stopped was sent: next() begins a new session
	id                   [20]byte
	pk                   [passkey.Len]byte
}

// peerGen makes sessions for one worker: its own random source, session
// counter and peer_id prefix.
type peerGen struct {
	w      *World
	z      *Zipf
	b      Behaviour
	r      *rand.Rand
	worker uint32
	serial uint64
}

// begin starts a new session in p.
func (g *peerGen) begin(p *simPeer) {
	*p = simPeer{}
	p.torrent = uint32(g.z.Pick(g.r))
	p.user = uint32(g.r.IntN(len(g.w.Users)))
	p.port = uint16(1024 + g.r.IntN(64000))
	p.size = g.b.MinSize
	if g.b.MaxSize > g.b.MinSize {
		p.size += g.r.Uint64N(g.b.MaxSize - g.b.MinSize + 1)
	}
	if g.r.Float64() >= g.b.SeederRatio {
		p.left = p.size
	}
	g.serial++
	// Azureus style, as most clients: "-XB0100-" then 12 characters.
	copy(p.id[:], "-XB0100-000000000000")
	tail := strconv.AppendUint(nil, uint64(g.worker)<<36|g.serial&(1<<36-1), 36)
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	copy(p.id[20-len(tail):], tail)
	u := g.w.Users[p.user]
	passkey.AppendDerive(p.pk[:0], g.w.Secret, int(u.Version), u.UID, &g.w.Hashes[p.torrent])
}

// next advances p to its next announce and returns the event to send with
// the counters now in p. The first announce of a session is started; a
// leecher downloads a random part of what it lacks each time (sending
// completed when nothing is left) and uploads some of it; a seeder uploads;
// any running session may stop.
func (g *peerGen) next(p *simPeer) Event {
	if p.ended {
		g.begin(p)
	}
	if !p.running {
		p.running = true
		return EventStarted
	}
	// Transfer since the last announce.
	chunk := p.size/uint64(4+g.r.IntN(16)) + 1
	if p.left > 0 {
		d := min(chunk, p.left)
		p.down += d
		p.left -= d
		p.up += g.r.Uint64N(d/2 + 1)
		if p.left == 0 {
			return EventCompleted
		}
	} else {
		p.up += g.r.Uint64N(chunk)
	}
	if g.r.Float64() < g.b.StopRatio {
		p.ended = true
		return EventStopped
	}
	return EventNone
}
