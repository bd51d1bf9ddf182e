package statefile

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

var saved = time.Unix(1_700_000_000, 123456789)

func testHeader() Header {
	return Header{
		SavedAt:    saved,
		SecretHash: SecretHash("secretkey"),
		Writer:     [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Seq:        4711,
		Database:   "xbt",
		Server:     "db1:3306",
	}
}

type torrentRec struct {
	ih    tracker.InfoHash
	fid   uint32
	peers []tracker.PeerState
}

func testTorrents() []torrentRec {
	var out []torrentRec
	for t := range 3 {
		r := torrentRec{fid: uint32(10 + t)}
		r.ih[0], r.ih[19] = byte(t), 0xee
		for p := range 5 + 40*t {
			ps := tracker.PeerState{
				Uploaded: uint64(p) << 33, Downloaded: uint64(p * 1000), Left: uint64(p % 3 * 12345),
				UID: uint32(p%4) * 1_000_003, LastSeen: uint32(saved.Unix()) - uint32(p*7),
				Port: uint16(6881 + p), Counted: p%2 == 0,
			}
			copy(ps.ID[:], "-TT0001-")
			ps.ID[19] = byte(p)
			if p%3 == 1 {
				ps.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(p)})
			} else {
				ps.Addr = netip.AddrFrom4([4]byte{10, 0, byte(t), byte(p)})
			}
			r.peers = append(r.peers, ps)
		}
		out = append(out, r)
	}
	// Extremes: the largest counters and uid, a last-seen after the save.
	last := &out[2].peers[0]
	last.Uploaded, last.Downloaded, last.Left = ^uint64(0), ^uint64(0), ^uint64(0)
	last.UID = ^uint32(0)
	last.LastSeen = uint32(saved.Unix()) + 5
	return out
}

func writeFile(t *testing.T, path string, h Header, recs []torrentRec) int64 {
	t.Helper()
	w, err := Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Torrent(r.ih, r.fid, r.peers); err != nil {
			t.Fatal(err)
		}
	}
	size, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return size
}

func readAll(path string) (Header, []torrentRec, error) {
	r, err := Open(path)
	if err != nil {
		return Header{}, nil, err
	}
	defer r.Close()
	var out []torrentRec
	var buf []tracker.PeerState
	for {
		ih, fid, peers, ok, err := r.Next(buf)
		if err != nil {
			return Header{}, nil, err
		}
		if !ok {
			break
		}
		out = append(out, torrentRec{ih: ih, fid: fid, peers: append([]tracker.PeerState(nil), peers...)})
		buf = peers[:0]
	}
	return r.Header(), out, nil
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xbt-tracker.state")
	recs := testTorrents()
	size := writeFile(t, path, testHeader(), recs)
	if st, err := os.Stat(path); err != nil || st.Size() != size {
		t.Fatalf("stat %v, size %d, Commit said %d", err, st.Size(), size)
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	h, got, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	want := testHeader()
	want.Torrents, want.Peers = 3, 5+45+85
	if !h.SavedAt.Equal(want.SavedAt) {
		t.Fatalf("saved at %v, want %v", h.SavedAt, want.SavedAt)
	}
	h.SavedAt = want.SavedAt
	if h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("records differ:\n got %+v\nwant %+v", got, recs)
	}
}

// TestEmpty: a tracker with no peers still writes a valid (tiny) file.
func TestEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), nil)
	h, got, err := readAll(path)
	if err != nil || len(got) != 0 || h.Peers != 0 {
		t.Fatalf("%v %v %+v", err, got, h)
	}
}

// TestReplaceIsAtomic: a new file replaces the old one whole.
func TestReplaceIsAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), testTorrents())
	h2 := testHeader()
	h2.Seq = 9
	writeFile(t, path, h2, testTorrents()[:1])
	h, got, err := readAll(path)
	if err != nil || h.Seq != 9 || len(got) != 1 {
		t.Fatalf("%v seq %d, %d torrents", err, h.Seq, len(got))
	}
}

func formatError(t *testing.T, err error, want string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a FormatError", err)
	}
	if !strings.Contains(fe.Reason, want) {
		t.Fatalf("reason %q, want it to mention %q", fe.Reason, want)
	}
}

