package httpfront

import (
	"bytes"
	"compress/gzip"
	"html"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
)

// appendStatistics appends the /statistics page: a small HTML table in the
// spirit of XBT's.
func (s *Server) appendStatistics(dst []byte) []byte {
	info := s.cfg.Status()
	now := time.Now()
	st := info.Stats
	dst = append(dst, `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>xbt-tracker statistics</title>
<style>body{font-family:sans-serif}td,th{padding:2px 12px;text-align:left}td.n{text-align:right}</style>
</head><body><h1>xbt-tracker</h1><table>
`...)
	row := func(name string, v int64) {
		dst = append(dst, "<tr><th>"...)
		dst = append(dst, name...)
		dst = append(dst, `</th><td class="n">`...)
		dst = strconv.AppendInt(dst, v, 10)
		dst = append(dst, "</td></tr>\n"...)
	}
	text := func(name, v string) {
		dst = append(dst, "<tr><th>"...)
		dst = append(dst, name...)
		dst = append(dst, "</th><td>"...)
		dst = append(dst, html.EscapeString(v)...)
		dst = append(dst, "</td></tr>\n"...)
	}
	row("torrents", int64(st.Torrents))
	row("peers", int64(st.Peers))
	row("seeders", int64(st.Seeders))
	row("leechers", int64(st.Leechers))
	row("users", int64(st.Users))
	row("pending writes", int64(st.LedgerLen))
	for k := kind(0); k < numKinds; k++ {
		row(kindNames[k]+" requests", int64(s.counters.kindTotal(k)))
	}
	row("open connections", s.open.Load())
	for _, r := range info.Extra {
		row(html.EscapeString(r.Name), r.Value)
	}
	if !info.Started.IsZero() {
		text("uptime", now.Sub(info.Started).Truncate(time.Second).String())
	}
	text("last flush", ago(now, info.LastFlush))
	if info.FlushErr != "" {
		text("flush error", info.FlushErr)
	}
	text("last reload", ago(now, info.LastReload))
	if info.ReloadErr != "" {
		text("reload error", info.ReloadErr)
	}
	return append(dst, "</table></body></html>\n"...)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339) + " (" + now.Sub(t).Truncate(time.Second).String() + " ago)"
}

// appendMetrics appends the Prometheus text exposition of s.cfg.Metrics and
// returns its Content-Type.
func (s *Server) appendMetrics(dst []byte) ([]byte, string) {
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	mfs, err := s.cfg.Metrics.Gather()
	if err != nil {
		// Like promhttp's ContinueOnError: serve what could be gathered.
		s.log.Warn("gathering metrics", zap.Error(err))
	}
	w := bytes.NewBuffer(dst)
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			s.log.Warn("encoding metrics", zap.Error(err))
			break
		}
	}
	return w.Bytes(), string(format)
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type gzipState struct {
	w   *gzip.Writer
	out sliceWriter
}

var gzipPool = sync.Pool{New: func() any {
	g := &gzipState{}
	g.w, _ = gzip.NewWriterLevel(&g.out, gzip.DefaultCompression)
	return g
}}

// gzipInPlace returns body gzipped, reusing body's storage for the result.
func gzipInPlace(body []byte) []byte {
	g := gzipPool.Get().(*gzipState)
	g.out.b = g.out.b[:0]
	g.w.Reset(&g.out)
	g.w.Write(body) // a sliceWriter never fails
	g.w.Close()
	body = append(body[:0], g.out.b...)
	if cap(g.out.b) > maxKeptBuf {
		g.out.b = nil
	}
	gzipPool.Put(g)
	return body
}
