//go:build linux

package udpfront

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// Why a batch worker: through net.UDPConn each packet cost a recvfrom and a
// sendto made with syscall.Syscall, which marks the P as in a system call;
// with one packet after another sysmon then polled every 20 µs (8% of the
// CPU in perf), and every empty read parked the worker in the netpoller.
// recvmmsg takes every datagram waiting (up to recvBatch) in one call, and
// the raw calls inside RawConn.Read and RawConn.Write keep the runtime's
// readiness waiting and its protection of the descriptor (a Close during a
// call cannot hand the number to another socket) without the system-call
// bookkeeping. The reply goes back to the sender's address exactly as the
// kernel gave it, with no conversion.

// recvBatch is the most datagrams one recvmmsg takes.
const recvBatch = 32

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// batch is one batch worker's receive state.
type batch struct {
	msgs  [recvBatch]mmsghdr
	iovs  [recvBatch]syscall.Iovec
	names [recvBatch]syscall.RawSockaddrAny
	bufs  [recvBatch][]byte
}

func (s *Server) newBatch() *batch {
	bt := &batch{}
	for i := range bt.msgs {
		bt.bufs[i] = make([]byte, s.maxPacket+1) // a datagram that fills it was oversized
		bt.iovs[i].Base = &bt.bufs[i][0]
		bt.iovs[i].SetLen(len(bt.bufs[i]))
		h := &bt.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&bt.names[i])) //nolint:gosec // G103: the kernel writes the sender's address into names[i], which lives as long as bt
		h.Iov = &bt.iovs[i]
		h.Iovlen = 1 // uint64 or uint32, by architecture
	}
	return bt
}

// recv takes the datagrams waiting on fd: their number, or the error
// (EAGAIN: none).
func (bt *batch) recv(fd uintptr) (int, syscall.Errno) {
	for i := range bt.msgs {
		bt.msgs[i].hdr.Namelen = syscall.SizeofSockaddrAny
		bt.msgs[i].hdr.Flags = 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&bt.msgs[0])), recvBatch, 0, 0, 0) //nolint:gosec // G103: recvmmsg(2) fills at most recvBatch entries of bt.msgs, which stays live
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// from is the sender of datagram i, as the kernel gave it (an IPv4 sender
// of a dual-stack socket stays IPv4-mapped, as ReadFromUDPAddrPort returns
// it; handle unmaps).
func (bt *batch) from(i int) netip.AddrPort {
	switch bt.names[i].Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&bt.names[i])) //nolint:gosec // G103: the family says names[i] holds a sockaddr_in
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port(&sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&bt.names[i])) //nolint:gosec // G103: the family says names[i] holds a sockaddr_in6
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(&sa.Port))
	}
	return netip.AddrPort{}
}

// port reads a sockaddr's port, stored in network byte order.
func port(p *uint16) uint16 { return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:]) } //nolint:gosec // G103: a uint16's two bytes

// reply sends out to the sender of datagram i.
func (bt *batch) reply(fd uintptr, i int, out []byte) syscall.Errno {
	//nolint:gosec // G103: sendto(2) reads out and names[i], both live through the call
	_, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)),
		0, uintptr(unsafe.Pointer(&bt.names[i])), uintptr(bt.msgs[i].hdr.Namelen))
	return errno
}

// batchWorker is worker for a *net.UDPConn on Linux. It reports false when
// uc cannot be used this way (then worker serves it as before).
func (s *Server) batchWorker(uc *net.UDPConn) (bool, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false, nil
	}
	b, bt := s.newBufs(), s.newBatch()
	var backoff time.Duration
	for {
		var (
			n     int
			errno syscall.Errno
		)
		err := rc.Read(func(fd uintptr) bool {
			n, errno = bt.recv(fd)
			return errno != syscall.EAGAIN // EAGAIN: wait until readable
		})
		if err != nil {
			if s.shutting.Load() {
				return true, nil
			}
			return true, err // closed, or the deadline Serve sets to stop the others
		}
		if errno != 0 {
			if errno == syscall.EINTR {
				continue
			}
			s.readFailed(os.NewSyscallError("recvmmsg", errno), &backoff)
			continue
		}
		backoff = 0
		for i := range n {
			size := int(bt.msgs[i].n)
			if size > s.maxPacket || bt.msgs[i].hdr.Flags&syscall.MSG_TRUNC != 0 {
				s.counters.error(reasonOversized)
				s.counters.packet(actOther, resDropped)
				continue
			}
			from := bt.from(i)
			if !from.IsValid() {
				continue
			}
			out := s.handlePacket(b, bt.bufs[i][:size], from)
			if len(out) == 0 {
				continue
			}
			var serr syscall.Errno
			werr := rc.Write(func(fd uintptr) bool {
				serr = bt.reply(fd, i, out)
				return serr != syscall.EAGAIN
			})
			if werr != nil || serr != 0 {
				s.counters.error(reasonWrite)
			}
			if errors.Is(werr, net.ErrClosed) {
				return true, werr
			}
		}
	}
}