// TestCorruptByte: any single changed byte, anywhere, refuses the file.
func TestCorruptByte(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), testTorrents())
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readAll(path); err == nil {
			t.Fatalf("byte %d changed: file accepted", i)
		} else {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("byte %d changed: %v, want a FormatError", i, err)
			}
		}
	}
}

// TestTruncated: every shorter prefix of a file is refused.
func TestTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), testTorrents())
	good, _ := os.ReadFile(path)
	for n := range len(good) {
		if err := os.WriteFile(path, good[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := readAll(path)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("%d of %d bytes: %v, want a FormatError", n, len(good), err)
		}
	}
}

// TestStructureCheckedBeforeUse: a file whose checksum is right but whose
// records are wrong (a writer bug, a forged file) is refused by Open, before
// any record is handed out.
func TestStructureCheckedBeforeUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), testTorrents())
	good, _ := os.ReadFile(path)
	// The trailer's peer count, off by one, with the checksum recomputed.
	b := append([]byte(nil), good...)
	n := len(b)
	binary.LittleEndian.PutUint64(b[n-12:], binary.LittleEndian.Uint64(b[n-12:])+1)
	binary.LittleEndian.PutUint32(b[n-4:], crc(b[:n-4]))
	os.WriteFile(path, b, 0o600)
	_, err := Open(path)
	formatError(t, err, "trailer says")
}

func crc(b []byte) uint32 {
	c := crcWriter{w: discard{}}
	c.Write(b)
	return c.crc
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestWrongVersionAndMagic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), testTorrents())
	good, _ := os.ReadFile(path)
	b := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(b[8:], 2)
	os.WriteFile(path, b, 0o600)
	_, err := Open(path)
	formatError(t, err, "format version 2")

	os.WriteFile(path, []byte("some other file, long enough to have a header and a trailer"), 0o600)
	_, err = Open(path)
	formatError(t, err, "not a state file")
}

func TestMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "none"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v, want ErrNotExist", err)
	}
}

// TestCheck: foreign database, foreign secret, too old, from the future.
func TestCheck(t *testing.T) {
	h := testHeader()
	ok := Expect{
		Now: saved.Add(10 * time.Minute), MaxAge: 45 * time.Minute,
		SecretHash: SecretHash("secretkey"), Database: "xbt", Server: "db1:3306",
	}
	if r := h.Check(ok); r != "" {
		t.Fatalf("matching file refused: %s", r)
	}
	for _, c := range []struct {
		name string
		mod  func(*Expect)
		want string
	}{
		{"another database", func(e *Expect) { e.Database = "xbt2" }, `database "xbt2"`},
		{"another server", func(e *Expect) { e.Server = "db2:3306" }, `server "db2:3306"`},
		{"another secret", func(e *Expect) { e.SecretHash = SecretHash("secretkey2") }, "another torrent_pass_private_key"},
		{"too old", func(e *Expect) { e.Now = saved.Add(45 * time.Minute) }, "not younger than the peer expiry"},
		{"interval shortened", func(e *Expect) { e.MaxAge = 5 * time.Minute }, "not younger than the peer expiry"},
		{"future", func(e *Expect) { e.Now = saved.Add(-2 * time.Minute) }, "in the future"},
	} {
		e := ok
		c.mod(&e)
		if r := h.Check(e); !strings.Contains(r, c.want) {
			t.Errorf("%s: reason %q, want it to mention %q", c.name, r, c.want)
		}
	}
	if strings.Contains(string(h.SecretHash[:]), "secretkey") {
		t.Fatal("the secret is in the file")
	}
}

// TestSecretNotInFile: the file never holds the secret itself.
func TestSecretNotInFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	writeFile(t, path, testHeader(), testTorrents())
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "secretkey") {
		t.Fatal("the secret is in the file")
	}
}

func TestCreateRefusesLongHeaderString(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	_, err := Create(path, Header{Database: strings.Repeat("x", maxHeaderString+1), Server: "db1:3306"})
	if err == nil || !strings.Contains(err.Error(), "database name is 1025 bytes") {
		t.Fatalf("Create with a long database name: %v, want an error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Create left %d files behind", len(ents))
	}
}
