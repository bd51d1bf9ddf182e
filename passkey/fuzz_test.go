package passkey

import (
	"testing"
)

func FuzzVerify(f *testing.F) {
	for _, v := range vectors {
		ih := mustHash(f, v.infoHash)
		f.Add(v.secret, v.version, v.uid, ih[:], []byte(v.want))
	}
	f.Add("", -1, uint32(0), []byte{}, []byte("00000000000000000000000000000000"))
	f.Add("k", 7, uint32(0xffffffff), []byte("short"), []byte("ffffffffzzzzzzzzzzzzzzzzzzzzzzzz"))
	f.Add("k", 0, uint32(1), []byte(nil), []byte("\xff"))
	f.Fuzz(func(t *testing.T, secret string, version int, uid uint32, ihb []byte, pk []byte) {
		var ih [20]byte
		copy(ih[:], ihb)

		// Arbitrary bytes: no panic, and the answer must be exactly
		// "pk is the derived passkey up to ASCII case".
		want := Derive(secret, version, uid, ih)
		got := Verify(secret, version, uid, &ih, pk)
		if got != equalFoldHex(pk, want) {
			t.Fatalf("Verify(%q) = %v, derived %s", pk, got, want)
		}
		if id, ok := UID(pk); ok && got && id != uid {
			t.Fatalf("UID(%q) = %d, verified for %d", pk, id, uid)
		}
		_ = MatchLegacy(want, pk)

		if !Verify(secret, version, uid, &ih, []byte(want)) {
			t.Fatalf("Verify(Derive) = false for %s", want)
		}
		if id, ok := UID([]byte(want)); !ok || id != uid {
			t.Fatalf("UID(Derive) = %d, %v; want %d", id, ok, uid)
		}
	})
}

// equalFoldHex reports whether pk equals the lower-case hex string want
// with any of its letters possibly upper-cased.
func equalFoldHex(pk []byte, want string) bool {
	if len(pk) != len(want) {
		return false
	}
	for i, c := range pk {
		if c >= 'A' && c <= 'F' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}
