package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func freeUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
}

// listen_udp = ["0.0.0.0:P", "[::]:P"] (docs/CONFIGURATION.md) binds both:
// a literal host binds its own family only.
func TestListenUDPBothFamilies(t *testing.T) {
	if pc, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6")
	} else {
		pc.Close()
	}
	p := freeUDPPort(t)
	pcs, err := listenUDP([]string{"0.0.0.0:" + p, "[::]:" + p})
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range pcs {
		pc.Close()
	}
}

// All or nothing: a failure closes what was opened and names the key.
func TestListenUDPAllOrNothing(t *testing.T) {
	p, q := freeUDPPort(t), freeUDPPort(t)
	_, err := listenUDP([]string{"127.0.0.1:" + p, "127.0.0.1:" + q, "127.0.0.1:" + q})
	if err == nil || !strings.Contains(err.Error(), "listen_udp") {
		t.Fatalf("err = %v", err)
	}
	pcs, err := listenUDP([]string{"127.0.0.1:" + p, "127.0.0.1:" + q})
	if err != nil {
		t.Fatalf("ports not released after the failure: %v", err)
	}
	for _, pc := range pcs {
		pc.Close()
	}
}

// The README's listen_http = ["0.0.0.0:P", "[::]:P"] must bind both.
func TestListenTCPBothFamilies(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6")
	} else {
		ln.Close()
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	lns, err := listenTCP([]string{"0.0.0.0:" + p, "[::]:" + p})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lns {
		l.Close()
	}
}
