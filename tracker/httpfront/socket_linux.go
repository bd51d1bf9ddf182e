//go:build linux

// The event loops' system calls: taking a socket over from Go, raw
// non-blocking reads, writes and epoll_waits.

package httpfront

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// dupSocket returns a non-blocking, close-on-exec duplicate of nc's socket.
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
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
