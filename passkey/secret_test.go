package passkey

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestGenerateSecret(t *testing.T) {
	s, err := GenerateSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != SecretLen {
		t.Fatalf("len = %d, want %d", len(s), SecretLen)
	}
	for _, c := range []byte(s) {
		if strings.IndexByte(secretAlphabet, c) < 0 {
			t.Fatalf("%q: %q not in alphabet", s, c)
		}
	}
}

func TestGenerateSecretDeterministic(t *testing.T) {
	seq := func(bs ...byte) io.Reader {
		return bytes.NewReader(append(bs, make([]byte, 1024)...))
	}
	var first64 []byte
	for i := range 64 {
		first64 = append(first64, byte(i))
	}
	tests := []struct {
		name string
		r    io.Reader
		want string
	}{
		{"identity", seq(first64...), secretAlphabet[:SecretLen]},
		{"wraps", seq(62, 63, 123, 124, 185, 186, 247), "01z0z0z" + strings.Repeat("0", SecretLen-7)},
		// 248..255 would bias the result towards the first 8 characters.
		{"rejects", seq(248, 1, 255, 2, 250, 251, 3), "123" + strings.Repeat("0", SecretLen-3)},
	}
	for _, tt := range tests {
		got, err := GenerateSecret(tt.r)
		if err != nil || got != tt.want {
			t.Errorf("%s: GenerateSecret = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestGenerateSecretErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := GenerateSecret(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("failing reader: err = %v, want %v", err, boom)
	}
	// Fails after some good bytes: must not return a partial secret.
	r := io.MultiReader(bytes.NewReader(make([]byte, 10)), iotest.ErrReader(boom))
	if s, err := GenerateSecret(r); !errors.Is(err, boom) || s != "" {
		t.Errorf("failing after 10 bytes: %q, %v; want \"\", %v", s, err, boom)
	}
	if s, err := GenerateSecret(bytes.NewReader(make([]byte, 10))); !errors.Is(err, io.ErrUnexpectedEOF) || s != "" {
		t.Errorf("short reader: %q, %v; want \"\", %v", s, err, io.ErrUnexpectedEOF)
	}
	if _, err := GenerateSecret(strings.NewReader("")); !errors.Is(err, io.EOF) {
		t.Errorf("empty reader: err = %v, want EOF", err)
	}
	// A reader stuck on a rejected value must not loop forever.
	stuck := bytes.NewReader(bytes.Repeat([]byte{0xff}, 1<<20))
	if _, err := GenerateSecret(stuck); !errors.Is(err, ErrBadRandom) {
		t.Errorf("stuck reader: err = %v, want %v", err, ErrBadRandom)
	}
}

// TestGenerateSecretDistribution is a sanity check, not a statistical
// test: every character must appear, none wildly more often than others.
func TestGenerateSecretDistribution(t *testing.T) {
	const draws = 2000
	var counts [256]int
	for range draws {
		s, err := GenerateSecret(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []byte(s) {
			counts[c]++
		}
	}
	// Expected about 871 per character with a standard deviation near 29,
	// so ±30% is more than 8 sigma away.
	want := draws * SecretLen / len(secretAlphabet)
	for _, c := range []byte(secretAlphabet) {
		if n := counts[c]; n < want*7/10 || n > want*13/10 {
			t.Errorf("%q appeared %d times, want about %d", c, n, want)
		}
	}
}
