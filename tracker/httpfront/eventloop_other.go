//go:build !linux

package httpfront

import "net"

// Event loops are Linux-only (epoll): elsewhere every connection gets its
// own goroutine.
type loopSet struct{}

func (s *Server) startLoops(net.Listener) *loopSet { return nil }

func (*loopSet) stop() {}

func shutdownSocket(int) {}

func shutdownListener(net.Listener) {}
