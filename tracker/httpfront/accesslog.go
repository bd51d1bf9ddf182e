// log_access: one line per request, passkeys masked.

package httpfront

import (
	"bytes"
	"time"

	"go.uber.org/zap"
)

// logAccess writes log_access's line for the request just served: the
// socket's address (and the client's, when a trusted proxy named another),
// method, path with any passkey masked, status (0: closed unanswered),
// failure reason or error, bytes of the answer and the time taken to read
// and answer it (not to write it). Nothing is logged when no request was
// read (the client closed, or a read failed before a head was whole).
func (s *Server) logAccess(c *conn, b *connBufs, took time.Duration, n int) {
	if b.status == 0 && b.failure == "" {
		return
	}
	b.logPath = appendMaskedPath(b.logPath[:0], b.req.Path)
	fields := [9]zap.Field{
		zap.Stringer("remote", c.remote),
		zap.String("method", b.req.Method),
		zap.String("path", string(b.logPath)),
		zap.Int("status", b.status),
		zap.Int("bytes", n),
		zap.Duration("duration", took),
	}
	nf := 6
	if b.client.IsValid() && b.client != c.remote {
		fields[nf] = zap.Stringer("client", b.client)
		nf++
	}
	if b.failure != "" {
		fields[nf] = zap.String("failure", b.failure)
		nf++
	}
	if b.errText != "" {
		fields[nf] = zap.String("error", b.errText)
		nf++
	}
	s.log.Info("http request", fields[:nf]...)
}

// maskedSegment is how long a path segment may be before appendMaskedPath
// cuts it: a passkey is 32 bytes, every name the tracker serves is shorter.
const maskedSegment = 16

// appendMaskedPath appends p to dst with every segment longer than
// maskedSegment bytes (a passkey, even a damaged one) cut to its first 8
// bytes, which in a passkey are only the uid in hex, and "…".
func appendMaskedPath(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, '/')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if len(seg) > maskedSegment {
			dst = append(dst, seg[:8]...)
			dst = append(dst, "…"...)
		} else {
			dst = append(dst, seg...)
		}
		if i < 0 {
			return dst
		}
		dst = append(dst, '/')
		p = p[i+1:]
	}
}
