// Writing answers: status lines, headers, bodies and redirects.

package httpfront

import "strconv"

var statusText = map[int]string{
	200: "OK",
	302: "Found",
	400: "Bad Request",
	404: "Not Found",
	405: "Method Not Allowed",
	431: "Request Header Fields Too Large",
	500: "Internal Server Error",
	505: "HTTP Version Not Supported",
}

func (s *Server) appendStatusLine(dst []byte, req *Request, status int) []byte {
	minor := byte('1')
	if req.ProtoMinor == 0 {
		minor = '0'
	}
	dst = append(dst, "HTTP/1."...)
	dst = append(dst, minor, ' ')
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	return append(dst, statusText[status]...)
}

func appendConnection(dst []byte, req *Request, keep bool) []byte {
	switch {
	case !keep:
		dst = append(dst, "\r\nConnection: close"...)
	case req.ProtoMinor == 0:
		dst = append(dst, "\r\nConnection: keep-alive"...)
	}
	return dst
}

// respond appends the answer with body b.body to b.out: a text/plain one
// unless contentType says otherwise, "Allow: GET" for a 405, without the
// body when head (the answer to a HEAD request). A body larger than
// maxInlineBody (a full scrape, say) is not copied: it goes in b.tail,
// written after b.out with writev.
func (s *Server) respond(b *connBufs, status int, contentType string, keep, gz, head bool) {
	req := &b.req
	b.status = status
	dst := s.appendStatusLine(b.out, req, status)
	dst = append(dst, "\r\nContent-Type: "...)
	if contentType == "" {
		contentType = "text/plain"
	}
	dst = append(dst, contentType...)
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(b.body)), 10)
	if gz {
		dst = append(dst, "\r\nContent-Encoding: gzip"...)
	}
	if status == 405 {
		dst = append(dst, "\r\nAllow: GET"...)
	}
	dst = appendConnection(dst, req, keep)
	dst = append(dst, "\r\n\r\n"...)
	switch {
	case head:
	case len(b.body) > maxInlineBody:
		b.tail = b.body
	default:
		dst = append(dst, b.body...)
	}
	b.out = dst
}

func (s *Server) appendRedirect(dst []byte, req *Request, url string, keep bool) []byte {
	dst = s.appendStatusLine(dst, req, 302)
	dst = append(dst, "\r\nLocation: "...)
	for i := 0; i < len(url); i++ { // never let configuration split the header
		if c := url[i]; c >= ' ' && c != 0x7f {
			dst = append(dst, c)
		}
	}
	dst = append(dst, "\r\nContent-Type: text/plain\r\nContent-Length: 0"...)
	dst = appendConnection(dst, req, keep)
	return append(dst, "\r\n\r\n"...)
}
