package harbormirror

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// bodyRewrite says whether a 200 response body is a document whose names must be rewritten.
type bodyRewrite int

const (
	bodyAsIs bodyRewrite = iota
	bodyTags
	bodyCatalog
)

// responseWriter rewrites Harbor's response headers on their way out. Bodies stream through,
// except the small JSON documents of tags/list and _catalog.
//
// Under Yaegi, Traefik's compiled proxy cannot see an interpreted Flush method (traefik#10269),
// so a response without Content-Length is flushed from Write instead.
type responseWriter struct {
	http.ResponseWriter
	x           *rewrite.Response
	body        bodyRewrite
	wroteHeader bool
	flusher     http.Flusher
	buffering   bool
	status      int
	buf         []byte
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < http.StatusOK {
		w.ResponseWriter.WriteHeader(code) // informational: the real header comes later
		return
	}
	w.wroteHeader = true
	h := w.ResponseWriter.Header()
	rewriteHeaders(h, w.x)
	if code == http.StatusOK && w.body != bodyAsIs && strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		w.buffering, w.status = true, code
		return
	}
	if _, sized := h["Content-Length"]; !sized {
		w.flusher, _ = w.ResponseWriter.(http.Flusher)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.buffering {
		if len(w.buf)+len(b) <= maxRewrittenBody {
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		if err := w.streamUnchanged(); err != nil {
			return 0, err
		}
	}
	n, err := w.ResponseWriter.Write(b)
	if w.flusher != nil {
		w.flusher.Flush()
	}
	return n, err
}

// Flush serves compiled callers that can see it; under Yaegi, Write flushes instead.
func (w *responseWriter) Flush() {
	if w.buffering {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streamUnchanged gives up on a document too large to buffer and sends what it holds as is.
func (w *responseWriter) streamUnchanged() error {
	w.buffering = false
	w.ResponseWriter.Header().Del("Content-Length")
	w.flusher, _ = w.ResponseWriter.(http.Flusher)
	w.ResponseWriter.WriteHeader(w.status)
	_, err := w.ResponseWriter.Write(w.buf)
	w.buf = nil
	return err
}

// finish sends a buffered document once the upstream response is complete.
func (w *responseWriter) finish() {
	if !w.buffering {
		return
	}
	body := w.buf
	switch w.body {
	case bodyTags:
		body, _ = rewrite.TagsBody(body, w.x.ClientName)
	case bodyCatalog:
		body, _ = rewrite.CatalogBody(body, w.x.Target)
	}
	w.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}

// rewriteHeaders applies the response rules to the headers that can carry Harbor's names or origin.
func rewriteHeaders(h http.Header, x *rewrite.Response) {
	for i, v := range h["Www-Authenticate"] {
		h["Www-Authenticate"][i] = x.Challenge(v)
	}
	for i, v := range h["Location"] {
		h["Location"][i], _ = x.URL(v)
	}
	if links, ok := h["Link"]; ok {
		kept := links[:0]
		for _, v := range links {
			if v = x.Link(v); v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, "Link")
		} else {
			h["Link"] = kept
		}
	}
}
