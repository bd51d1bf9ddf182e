package passkey

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

type vector struct {
	secret   string
	version  int
	uid      uint32
	infoHash string // hex
	want     string
}

// vectors pin the wire format shared with XBT and the PHP sites; they were
// cross-checked with an independent Python implementation.
var vectors = []vector{
	{"uBm6upQ2RziQL6QkYUcTp3XNbpL", 0, 1, "7a0fac1e0994b78f5c74625f93fd43cfb45dc589", "00000001a0a682b1095e566ed613690f"},
	{"secretkey", 0, 42, "0123456789abcdef0123456789abcdef01234567", "0000002a74b2c05f1a760db474cd76fa"},
	{"secretkey", 1, 42, "0123456789abcdef0123456789abcdef01234567", "0000002a980d30f3f8201965463641ef"},
}

func mustHash(t testing.TB, s string) [20]byte {
	t.Helper()
	var h [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		t.Fatalf("bad info hash %q", s)
	}
	copy(h[:], b)
	return h
}

// reference is a deliberately naive transcription of the XBT formula,
// used as an oracle for the optimised code.
func reference(secret string, version int, uid uint32, ih [20]byte) string {
	d := sha1.Sum([]byte(fmt.Sprintf("%s %d %d %s", secret, version, uid, ih[:])))
	return fmt.Sprintf("%08x", uid) + hex.EncodeToString(d[:])[:24]
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.want, func(t *testing.T) {
			ih := mustHash(t, v.infoHash)
			if got := Derive(v.secret, v.version, v.uid, ih); got != v.want {
				t.Fatalf("Derive = %s, want %s", got, v.want)
			}
			if got := AppendDerive([]byte("x"), v.secret, v.version, v.uid, &ih); string(got) != "x"+v.want {
				t.Fatalf("AppendDerive = %s, want x%s", got, v.want)
			}
			for _, pk := range []string{v.want, strings.ToUpper(v.want), mixedCase(v.want)} {
				if !Verify(v.secret, v.version, v.uid, &ih, []byte(pk)) {
					t.Errorf("Verify(%s) = false", pk)
				}
				if uid, ok := UID([]byte(pk)); !ok || uid != v.uid {
					t.Errorf("UID(%s) = %d, %v; want %d, true", pk, uid, ok, v.uid)
				}
			}
		})
	}
}

