package passkey

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// Len is the length in characters of a passkey, derived or legacy.
const Len = 32

const (
	uidHexLen    = 8
	digestPrefix = (Len - uidHexLen) / 2 // bytes of the SHA-1 digest kept in a passkey

	// maxTail is the most that version, uid, info hash and the three
	// separating spaces can add to the secret in the SHA-1 input:
	// " " + "-9223372036854775808" + " " + "4294967295" + " " + 20 bytes.
	maxTail = 1 + 20 + 1 + 10 + 1 + 20
	// stackBuf holds the whole SHA-1 input for secrets up to 267 bytes,
	// which covers the 255-byte varchar of xbt_config, so that derivation
	// and verification need no heap allocation in practice.
	stackBuf = 320
)

// sum returns the SHA-1 digest of "secret version uid info_hash".
func sum(secret string, version int, uid uint32, infoHash *[20]byte) [sha1.Size]byte {
	var buf [stackBuf]byte
	b := buf[:0]
	if len(secret) > stackBuf-maxTail {
		// Absurdly long secret: correctness over speed.
		b = make([]byte, 0, len(secret)+maxTail)
	}
	b = append(b, secret...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(uid), 10)
	b = append(b, ' ')
	b = append(b, infoHash[:]...)
	return sha1.Sum(b)
}

// Derive returns the lower-case passkey of user uid for the torrent
// infoHash, given the site secret and the user's torrent_pass_version.
func Derive(secret string, version int, uid uint32, infoHash [20]byte) string {
	var buf [Len]byte
	return string(AppendDerive(buf[:0], secret, version, uid, &infoHash))
}

// AppendDerive appends the lower-case passkey (see [Derive]) to dst and
// returns the extended slice. It does not allocate when dst has room for
// [Len] more bytes and len(secret) <= 255. infoHash must not be nil.
func AppendDerive(dst []byte, secret string, version int, uid uint32, infoHash *[20]byte) []byte {
	d := sum(secret, version, uid, infoHash)
	var u [4]byte
	binary.BigEndian.PutUint32(u[:], uid)
	dst = hex.AppendEncode(dst, u[:])
	return hex.AppendEncode(dst, d[:digestPrefix])
}

// UID returns the user id encoded in the first 8 characters of pk. ok is
// false unless pk is [Len] bytes long and those 8 characters are hex digits
// (either case). The remaining 24 characters are not inspected; a true ok
// only means the caller should look the user up and call [Verify].
func UID(pk []byte) (uid uint32, ok bool) {
	if len(pk) != Len {
		return 0, false
	}
	valid := 1
	for _, c := range pk[:uidHexLen] {
		v, ok := unhex(c)
		valid &= ok
		uid = uid<<4 | uint32(v)
	}
	return uid, valid == 1
}

// Verify reports whether pk is the passkey of user uid for the torrent
// infoHash, given the site secret and the user's torrent_pass_version.
// Hex digits of either case are accepted. pk must be exactly [Len] bytes and
// its uid prefix must equal uid.
//
// Verify does not allocate (for secrets up to 255 bytes) and, once the
// length check has passed, takes the same time whatever pk contains, so a
// timing side channel cannot be used to guess a passkey one byte at a time.
// infoHash must not be nil.
func Verify(secret string, version int, uid uint32, infoHash *[20]byte, pk []byte) bool {
	if len(pk) != Len {
		return false
	}
	var got [Len / 2]byte
	valid := 1
	for i := range got {
		hi, okHi := unhex(pk[2*i])
		lo, okLo := unhex(pk[2*i+1])
		got[i] = hi<<4 | lo
		valid &= okHi & okLo
	}
	var want [Len / 2]byte
	binary.BigEndian.PutUint32(want[:4], uid)
	d := sum(secret, version, uid, infoHash)
	copy(want[4:], d[:digestPrefix])
	return subtle.ConstantTimeCompare(got[:], want[:])&valid == 1
}

// MatchLegacy reports whether pk equals stored, a legacy
// xbt_users.torrent_pass, exactly (case-sensitive, as XBT matches it). Both
// must be [Len] bytes long, so an empty or unset torrent_pass never matches.
// The comparison takes the same time for every pk of length [Len].
func MatchLegacy(stored string, pk []byte) bool {
	if len(stored) != Len || len(pk) != Len {
		return false
	}
	var diff byte
	for i := range Len {
		diff |= stored[i] ^ pk[i]
	}
	return subtle.ConstantTimeByteEq(diff, 0) == 1
}

// unhex decodes one hex digit of either case. ok is 1 if c is a hex digit
// and 0 otherwise, in which case v is 0. It is branch-free and uses no
// lookup table so that decoding a secret passkey leaks nothing through
// timing or the data cache.
func unhex(c byte) (v byte, ok int) {
	x := int32(c)
	// (lo-1 - x) & (x - hi+1) is negative exactly when lo <= x <= hi, so
	// shifting its sign bit down gives an all-ones or all-zeros mask.
	isDigit := ((0x2f - x) & (x - 0x3a)) >> 31
	l := x | 0x20 // fold 'A'-'F' onto 'a'-'f'; no other byte lands there
	isLetter := ((0x60 - l) & (l - 0x67)) >> 31
	v = byte(((x - '0') & isDigit) | ((l - 'a' + 10) & isLetter))
	return v, int((isDigit | isLetter) & 1)
}

// AnnounceURL returns the announce URL embedding pk, XBT style:
// base + "/" + pk + "/announce". base is the tracker's URL such as
// "http://tracker.example:2710"; trailing slashes are ignored. pk is inserted
// verbatim, which is safe for derived passkeys (hex only).
func AnnounceURL(base, pk string) string {
	return strings.TrimRight(base, "/") + "/" + pk + "/announce"
}

// ScrapeURL is like [AnnounceURL] for the scrape endpoint.
func ScrapeURL(base, pk string) string {
	return strings.TrimRight(base, "/") + "/" + pk + "/scrape"
}
