// Package passkey implements XBT Tracker's per-user, per-torrent passkeys.
//
// A passkey is 32 hex characters:
//
//	sprintf("%08x", uid) + hex(sha1(key + " " + version + " " + uid + " " + info_hash))[0:24]
//
// where key is the site secret (xbt_config.torrent_pass_private_key),
// version is xbt_users.torrent_pass_version in decimal, uid is the user id in
// decimal and info_hash is the raw 20-byte torrent info hash. Because the
// torrent is part of the hash, a passkey leaked from one .torrent file is
// useless for any other torrent, and bumping torrent_pass_version revokes all
// of a user's passkeys at once without touching the secret.
//
// The package owns exactly the parts that must agree byte for byte between
// the tracker and the catalog sites that embed passkeys in .torrent files:
// derivation ([Derive], [AppendDerive]), verification ([UID], [Verify],
// [MatchLegacy]), the announce/scrape URL layout ([AnnounceURL],
// [ScrapeURL]) and generation of new site secrets ([GenerateSecret]).
// Looking users up, loading the secret and deciding what to do with a
// rejected announce are left to the caller. It depends on the standard
// library only so that any Go program can import it.
//
// A tracker verifies an announce like this:
//
//	uid, ok := passkey.UID(pk)
//	if u := users[uid]; ok && u != nil {
//		ok = passkey.Verify(secret, u.Version, uid, &infoHash, pk)
//	} else {
//		// XBT fallback: pk may be a legacy xbt_users.torrent_pass.
//		ok = legacy != nil && passkey.MatchLegacy(legacy.TorrentPass, pk)
//	}
//
// The hot-path functions take the passkey as a []byte so that it can be a
// slice of the request buffer; they do not allocate and compare secrets in
// constant time. Derived passkeys are lower case, but verification accepts
// either case like XBT does.
package passkey
