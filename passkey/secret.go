package passkey

import (
	"errors"
	"io"
)

// SecretLen is the length of a secret made by [GenerateSecret], the same as
// the torrent_pass_private_key XBT generates.
const SecretLen = 27

const secretAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// secretMaxRead bounds how many random bytes GenerateSecret consumes, so a
// broken reader (e.g. one returning only 0xff) yields an error instead of an
// endless loop. A uniform source rejects only 1/32 of its bytes, so running
// out before SecretLen characters are accepted has negligible probability.
const secretMaxRead = 1024

// ErrBadRandom is returned by [GenerateSecret] when its reader produces too
// many bytes that have to be rejected, which a uniform source practically
// never does.
var ErrBadRandom = errors.New("passkey: random source is not uniform")

// GenerateSecret returns a new site secret of [SecretLen] characters drawn
// uniformly from [0-9A-Za-z]. r should be crypto/rand.Reader; a read error
// is returned unwrapped.
func GenerateSecret(r io.Reader) (string, error) {
	// 248 = 4*62: bytes at or above it are rejected so that b%62 is unbiased.
	const limit = 256 - 256%len(secretAlphabet)
	var out [SecretLen]byte
	var buf [64]byte
	n := 0
	for read := 0; n < SecretLen; {
		if read >= secretMaxRead {
			return "", ErrBadRandom
		}
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", err
		}
		read += len(buf)
		for _, b := range buf {
			if int(b) < limit && n < SecretLen {
				out[n] = secretAlphabet[int(b)%len(secretAlphabet)]
				n++
			}
		}
	}
	return string(out[:]), nil
}
