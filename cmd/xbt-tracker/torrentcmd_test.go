package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/bencode"
)

// runCmd runs the command line in-process without a database.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"xbt-tracker"}, args...), nil, &out, &errb)
	return out.String(), errb.String(), code
}

// The testdata .torrent files were made by Debian's mktorrent 1.1:
//
//	mktorrent -l 15 -a http://tracker.one.example/announce \
//	  -a http://tracker.two.example/announce,http://backup.two.example/announce \
//	  -c "made by mktorrent for xbt-tracker tests" -o public-single.torrent single.bin   # 300000 random bytes
//	mktorrent -p -l 16 -a http://t.example:2710/announce -o private-multi.torrent multi  # a.bin 70000 + sub/b.txt 5000
//
// and their info_hashes checked with libtorrent 2.0.8 (torrent_info.info_hash()).
func TestTorrentInfoRealFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"public-single.torrent", []string{
			"info_hash 61aacaecfe8cd1abcfc83c3fdf0da25683d3f13b", "private 0", "name single.bin", "length 300000",
			"files 1", "piece_length 32768", "pieces 10", "announce http://tracker.one.example/announce",
		}},
		{"private-multi.torrent", []string{
			"info_hash b1aea9901236372c48087ce208d9957bcfef36a1", "private 1", "name multi", "length 75000",
			"files 2", "piece_length 65536", "pieces 2", "announce http://t.example:2710/announce",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, errOut, code := runCmd(t, "torrent", "info", filepath.Join("testdata", tc.file))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("torrent info:\n%s\nwant:\n%s", out, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// topLevel decodes a written .torrent's top-level keys.
func topLevel(t *testing.T, path string) map[string]bencode.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]bencode.RawMessage
	if err := bencode.DecodeBytes(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTorrentStamp(t *testing.T) {
	// passkeys for secret "secretkey", version 0, uid 5 and each info_hash,
	// as `passkey url` derives them.
	const (
		publicURL  = "http://127.0.0.1:2710/00000005f4071c34d634f6c034cc12b4/announce"
		privateURL = "http://127.0.0.1:2710/0000000593795385454ee69ead4bb7c9/announce"
		publicHash = "61aacaecfe8cd1abcfc83c3fdf0da25683d3f13b"
		// public-single.torrent with private=1 added, as libtorrent hashes it.
		forcedHash = "5ac10afc4a3e95dadd4ce6994cb8bcfe674a698e"
		multiHash  = "b1aea9901236372c48087ce208d9957bcfef36a1"
	)
	offline := []string{"--torrent-pass-private-key", "secretkey", "--pass-version", "0", "--uid", "5", "--base", "http://127.0.0.1:2710"}
	for _, tc := range []struct {
		name     string
		file     string
		flags    []string
		hash     string
		announce string
		tiers    [][]string // announce-list in the copy; nil = absent
		warning  bool
	}{
		{name: "stamp keeps the info_hash and drops announce-list", file: "public-single.torrent",
			hash: publicHash, announce: publicURL},
		{name: "announce-list-keep puts the passkey tier first", file: "public-single.torrent", flags: []string{"--announce-list-keep"},
			hash: publicHash, announce: publicURL, tiers: [][]string{{publicURL},
				{"http://tracker.one.example/announce"}, {"http://tracker.two.example/announce", "http://backup.two.example/announce"}}},
		{name: "private changes the info_hash and warns", file: "public-single.torrent", flags: []string{"--private"},
			hash: forcedHash, announce: privateURL, warning: true},
		{name: "private on a private torrent changes nothing", file: "private-multi.torrent", flags: []string{"--private"},
			hash: multiHash, announce: "http://127.0.0.1:2710/00000005" /* prefix */},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "copy.torrent")
			args := append([]string{"torrent", "stamp"}, offline...)
			args = append(args, tc.flags...)
			args = append(args, "-o", dst, filepath.Join("testdata", tc.file))
			out, errOut, code := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.HasPrefix(out, "info_hash "+tc.hash+"\n") || !strings.Contains(out, "wrote "+dst) {
				t.Fatalf("stdout:\n%s", out)
			}
			if gotWarn := strings.Contains(errOut, "warning: --private"); gotWarn != tc.warning {
				t.Fatalf("warning %v, want %v: %q", gotWarn, tc.warning, errOut)
			}
			if tc.warning && !strings.Contains(errOut, "changed from "+publicHash+" to "+tc.hash) {
				t.Fatalf("the warning must give the old and new info_hash: %q", errOut)
			}
			info, _, code := runCmd(t, "torrent", "info", dst)
			if code != 0 || !strings.Contains(info, "info_hash "+tc.hash+"\nprivate ") {
				t.Fatalf("info of the copy (exit %d):\n%s", code, info)
			}
			if (tc.warning || tc.file == "private-multi.torrent") != strings.Contains(info, "private 1\n") {
				t.Fatalf("private flag of the copy:\n%s", info)
			}
			m := topLevel(t, dst)
			var ann string
			if err := bencode.DecodeBytes(m["announce"], &ann); err != nil || !strings.HasPrefix(ann, tc.announce) {
				t.Fatalf("announce = %q (%v), want %q", ann, err, tc.announce)
			}
			if tc.tiers == nil {
				if _, ok := m["announce-list"]; ok {
					t.Fatal("announce-list was not removed")
				}
			} else {
				var tiers [][]string
				if err := bencode.DecodeBytes(m["announce-list"], &tiers); err != nil {
					t.Fatal(err)
				}
				if got, want := strings.Join(flatten(tiers), " | "), strings.Join(flatten(tc.tiers), " | "); got != want {
					t.Fatalf("announce-list %s, want %s", got, want)
				}
			}
			// Everything else is carried over as it was.
			orig := topLevel(t, filepath.Join("testdata", tc.file))
			for k, v := range orig {
				if k == "announce" || k == "announce-list" || (k == "info" && tc.warning) {
					continue
				}
				if !bytes.Equal(m[k], v) {
					t.Errorf("key %q changed: %q -> %q", k, v, m[k])
				}
			}
		})
	}
}

