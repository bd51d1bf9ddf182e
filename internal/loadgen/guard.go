package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Target is a resolved base URL to send load to.
type Target struct {
	UDP      bool
	Host     string         // as written in the URL, for the Host header
	BasePath string         // path before /<passkey>/announce, without a trailing slash
	Addr     netip.AddrPort // the address dialled: resolved once, never again
}

// ResolveTarget parses a base URL (http://host:port[/path] or
// udp://host:port) and resolves its host. Unless allowRemote, every address
// the host resolves to must be a loopback address (127.0.0.0/8 or ::1):
// the load tool is for measuring a tracker on this machine, and it dials
// the address resolved here, so a later DNS answer cannot redirect it.
func ResolveTarget(ctx context.Context, raw string, allowRemote bool) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", raw, err)
	}
	var t Target
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "udp":
		t.UDP = true
		if port == "" {
			return Target{}, fmt.Errorf("target %q: a udp:// target needs a port", raw)
		}
	default:
		return Target{}, fmt.Errorf("target %q: want http://host:port or udp://host:port", raw)
	}
	host := u.Hostname()
	if host == "" {
		return Target{}, fmt.Errorf("target %q: no host", raw)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Target{}, fmt.Errorf("target %q: bad port %q", raw, port)
	}
	t.Host = u.Host
	t.BasePath = strings.TrimRight(u.Path, "/")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %w", raw, err)
		}
	}
	chosen, err := checkLoopback(host, addrs, allowRemote)
	if err != nil {
		return Target{}, err
	}
	t.Addr = netip.AddrPortFrom(chosen, uint16(p))
	return t, nil
}

// checkLoopback returns the address to dial: the first loopback one (IPv4
// preferred), or with allowRemote the first. Without allowRemote any
// address outside 127.0.0.0/8 and ::1 is an error.
func checkLoopback(host string, addrs []netip.Addr, allowRemote bool) (netip.Addr, error) {
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("target host %q resolves to no address", host)
	}
	var chosen netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsLoopback() && !allowRemote {
			return netip.Addr{}, fmt.Errorf("target host %q resolves to %s, which is not a loopback address: "+
				"the load tool sends only to 127.0.0.0/8 or ::1 (--allow-remote overrides this; do not aim it at machines you do not own)", host, a)
		}
		if !chosen.IsValid() || (a.Is4() && !chosen.Is4()) {
			chosen = a
		}
	}
	return chosen, nil
}