func mixedCase(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i += 2 {
		if b[i] >= 'a' && b[i] <= 'f' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// TestVerifyEveryByte replaces each character of a valid passkey with every
// possible byte: only the same hex digit, in either case, may still verify.
func TestVerifyEveryByte(t *testing.T) {
	v := vectors[0]
	ih := mustHash(t, v.infoHash)
	for i := range Len {
		for c := range 256 {
			pk := []byte(v.want)
			pk[i] = byte(c)
			want := byte(c) == v.want[i] || 'A' <= c && c <= 'F' && byte(c)+('a'-'A') == v.want[i]
			if got := Verify(v.secret, v.version, v.uid, &ih, pk); got != want {
				t.Errorf("pos %d byte %#02x: Verify = %v, want %v", i, c, got, want)
			}
		}
	}
}

func TestVerifyBadLength(t *testing.T) {
	v := vectors[1]
	ih := mustHash(t, v.infoHash)
	for _, pk := range [][]byte{
		nil,
		{},
		[]byte(v.want[:Len-1]),
		[]byte(v.want + "0"),
		[]byte(v.want + v.want),
		[]byte(v.want[:uidHexLen]),
	} {
		if Verify(v.secret, v.version, v.uid, &ih, pk) {
			t.Errorf("Verify(%q) = true", pk)
		}
		if _, ok := UID(pk); ok {
			t.Errorf("UID(%q) ok", pk)
		}
	}
}

func TestUnhexExhaustive(t *testing.T) {
	for c := range 256 {
		want, err := strconv.ParseUint(string([]byte{byte(c)}), 16, 8)
		v, ok := unhex(byte(c))
		if (err == nil) != (ok == 1) || err == nil && uint64(v) != want || err != nil && v != 0 {
			t.Errorf("unhex(%#02x) = %d, %d; want %d, err %v", c, v, ok, want, err)
		}
	}
}

func TestUID(t *testing.T) {
	tail := strings.Repeat("0", Len-uidHexLen)
	tests := []struct {
		prefix string
		uid    uint32
		ok     bool
	}{
		{"00000000", 0, true},
		{"00000001", 1, true},
		{"0000002a", 42, true},
		{"0000002A", 42, true},
		{"deadBEEF", 0xdeadbeef, true},
		{"ffffffff", math.MaxUint32, true},
		{"FFFFFFFF", math.MaxUint32, true},
		{"0000000g", 0, false},
		{"g0000000", 0, false},
		{"+0000001", 0, false},
		{"-0000001", 0, false},
		{" 0000001", 0, false},
		{"0x000001", 0, false},
		{"0000001\x00", 0, false},
		{"0000001\xe0", 0, false},
	}
	for _, tt := range tests {
		uid, ok := UID([]byte(tt.prefix + tail))
		if ok != tt.ok || ok && uid != tt.uid {
			t.Errorf("UID(%q...) = %d, %v; want %d, %v", tt.prefix, uid, ok, tt.uid, tt.ok)
		}
	}
	// The digest part is not UID's business.
	if uid, ok := UID([]byte("00000007" + strings.Repeat("z", Len-uidHexLen))); !ok || uid != 7 {
		t.Errorf("UID with non-hex tail = %d, %v; want 7, true", uid, ok)
	}
}

type randCase struct {
	secret  string
	version int
	uid     uint32
	ih      [20]byte
}

func randomCase(r *rand.Rand) randCase {
	var c randCase
	n := r.IntN(40)
	switch r.IntN(8) {
	case 0:
		n = 0
	case 1:
		n = 255 + r.IntN(3) // around the documented maximum
	case 2:
		n = stackBuf - maxTail - 2 + r.IntN(5) // around the stack/heap switch
	case 3:
		n = 1000 + r.IntN(1000) // heap path
	}
	s := make([]byte, n)
	for i := range s {
		s[i] = byte(r.UintN(256))
	}
	c.secret = string(s)
	switch r.IntN(6) {
	case 0:
		c.version = 0
	case 1:
		c.version = math.MinInt64
	case 2:
		c.version = math.MaxInt64
	case 3:
		c.version = -r.IntN(1000)
	default:
		c.version = r.IntN(1000)
	}
	switch r.IntN(6) {
	case 0:
		c.uid = 0
	case 1:
		c.uid = math.MaxUint32
	default:
		c.uid = r.Uint32()
	}
	for i := range c.ih {
		c.ih[i] = byte(r.UintN(256))
	}
	return c
}

// TestProperties checks, over random inputs, that Derive matches the naive
// formula, round-trips through Verify and UID, and that any change to the
// inputs or the passkey makes verification fail.
func TestProperties(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		c := randomCase(r)
		pk := Derive(c.secret, c.version, c.uid, c.ih)
		if want := reference(c.secret, c.version, c.uid, c.ih); pk != want {
			t.Fatalf("%+v: Derive = %s, reference %s", c, pk, want)
		}
		pkb := []byte(pk)
		if !Verify(c.secret, c.version, c.uid, &c.ih, pkb) {
			t.Fatalf("%+v: Verify(Derive) = false", c)
		}
		if !Verify(c.secret, c.version, c.uid, &c.ih, bytes.ToUpper(pkb)) {
			t.Fatalf("%+v: Verify(upper(Derive)) = false", c)
		}
		if uid, ok := UID(pkb); !ok || uid != c.uid {
			t.Fatalf("%+v: UID = %d, %v", c, uid, ok)
		}

		// Any single byte of the secret.
		if len(c.secret) > 0 {
			for range 4 {
				s := []byte(c.secret)
				i := r.IntN(len(s))
				s[i] ^= byte(1 + r.UintN(255))
				if Verify(string(s), c.version, c.uid, &c.ih, pkb) {
					t.Fatalf("%+v: secret byte %d changed, still verifies", c, i)
				}
			}
		}
		// Extra or missing secret bytes.
		if Verify(c.secret+"x", c.version, c.uid, &c.ih, pkb) {
			t.Fatalf("%+v: longer secret still verifies", c)
		}
		if len(c.secret) > 0 && Verify(c.secret[1:], c.version, c.uid, &c.ih, pkb) {
			t.Fatalf("%+v: shorter secret still verifies", c)
		}
		// The version (bumping it is how XBT revokes passkeys).
		for _, d := range []int{1, -1, 1 + r.IntN(1<<30)} {
			if Verify(c.secret, c.version+d, c.uid, &c.ih, pkb) {
				t.Fatalf("%+v: version %+d still verifies", c, d)
			}
		}
		// The uid, both with the old prefix and with a prefix rewritten to
		// the new uid, so the digest alone must catch it.
		other := c.uid ^ (1 << r.UintN(32))
		if Verify(c.secret, c.version, other, &c.ih, pkb) {
			t.Fatalf("%+v: uid %d still verifies", c, other)
		}
		forged := fmt.Appendf(nil, "%08x%s", other, pk[uidHexLen:])
		if Verify(c.secret, c.version, other, &c.ih, forged) {
			t.Fatalf("%+v: forged prefix for uid %d verifies", c, other)
		}
		// Every byte of the info hash.
		for i := range c.ih {
			ih := c.ih
			ih[i] ^= byte(1 + r.UintN(255))
			if Verify(c.secret, c.version, c.uid, &ih, pkb) {
				t.Fatalf("%+v: info hash byte %d changed, still verifies", c, i)
			}
		}
		// Every character of the passkey: a different hex digit, and a
		// non-hex byte.
		for i := range Len {
			p := bytes.Clone(pkb)
			v, _ := unhex(p[i])
			p[i] = "0123456789abcdef"[(v+byte(1+r.UintN(15)))&15]
			if r.IntN(2) == 0 {
				p[i] = bytes.ToUpper(p[i : i+1])[0]
			}
			if Verify(c.secret, c.version, c.uid, &c.ih, p) {
				t.Fatalf("%+v: passkey %s char %d changed to %q, still verifies", c, pk, i, p[i])
			}
			const nonHex = "gGzZ -+\x00\xff./:"
			p[i] = nonHex[r.IntN(len(nonHex))]
			if Verify(c.secret, c.version, c.uid, &c.ih, p) {
				t.Fatalf("%+v: passkey %s char %d changed to %q, still verifies", c, pk, i, p[i])
			}
		}
		// Wrong lengths.
		if Verify(c.secret, c.version, c.uid, &c.ih, pkb[:r.IntN(Len)]) ||
			Verify(c.secret, c.version, c.uid, &c.ih, append(bytes.Clone(pkb), "0123456789abcdef"[r.IntN(16)])) {
			t.Fatalf("%+v: wrong length verifies", c)
		}
	}
}

func TestMatchLegacy(t *testing.T) {
	const stored = "0123456789abcdefghijklmnopqrstuv"
	if !MatchLegacy(stored, []byte(stored)) {
		t.Fatal("MatchLegacy(equal) = false")
	}
	for i := range Len {
		for _, c := range []byte{stored[i] ^ 0x20, stored[i] ^ 1, 0, 0xff} {
			pk := []byte(stored)
			pk[i] = c
			if MatchLegacy(stored, pk) {
				t.Errorf("MatchLegacy with byte %d = %#02x matched", i, c)
			}
		}
	}
	for _, tt := range []struct {
		stored string
		pk     []byte
	}{
		{"", nil},
		{"", []byte{}},
		{"", []byte(stored)},
		{stored, nil},
		{stored[:Len-1], []byte(stored[:Len-1])},
		{stored + "w", []byte(stored + "w")},
		{stored, []byte(stored + "w")},
		{stored + "w", []byte(stored)},
		{stored, []byte(strings.ToUpper(stored))},
	} {
		if MatchLegacy(tt.stored, tt.pk) {
			t.Errorf("MatchLegacy(%q, %q) = true", tt.stored, tt.pk)
		}
	}
}

func TestURLs(t *testing.T) {
	const pk = "00000001a0a682b1095e566ed613690f"
	for _, tt := range []struct{ base, announce, scrape string }{
		{"http://tracker.example:2710", "http://tracker.example:2710/" + pk + "/announce", "http://tracker.example:2710/" + pk + "/scrape"},
		{"http://tracker.example:2710/", "http://tracker.example:2710/" + pk + "/announce", "http://tracker.example:2710/" + pk + "/scrape"},
		{"http://tracker.example:2710//", "http://tracker.example:2710/" + pk + "/announce", "http://tracker.example:2710/" + pk + "/scrape"},
		{"https://example.org/xbt/", "https://example.org/xbt/" + pk + "/announce", "https://example.org/xbt/" + pk + "/scrape"},
	} {
		if got := AnnounceURL(tt.base, pk); got != tt.announce {
			t.Errorf("AnnounceURL(%q) = %q, want %q", tt.base, got, tt.announce)
		}
		if got := ScrapeURL(tt.base, pk); got != tt.scrape {
			t.Errorf("ScrapeURL(%q) = %q, want %q", tt.base, got, tt.scrape)
		}
	}
}

// TestNoAllocs guards the hot path independently of the benchmarks,
// including callers that convert a string to []byte at the call site.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	v := vectors[0]
	ih := mustHash(t, v.infoHash)
	pk := []byte(v.want)
	pkStr := v.want
	dst := make([]byte, 0, 64)
	secret255 := strings.Repeat("k", 255)
	for name, f := range map[string]func(){
		"Verify":          func() { Verify(v.secret, v.version, v.uid, &ih, pk) },
		"VerifyString":    func() { Verify(v.secret, v.version, v.uid, &ih, []byte(pkStr)) },
		"VerifySecret255": func() { Verify(secret255, v.version, v.uid, &ih, pk) },
		"AppendDerive":    func() { AppendDerive(dst[:0], v.secret, v.version, v.uid, &ih) },
		"UID":             func() { UID(pk) },
		"UIDString":       func() { UID([]byte(pkStr)) },
		"MatchLegacy":     func() { MatchLegacy(pkStr, pk) },
		"MatchLegacyString": func() {
			MatchLegacy(pkStr, []byte(pkStr))
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, n)
		}
	}
}

