// Admission of new connections: the deny list, the per-IP cap,
// MaxConnections and the eviction of idle connections.

package httpfront

import "time"

// admission is admit's verdict on a new connection.
type admission int

const (
	admitted admission = iota
	refused            // denied or over a connection cap: close it, go on
	closing            // Shutdown has begun: close it and stop accepting
)

// maxEvictBatch bounds how many idle connections one full server evicts at
// once (see evictIdle).
const maxEvictBatch = 64

// clock is the server's monotonic clock (ns since New), the time base of
// conn.idleAt; the event loops keep theirs on it too.
func (s *Server) clock() int64 { return int64(time.Since(s.start)) }

// admit applies the deny list, MaxConnectionsPerIP and MaxConnections to a
// new connection (evicting idle ones at MaxConnections) and, when it is
// admitted, counts it and registers it for Shutdown. It runs once per
// accepted connection, never per request.
func (s *Server) admit(c *conn) admission {
	if !s.cfg.ServeAdmin && s.trk.Denied(c.remote) {
		s.counters.rejectedDenied.Add(1)
		return refused
	}
	c.perIP = s.perIPCap > 0 && !inPrefixes(s.trusted, c.remote)
	c.state.Store(stateIdle)
	c.idleAt.Store(s.clock())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return closing
	}
	if c.perIP && s.perIP[c.remote] >= s.perIPCap {
		s.counters.rejectedPerIP.Add(1)
		return refused
	}
	if s.open.Load() >= s.maxConn && s.evictIdle() == 0 {
		s.counters.rejectedLimit.Add(1)
		return refused
	}
	if c.perIP {
		s.perIP[c.remote]++
	}
	s.open.Add(1)
	s.conns[c] = struct{}{}
	s.counters.accepted.Add(1)
	return admitted
}

// idleConn is an eviction candidate and when it became idle.
type idleConn struct {
	at int64
	c  *conn
}

// evictIdle makes room at MaxConnections: it closes the connections that
// have been idle longest (at most s.batch of them, so that a flood of new
// connections pays for one scan per batch, not one per connection) and
// returns how many it closed. Idle means waiting for a request with nothing
// half-read and no answer pending (stateIdle); a connection still idle when
// chosen is switched to stateClosed and aborted as Shutdown does it (an
// event-loop socket is shut down, and its loop closes it), so one that has
// just begun a request is never cut. Its place in s.open is given up at
// once; its address's count when it is closed. s.mu is held.
func (s *Server) evictIdle() int {
	h := s.evictHeap[:0] // a max-heap on at: the s.batch oldest so far
	for c := range s.conns {
		if c.state.Load() != stateIdle {
			continue
		}
		at := c.idleAt.Load()
		switch {
		case len(h) < s.batch:
			h = append(h, idleConn{at, c})
			for i := len(h) - 1; i > 0; { // sift up
				p := (i - 1) / 2
				if h[p].at >= h[i].at {
					break
				}
				h[p], h[i] = h[i], h[p]
				i = p
			}
		case at < h[0].at:
			h[0] = idleConn{at, c}
			for i := 0; ; { // sift down
				l, m := 2*i+1, i
				if l < len(h) && h[l].at > h[m].at {
					m = l
				}
				if l+1 < len(h) && h[l+1].at > h[m].at {
					m = l + 1
				}
				if m == i {
					break
				}
				h[m], h[i] = h[i], h[m]
				i = m
			}
		}
	}
	n := 0
	for i := range h {
		if c := h[i].c; c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.evicted = true
			c.abort()
			s.open.Add(-1)
			n++
		}
		h[i] = idleConn{}
	}
	s.evictHeap = h[:0]
	s.counters.evicted.Add(uint64(n))
	return n
}

// forget undoes admit once c is closed (or about to be: an event-loop
// socket is closed only after this, see conn.abort).
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.perIP {
		if n := s.perIP[c.remote] - 1; n > 0 {
			s.perIP[c.remote] = n
		} else {
			delete(s.perIP, c.remote)
		}
		c.perIP = false
	}
	if !c.evicted {
		s.open.Add(-1)
	}
	s.mu.Unlock()
}
