package httpfront

// Hooks for the external tests (package httpfront_test).

// IdleConnsForTest is how many open connections are idle (evictable):
// waiting for a request with nothing half-read and no answer pending.
func (s *Server) IdleConnsForTest() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.state.Load() == stateIdle {
			n++
		}
	}
	return n
}

// ConnCountsForTest returns the connections counted open and the number of
// addresses with a per-address count.
func (s *Server) ConnCountsForTest() (open int64, addrs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open.Load(), len(s.perIP)
}
