package httpfront

import (
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted := normalizePrefixes([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::ffff:192.168.0.0/112"), // mapped: becomes 192.168.0.0/16
		netip.MustParsePrefix("fd00::/8"),
	})
	a := netip.MustParseAddr
	tests := []struct {
		name      string
		sock      string
		xff, real string
		ip        string
		want      string
		proxied   bool
	}{
		{name: "untrusted socket: headers ignored", sock: "203.0.113.9", xff: "1.2.3.4", real: "5.6.7.8", ip: "9.9.9.9", want: "203.0.113.9"},
		{name: "untrusted mapped socket is unmapped", sock: "::ffff:203.0.113.9", xff: "1.2.3.4", want: "203.0.113.9"},
		{name: "untrusted v6 socket", sock: "2001:db8::5", xff: "1.2.3.4", want: "2001:db8::5"},
		{name: "trusted: single XFF", sock: "10.0.0.1", xff: "198.51.100.7", want: "198.51.100.7", proxied: true},
		{name: "trusted mapped socket", sock: "::ffff:10.0.0.1", xff: "198.51.100.7", want: "198.51.100.7", proxied: true},
		{name: "trusted via mapped prefix", sock: "192.168.3.4", xff: "198.51.100.7", want: "198.51.100.7", proxied: true},
		{name: "chain: rightmost untrusted wins over a spoofed left part", sock: "10.0.0.1",
			xff: "6.6.6.6, 198.51.100.7, 10.1.1.1, 10.2.2.2", want: "198.51.100.7", proxied: true},
		{name: "chain of proxies across families", sock: "fd00::1",
			xff: "2001:db8::77, fd00::2,192.168.1.1", want: "2001:db8::77", proxied: true},
		{name: "XFF entries with ports", sock: "10.0.0.1", xff: "[2001:db8::9]:443, 198.51.100.7:5000", want: "198.51.100.7", proxied: true},
		{name: "bracketed v6 without port", sock: "10.0.0.1", xff: "[2001:db8::9]", want: "2001:db8::9", proxied: true},
		{name: "mapped XFF entry unmapped", sock: "10.0.0.1", xff: "::ffff:198.51.100.7", want: "198.51.100.7", proxied: true},
		{name: "empty elements skipped", sock: "10.0.0.1", xff: "198.51.100.7, ,", want: "198.51.100.7", proxied: true},
		{name: "all XFF trusted: X-Real-IP", sock: "10.0.0.1", xff: "10.9.9.9, 10.8.8.8", real: "198.51.100.8", want: "198.51.100.8", proxied: true},
		{name: "garbage at the right: nothing left of it believed", sock: "10.0.0.1", xff: "198.51.100.7, unknown", real: "198.51.100.8", want: "198.51.100.8", proxied: true},
		{name: "garbage XFF, no X-Real-IP: ip=", sock: "10.0.0.1", xff: "bogus", ip: "198.51.100.9", want: "198.51.100.9", proxied: true},
		{name: "X-Real-IP only", sock: "10.0.0.1", real: " 2001:db8::8 ", want: "2001:db8::8", proxied: true},
		{name: "X-Real-IP garbage: ip=", sock: "10.0.0.1", real: "x", ip: "198.51.100.9", want: "198.51.100.9", proxied: true},
		{name: "ip= only", sock: "10.0.0.1", ip: "::ffff:198.51.100.9", want: "198.51.100.9", proxied: true},
		{name: "trusted, nothing supplied: socket", sock: "10.0.0.1", want: "10.0.0.1"},
		{name: "all trusted and nothing else: socket", sock: "10.0.0.1", xff: "10.0.0.2", want: "10.0.0.1"},
		{name: "v4 with bad port", sock: "10.0.0.1", xff: "198.51.100.7:http", real: "198.51.100.8", want: "198.51.100.8", proxied: true},
		{name: "zone refused", sock: "10.0.0.1", xff: "fe80::1%eth0", want: "10.0.0.1"},
		{name: "long garbage", sock: "10.0.0.1", xff: "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb", want: "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = a(tt.ip)
			}
			got, proxied := ClientAddr(a(tt.sock), trusted, []byte(tt.xff), []byte(tt.real), ip)
			if got != a(tt.want) || proxied != tt.proxied {
				t.Errorf("got %v (proxied %v), want %v (%v)", got, proxied, tt.want, tt.proxied)
			}
		})
	}
}

func TestClientAddrAllocs(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	sock := netip.MustParseAddr("10.0.0.1")
	xff := []byte("6.6.6.6, 2001:db8::1, 10.1.1.1")
	if n := testing.AllocsPerRun(100, func() {
		if got, _ := ClientAddr(sock, trusted, xff, nil, netip.Addr{}); got != netip.MustParseAddr("2001:db8::1") {
			t.Fatal(got)
		}
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

func TestNormalizePrefixes(t *testing.T) {
	got := normalizePrefixes([]netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"),
		netip.MustParsePrefix("::ffff:10.0.0.0/104"),
		netip.MustParsePrefix("::ffff:0:0/80"), // wider than the mapped space: kept as IPv6
		{},
	})
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::/80"),
	}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %v, want %v", i, got[i], want[i])
		}
	}
}
