package passkey_test

import (
	"encoding/hex"
	"fmt"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

func ExampleDerive() {
	var infoHash [20]byte
	hex.Decode(infoHash[:], []byte("7a0fac1e0994b78f5c74625f93fd43cfb45dc589"))

	pk := passkey.Derive("uBm6upQ2RziQL6QkYUcTp3XNbpL", 0, 1, infoHash)
	fmt.Println(pk)
	fmt.Println(passkey.AnnounceURL("http://tracker.example:2710/", pk))
	// Output:
	// 00000001a0a682b1095e566ed613690f
	// http://tracker.example:2710/00000001a0a682b1095e566ed613690f/announce
}

func ExampleVerify() {
	const secret = "secretkey"
	var infoHash [20]byte
	hex.Decode(infoHash[:], []byte("0123456789abcdef0123456789abcdef01234567"))
	versions := map[uint32]int{42: 1} // uid -> torrent_pass_version

	pk := []byte("0000002A980D30F3F8201965463641EF") // from an announce path
	uid, ok := passkey.UID(pk)
	version, known := versions[uid]
	fmt.Println(uid, ok && known && passkey.Verify(secret, version, uid, &infoHash, pk))
	// A passkey minted before the user's version was bumped is revoked.
	fmt.Println(passkey.Verify(secret, version, uid, &infoHash, []byte("0000002a74b2c05f1a760db474cd76fa")))
	// Output:
	// 42 true
	// false
}

func ExampleAnnounceURL() {
	pk := "0000002a980d30f3f8201965463641ef"
	fmt.Println(passkey.AnnounceURL("http://tracker.example:2710", pk))
	fmt.Println(passkey.ScrapeURL("http://tracker.example:2710", pk))
	// Output:
	// http://tracker.example:2710/0000002a980d30f3f8201965463641ef/announce
	// http://tracker.example:2710/0000002a980d30f3f8201965463641ef/scrape
}