func flatten(tiers [][]string) []string {
	var s []string
	for _, t := range tiers {
		s = append(s, strings.Join(t, ","))
	}
	return s
}

func TestTorrentStampToStdout(t *testing.T) {
	out, errOut, code := runCmd(t, "torrent", "stamp", "--torrent-pass-private-key", "k", "--uid", "1", "-o", "-", "testdata/private-multi.torrent")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Standard output is the .torrent alone; the report goes to stderr.
	var m map[string]any
	if err := bencode.DecodeString(out, &m); err != nil || !strings.HasPrefix(out, "d8:announce") || !strings.HasSuffix(out, "ee") {
		t.Fatalf("stdout is not exactly a .torrent (%v):\n%q", err, out)
	}
	if !strings.HasPrefix(errOut, "info_hash b1aea9901236372c48087ce208d9957bcfef36a1\nannounce http://127.0.0.1:2710/00000001") {
		t.Fatalf("stderr: %q", errOut)
	}
}

func TestTorrentStampUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"torrent", "stamp", "--uid", "1", "--torrent-pass-private-key", "k", "testdata/public-single.torrent"}, "give --output FILE"},
		{[]string{"torrent", "stamp", "-o", "x", "testdata/public-single.torrent", "--uid", "1"}, "put the flags before FILE"},
		{[]string{"torrent", "stamp", "--uid", "0", "-o", "x", "testdata/public-single.torrent"}, "--uid = \"0\""},
		{[]string{"torrent", "stamp", "--uid", "1", "-o", "x", "testdata/public-single.torrent"}, "no torrent_pass_private_key"},
		{[]string{"torrent", "stamp", "--base", "http://x", "-o", "x", "testdata/public-single.torrent"}, "need --uid"},
		{[]string{"torrent", "info"}, "want exactly one FILE"},
		{[]string{"torrent", "info", "testdata/no-such.torrent"}, "no such file"},
	} {
		_, errOut, code := runCmd(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want one line with %q", tc.args, code, errOut, tc.want)
		}
	}
}

// A malformed file is refused by both subcommands with one line naming the
// file and the fault (internal/metainfo tests every fault), and nothing is
// written.
func TestTorrentMalformed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.torrent")
	if err := os.WriteFile(p, []byte("d4:info3:abce"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"torrent", "info", p},
		{"torrent", "stamp", "--torrent-pass-private-key", "k", "--uid", "1", "-o", p + ".out", p},
	} {
		out, errOut, code := runCmd(t, args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code == 0 || len(lines) != 1 || !strings.Contains(errOut, p+": not a valid .torrent: info is not a dictionary") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", args[1], code, out, errOut)
		}
		if _, err := os.Stat(p + ".out"); err == nil {
			t.Fatal("a copy was written for a malformed file")
		}
	}
}