func benchInputs(b *testing.B) (string, int, uint32, [20]byte, string) {
	v := vectors[0]
	return v.secret, v.version, v.uid, mustHash(b, v.infoHash), v.want
}

func BenchmarkVerify(b *testing.B) {
	secret, version, uid, ih, pkStr := benchInputs(b)
	b.Run("bytes", func(b *testing.B) {
		pk := []byte(pkStr)
		b.ReportAllocs()
		for b.Loop() {
			if !Verify(secret, version, uid, &ih, pk) {
				b.Fatal("Verify failed")
			}
		}
	})
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !Verify(secret, version, uid, &ih, []byte(pkStr)) {
				b.Fatal("Verify failed")
			}
		}
	})
}

var sink string

func BenchmarkDerive(b *testing.B) {
	secret, version, uid, ih, _ := benchInputs(b)
	b.ReportAllocs()
	for b.Loop() {
		sink = Derive(secret, version, uid, ih) // a real caller keeps the string
	}
}

func BenchmarkAppendDerive(b *testing.B) {
	secret, version, uid, ih, _ := benchInputs(b)
	dst := make([]byte, 0, Len)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendDerive(dst[:0], secret, version, uid, &ih)
	}
}

func BenchmarkUID(b *testing.B) {
	_, _, _, _, pkStr := benchInputs(b)
	pk := []byte(pkStr)
	b.ReportAllocs()
	for b.Loop() {
		UID(pk)
	}
}

func BenchmarkMatchLegacy(b *testing.B) {
	_, _, _, _, pkStr := benchInputs(b)
	pk := []byte(pkStr)
	b.ReportAllocs()
	for b.Loop() {
		MatchLegacy(pkStr, pk)
	}
}
