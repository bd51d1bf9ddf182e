package tracker

import (
	"net/netip"
	"testing"
)

func TestDenyList(t *testing.T) {
	ip6 := func(s string) [16]byte { return netip.MustParseAddr(s).As16() }
	d := NewDenyList(
		[][2]uint32{
			{0x0a000000, 0x0a0000ff}, // 10.0.0.0 - 10.0.0.255
			{0x0a000100, 0x0a000110}, // adjacent: merged
			{0xc0a80101, 0xc0a80101}, // 192.168.1.1 alone
			{0xc0a80000, 0xc0a800ff}, // 192.168.0.0/24, given out of order
			{0x7f000005, 0x7f000001}, // reversed: ignored
			{0xfffffff0, 0xffffffff}, // the top
			{0xfffffff8, 0xfffffffa}, // inside the previous one
			{0x00000000, 0x00000000}, // 0.0.0.0
		},
		[][2][16]byte{
			{ip6("2001:db8::"), ip6("2001:db8::ffff")},
			{ip6("fe80::"), ip6("fe80::1")},
			{ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0"), ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
			{ip6("::2"), ip6("::1")}, // reversed: ignored
		},
	)
	cases := []struct {
		addr string
		want bool
	}{
		{"9.255.255.255", false},
		{"10.0.0.0", true},
		{"10.0.0.255", true},
		{"10.0.1.0", true},
		{"10.0.1.16", true},
		{"10.0.1.17", false},
		{"192.168.0.0", true},
		{"192.168.0.255", true},
		{"192.168.1.0", false},
		{"192.168.1.1", true},
		{"192.168.1.2", false},
		{"127.0.0.3", false},
		{"255.255.255.239", false},
		{"255.255.255.240", true},
		{"255.255.255.255", true},
		{"0.0.0.0", true},
		{"0.0.0.1", false},
		{"::ffff:10.0.0.7", true}, // IPv4-mapped: checked as IPv4
		{"::ffff:10.0.2.7", false},
		{"2001:db8::", true},
		{"2001:db8::ffff", true},
		{"2001:db8::1:0", false},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fe80::2", false},
		{"::1", false},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffef", false},
	}
	for _, c := range cases {
		if got := d.Contains(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if d.Len() != 5+3 {
		t.Errorf("Len = %d, want 8 merged ranges", d.Len())
	}
	if d.Contains(netip.Addr{}) {
		t.Error("zero Addr denied")
	}
	var none *DenyList
	if none.Contains(netip.MustParseAddr("10.0.0.1")) || NewDenyList(nil, nil).Contains(netip.MustParseAddr("::")) {
		t.Error("empty list denies")
	}

	tr, _ := newTest(t, nil)
	if tr.Denied(netip.MustParseAddr("10.0.0.1")) {
		t.Error("denied without a list")
	}
	tr.SetDenyList(d)
	a := netip.MustParseAddr("10.0.0.1")
	if !tr.Denied(a) {
		t.Error("not denied")
	}
	if n := testing.AllocsPerRun(100, func() { tr.Denied(a) }); n != 0 {
		t.Errorf("Denied allocates %v", n)
	}
}
