//go:build !linux

package udpfront

import "net"

// batchWorker is Linux-only (recvmmsg): elsewhere worker reads one packet
// at a time through net.UDPConn.
func (s *Server) batchWorker(*net.UDPConn) (bool, error) { return false, nil }
