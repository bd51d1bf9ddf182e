package metainfo

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/bencode"
)

// The testdata .torrent files were made by Debian's mktorrent 1.1:
//
//	mktorrent -l 15 -a http://tracker.one.example/announce \
//	  -a http://tracker.two.example/announce,http://backup.two.example/announce \
//	  -c "made by mktorrent for xbt-tracker tests" -o public-single.torrent single.bin   # 300000 random bytes
//	mktorrent -p -l 16 -a http://t.example:2710/announce -o private-multi.torrent multi  # a.bin 70000 + sub/b.txt 5000
//
// and their info_hashes checked with libtorrent 2.0.8 (torrent_info.info_hash()).
// cmd/xbt-tracker/testdata holds the same two files for the command's tests.
const (
	publicHash = "61aacaecfe8cd1abcfc83c3fdf0da25683d3f13b"
	// public-single.torrent with private=1 added, as libtorrent hashes it.
	forcedHash = "5ac10afc4a3e95dadd4ce6994cb8bcfe674a698e"
	multiHash  = "b1aea9901236372c48087ce208d9957bcfef36a1"
)

func TestReadFileRealFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string
	}{
		{"public-single.torrent", publicHash + " false single.bin 300000 1 32768 10 http://tracker.one.example/announce"},
		{"private-multi.torrent", multiHash + " true multi 75000 2 65536 2 http://t.example:2710/announce"},
	} {
		tr, err := ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%x %t %s %d %d %d %d %s", tr.InfoHash, tr.Private, tr.Name, tr.Length, tr.Files, tr.PieceLength, tr.Pieces, tr.Announce)
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.file, got, tc.want)
		}
	}
}

func topLevel(t *testing.T, data []byte) map[string]bencode.RawMessage {
	t.Helper()
	var m map[string]bencode.RawMessage
	if err := bencode.DecodeBytes(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMakePrivate(t *testing.T) {
	tr, err := ReadFile("testdata/public-single.torrent")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.MakePrivate(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", tr.InfoHash); got != forcedHash || !tr.Private {
		t.Fatalf("info_hash %s private %t, want %s true", got, tr.Private, forcedHash)
	}
	data, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(data)
	if err != nil || again.InfoHash != tr.InfoHash {
		t.Fatalf("the written file reads back as %x (%v)", again.InfoHash, err)
	}
}

func TestSetAnnounce(t *testing.T) {
	const url = "http://127.0.0.1:2710/00000005f4071c34d634f6c034cc12b4/announce"
	orig, err := os.ReadFile("testdata/public-single.torrent")
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		tr, err := Parse(orig)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.SetAnnounce(url, keep); err != nil {
			t.Fatal(err)
		}
		data, err := tr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m := topLevel(t, data)
		var ann string
		if err := bencode.DecodeBytes(m["announce"], &ann); err != nil || ann != url {
			t.Fatalf("announce %q (%v)", ann, err)
		}
		list, had := m["announce-list"]
		if !keep && had {
			t.Fatal("announce-list was not removed")
		}
		if keep {
			var tiers [][]string
			if err := bencode.DecodeBytes(list, &tiers); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprint([][]string{{url}, {"http://tracker.one.example/announce"}, {"http://tracker.two.example/announce", "http://backup.two.example/announce"}})
			if fmt.Sprint(tiers) != want {
				t.Fatalf("announce-list %v, want %s", tiers, want)
			}
		}
		// Everything else, the info dictionary included, keeps its bytes.
		for k, v := range topLevel(t, orig) {
			if k != "announce" && k != "announce-list" && !bytes.Equal(m[k], v) {
				t.Errorf("key %q changed: %q -> %q", k, v, m[k])
			}
		}
		if fmt.Sprintf("%x", tr.InfoHash) != publicHash {
			t.Fatalf("info_hash changed: %x", tr.InfoHash)
		}
	}
}

// Malformed files are refused with one line naming the file and the reason.
func TestMalformed(t *testing.T) {
	whole, err := os.ReadFile("testdata/public-single.torrent")
	if err != nil {
		t.Fatal(err)
	}
	info := func(body string) string { return "d8:announce5:x:/a/4:infod" + body + "ee" }
	const pieces1 = "6:pieces20:01234567890123456789"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "the file is empty"},
		{"text", "hello world\n", "does not start with a bencoded dictionary"},
		{"a list", "li1ee", "does not start with a bencoded dictionary"},
		{"truncated", string(whole[:len(whole)/2]), "truncated"},
		{"cut after the last e", string(whole[:len(whole)-1]), "truncated"},
		{"garbage after", string(whole) + "garbage", "7 bytes of garbage after"},
		{"a bad integer", "d13:creation datei12x4e4:infod4:name1:x12:piece lengthi1e" + pieces1 + "6:lengthi1eee", "bencode"},
		{"a negative string length", "d4:info-3:abce", "bencode"},
		{"a huge string length", "d4:info999999999:xe", "truncated"},
		{"unknown token", "d4:infoxe", "bencode"},
		{"no info", "d8:announce3:abce", "no info dictionary"},
		{"info is a string", "d4:info3:abce", "info is not a dictionary"},
		{"no name", info("6:lengthi1e12:piece lengthi1e" + pieces1), "has no name"},
		{"no piece length", info("6:lengthi1e4:name1:x" + pieces1), "no positive piece length"},
		{"pieces not 20n", info("6:lengthi1e4:name1:x12:piece lengthi1e6:pieces3:abc"), "not a multiple of 20"},
		{"no length nor files", info("4:name1:x12:piece lengthi1e" + pieces1), "neither length nor files"},
		{"too few pieces", info("6:lengthi2e4:name1:x12:piece lengthi1e" + pieces1), "has 1 pieces for 2 bytes"},
		{"file without path", info("5:filesld6:lengthi1eee4:name1:x12:piece lengthi1e" + pieces1), "files[0] lacks"},
		{"name is a number", info("6:lengthi1e4:namei1e12:piece lengthi1e" + pieces1), "info dictionary: bencode"},
		{"v2 only", info("9:file treede12:meta versioni2e4:name1:x12:piece lengthi16384e"), "v2-only"},
		{"announce is a list", "d8:announcele4:infod6:lengthi1e4:name1:x12:piece lengthi1e" + pieces1 + "ee", "announce is not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.torrent")
			if err := os.WriteFile(p, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadFile(p)
			if err == nil || !strings.HasPrefix(err.Error(), p+": not a valid .torrent: ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want one line with %q", err, tc.want)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.torrent")
	for _, data := range []string{"first", "second"} {
		if err := WriteFile(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != data {
			t.Fatalf("read %q (%v), want %q", got, err, data)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
