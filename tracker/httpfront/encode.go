package httpfront

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// AppendFailure appends the bencoded failure answer
// d14:failure reason<len>:<msg>e to dst.
func AppendFailure(dst []byte, msg string) []byte {
	dst = append(dst, "d14:failure reason"...)
	dst = appendString(dst, msg)
	return append(dst, 'e')
}

// AppendAnnounce appends the bencoded answer to an announce to dst: a
// failure when r.Failure is set; otherwise
//
//	d8:completei<n>e10:incompletei<n>e8:intervali<n>e12:min intervali<n>e5:peers...e
//
// With compact, peers is the BEP 23 string of 6-byte entries, followed by
// peers6 (BEP 7, 18-byte entries) when there are IPv6 peers. Without
// compact, peers is a list of dicts {ip, peer id, port} holding the IPv6
// peers too; "peer id" is left out with noPeerID or when the engine returned
// no peer ids. It allocates only when dst must grow.
func AppendAnnounce(dst []byte, r *tracker.AnnounceResult, compact, noPeerID bool) []byte {
	if r.Failure != "" {
		return AppendFailure(dst, string(r.Failure))
	}
	dst = append(dst, "d8:completei"...)
	dst = strconv.AppendInt(dst, int64(r.Complete), 10)
	dst = append(dst, "e10:incompletei"...)
	dst = strconv.AppendInt(dst, int64(r.Incomplete), 10)
	dst = append(dst, "e8:intervali"...)
	dst = strconv.AppendInt(dst, int64(r.Interval), 10)
	dst = append(dst, "e12:min intervali"...)
	dst = strconv.AppendInt(dst, int64(r.MinInterval), 10)
	dst = append(dst, "e5:peers"...)
	n4, n6 := len(r.Peers4)/6, len(r.Peers6)/18
	if compact {
		dst = strconv.AppendInt(dst, int64(n4*6), 10)
		dst = append(dst, ':')
		dst = append(dst, r.Peers4[:n4*6]...)
		if n6 > 0 {
			dst = append(dst, "6:peers6"...)
			dst = strconv.AppendInt(dst, int64(n6*18), 10)
			dst = append(dst, ':')
			dst = append(dst, r.Peers6[:n6*18]...)
		}
		return append(dst, 'e')
	}
	ids4 := !noPeerID && len(r.PeerIDs4) == n4
	ids6 := !noPeerID && len(r.PeerIDs6) == n6
	dst = append(dst, 'l')
	for i := 0; i < n4; i++ {
		e := r.Peers4[i*6 : i*6+6]
		var id *tracker.PeerID
		if ids4 {
			id = &r.PeerIDs4[i]
		}
		dst = appendPeerDict(dst, netip.AddrFrom4([4]byte(e[:4])), e[4:6], id)
	}
	for i := 0; i < n6; i++ {
		e := r.Peers6[i*18 : i*18+18]
		var id *tracker.PeerID
		if ids6 {
			id = &r.PeerIDs6[i]
		}
		dst = appendPeerDict(dst, netip.AddrFrom16([16]byte(e[:16])), e[16:18], id)
	}
	return append(dst, "ee"...)
}

// appendPeerDict appends d2:ip<len>:<ip>7:peer id20:<id>4:porti<port>ee.
func appendPeerDict(dst []byte, ip netip.Addr, port []byte, id *tracker.PeerID) []byte {
	var buf [64]byte
	s := ip.AppendTo(buf[:0])
	dst = append(dst, "d2:ip"...)
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	dst = append(dst, s...)
	if id != nil {
		dst = append(dst, "7:peer id20:"...)
		dst = append(dst, id[:]...)
	}
	dst = append(dst, "4:porti"...)
	dst = strconv.AppendUint(dst, uint64(port[0])<<8|uint64(port[1]), 10)
	return append(dst, "ee"...)
}

// AppendScrape appends the bencoded answer to a scrape to dst: a failure
// when r.Failure is set; otherwise
//
//	d5:filesd20:<hash>d8:completei<n>e10:downloadedi<n>e10:incompletei<n>ee...e[5:flagsd20:min_request_intervali<n>ee]e
//
// Bencode wants a dict's keys sorted and unique, so AppendScrape sorts
// r.Files by info_hash in place (when they are not sorted already) and
// writes a repeated info_hash once. It allocates only when dst must grow.
func AppendScrape(dst []byte, r *tracker.ScrapeResult) []byte {
	if r.Failure != "" {
		return AppendFailure(dst, string(r.Failure))
	}
	files := r.Files
	if !slices.IsSortedFunc(files, compareScrapeFiles) {
		slices.SortFunc(files, compareScrapeFiles)
	}
	dst = append(dst, "d5:filesd"...)
	for i := range files {
		f := &files[i]
		if i > 0 && files[i-1].InfoHash == f.InfoHash {
			continue
		}
		dst = append(dst, "20:"...)
		dst = append(dst, f.InfoHash[:]...)
		dst = append(dst, "d8:completei"...)
		dst = strconv.AppendInt(dst, int64(f.Complete), 10)
		dst = append(dst, "e10:downloadedi"...)
		dst = strconv.AppendInt(dst, int64(f.Downloaded), 10)
		dst = append(dst, "e10:incompletei"...)
		dst = strconv.AppendInt(dst, int64(f.Incomplete), 10)
		dst = append(dst, "ee"...)
	}
	dst = append(dst, 'e')
	if r.MinRequestInterval > 0 {
		dst = append(dst, "5:flagsd20:min_request_intervali"...)
		dst = strconv.AppendInt(dst, int64(r.MinRequestInterval), 10)
		dst = append(dst, "ee"...)
	}
	return append(dst, 'e')
}

func compareScrapeFiles(a, b tracker.ScrapeFile) int {
	return bytes.Compare(a.InfoHash[:], b.InfoHash[:])
}

func appendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}
