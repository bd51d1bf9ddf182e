//go:build linux

// The event loops' system calls: taking a socket over from Go, raw
// non-blocking reads, writes and epoll_waits.

package httpfront

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"
)

// dupSocket returns a non-blocking, close-on-exec duplicate of sc's socket.
func dupSocket(sc syscall.Conn) (int, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	err = rc.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = os.NewSyscallError("fcntl", errno)
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = derr
	}
	if err == nil {
		if err = syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
		}
	}
	if err != nil {
		return -1, err
	}
	return fd, nil
}

func shutdownSocket(fd int) { syscall.Shutdown(fd, syscall.SHUT_RDWR) }

// deferAccept sets TCP_DEFER_ACCEPT on the listening socket lfd: the
// kernel reports a connection only once its first bytes (the request) have
// arrived, so the loop that accepts it reads the request at once instead of
// finding nothing, waiting for epoll and waking again (about one connection
// in three on loopback without it). A client that connects and sends
// nothing is not accepted until it does (after the period the kernel
// completes it anyway), which costs the tracker nothing. Best effort: a
// kernel without it serves as before.
func deferAccept(lfd int) {
	syscall.SetsockoptInt(lfd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1) //nolint:errcheck // best effort, see above
}

// rawClose closes a socket the loop owns. close(2) of a TCP socket without
// SO_LINGER does not block (the kernel sends what is queued afterwards), so
// it is raw like the reads and writes: as syscall.Close it marked the P as
// in a system call once per connection, and with one new connection per
// request sysmon then polled every 20 µs (11% of the CPU in perf).
func rawClose(fd int) {
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) //nolint:errcheck // nothing to do about a failed close of a socket
}

// rawEpollCtl is epoll_ctl(2), raw for the same reason (it never blocks).
func rawEpollCtl(epfd, op, fd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)} //nolint:gosec // G115: a descriptor fits an int32
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd),
		uintptr(unsafe.Pointer(&ev)), 0, 0) //nolint:gosec // G103: epoll_ctl(2) reads ev, live through the call
	if errno != 0 {
		return os.NewSyscallError("epoll_ctl", errno)
	}
	return nil
}

// stopListening makes the listening socket behind fd refuse connections
// at once (shutdown(2) of a listening TCP socket stops it listening, for
// every descriptor of it), so that closing a listener stops accepting even
// while duplicates of it stay open in event loops.
func stopListening(fd int) { syscall.Shutdown(fd, syscall.SHUT_RD) }

// shutdownListener is stopListening on ln's own descriptor.
func shutdownListener(ln net.Listener) {
	if sc, ok := ln.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { stopListening(int(fd)) }) //nolint:errcheck,gosec // closed already: nothing to stop; G115: a descriptor fits an int
		}
	}
}

// epollExclusive is EPOLLEXCLUSIVE (Linux 4.5), which package syscall does
// not name.
const epollExclusive = 1 << 28

// rawAccept4 accepts one connection on the non-blocking listening socket
// lfd: a non-blocking, close-on-exec socket and the peer's address,
// unmapped. Raw like the loop's other calls, and without allocating.
func rawAccept4(lfd int) (int, netip.Addr, syscall.Errno) {
	var rsa syscall.RawSockaddrAny
	n := uint32(syscall.SizeofSockaddrAny)
	fd, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(lfd),
		uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)), //nolint:gosec // G103: accept4(2) fills rsa (n bytes at most) and n; both stay live through the call
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, netip.Addr{}, errno
	}
	var addr netip.Addr
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa)) //nolint:gosec // G103: the family says rsa holds a sockaddr_in
		addr = netip.AddrFrom4(sa.Addr)
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa)) //nolint:gosec // G103: the family says rsa holds a sockaddr_in6
		addr = netip.AddrFrom16(sa.Addr).Unmap()
	}
	return int(fd), addr, 0
}

// setNoDelay turns Nagle's algorithm off, as Go does for the connections
// it accepts: an answer written in two parts (a head and a large body) must
// not wait for the client's delayed ACK. A failure changes nothing that
// matters, so it is ignored.
func setNoDelay(fd int) {
	one := int32(1)
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, //nolint:errcheck // best effort, see above
		uintptr(unsafe.Pointer(&one)), 4, 0) //nolint:gosec // G103: setsockopt(2) reads the 4-byte int one, live through the call
}

// errWouldBlock is fdReader's EAGAIN: no more bytes for now.
var errWouldBlock = errors.New("httpfront: would block")

// The loop's reads, writes and epoll_waits never block (non-blocking
// sockets, timeout 0), so they are made as raw system calls: through
// syscall.Syscall the runtime would mark the loop's P as in a system call,
// and sysmon, seeing it there on every check, would keep taking the P away
// and polling every 20 µs (7% of the CPU under a keep-alive load, in
// perf). With raw calls the loop is just a running goroutine.

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))) //nolint:gosec // G103: raw read(2) into p (non-empty, len(p) bytes); the pointer is converted in the call expression, so p stays live
	return int(n), errno
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))) //nolint:gosec // G103: raw write(2) of p (non-empty, len(p) bytes); the pointer is converted in the call expression, so p stays live
	return int(n), errno
}

// rawEpollWait is epoll_wait with timeout 0, made as epoll_pwait without a
// signal mask: arm64 has no epoll_wait system call.
func rawEpollWait(epfd int, events []syscall.EpollEvent) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0) //nolint:gosec // G103: raw epoll_pwait(2) filling at most len(events) entries of events; the pointer is converted in the call expression, so events stays live
	return int(n), errno
}

// fdReader reads a non-blocking socket for a bufio.Reader.
type fdReader struct{ fd int }

func (r *fdReader) Read(p []byte) (int, error) {
	for {
		n, err := rawRead(r.fd, p)
		switch {
		case err == 0 && n > 0:
			return n, nil
		case err == 0:
			return 0, io.EOF
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		default:
			return 0, err
		}
	}
}
