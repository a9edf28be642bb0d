package harbormirror

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// responseWriter rewrites Harbor's response headers on their way out. Bodies stream through,
// except the small JSON documents whose names it rewrites: tags/list, _catalog and registry errors.
//
// Under Yaegi, Traefik's compiled proxy cannot see an interpreted Flush method (traefik#10269),
// so a response without Content-Length is flushed from Write instead.
type responseWriter struct {
	http.ResponseWriter
	m *Mirror
	r *http.Request
	x rewrite.Exchange
	// document is set for a GET of tags/list or _catalog, whose JSON names are rewritten.
	document    bool
	refused     bool // the response was replaced by an error; Harbor's body is dropped
	wroteHeader bool
	flusher     http.Flusher
	buffering   bool
	status      int
	buf         []byte
}

// WriteHeader passes the common answer, a 200 with a length and no Link, straight through; the
// rest goes to writeHeader, so that Yaegi does not allocate its locals on every response.
func (w *responseWriter) WriteHeader(code int) {
	if code != http.StatusOK || w.wroteHeader || w.document {
		writeHeader(w, code)
		return
	}
	h := w.ResponseWriter.Header()
	if h["Link"] != nil || h["Content-Length"] == nil {
		writeHeader(w, code)
		return
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func writeHeader(w *responseWriter, code int) {
	if w.wroteHeader {
		return
	}
	if code < http.StatusOK {
		w.ResponseWriter.WriteHeader(code) // informational: the real header comes later
		return
	}
	w.wroteHeader = true
	h := w.ResponseWriter.Header()
	if err := rewriteHeaders(w, h, code); err != nil {
		w.refused = true
		for k := range h {
			delete(h, k) // the answer is the plugin's now: none of Harbor's headers stay
		}
		writeError(w.ResponseWriter, err)
		return
	}
	if bufferDocument(w, h, code) {
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
	if w.refused {
		return len(b), nil
	}
	if w.buffering {
		if len(w.buf)+len(b) <= maxRewrittenBody {
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		if err := streamUnchanged(w); err != nil {
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
	if w.buffering || w.refused {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streamUnchanged gives up on a document too large to buffer and sends what it holds as is.
func streamUnchanged(w *responseWriter) error {
	w.buffering = false
	w.ResponseWriter.Header().Del("Content-Length")
	w.flusher, _ = w.ResponseWriter.(http.Flusher)
	w.ResponseWriter.WriteHeader(w.status)
	_, err := w.ResponseWriter.Write(w.buf)
	w.buf = nil
	return err
}

// bufferDocument says whether the body is a JSON document to rewrite: a 200 tags/list or
// _catalog, or a registry error small enough to hold that names the mapped repository.
func bufferDocument(w *responseWriter, h http.Header, code int) bool {
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		return false
	}
	if code == http.StatusOK {
		return w.document
	}
	if code < http.StatusBadRequest || w.x.MappedName == "" || w.r.Method == http.MethodHead {
		return false
	}
	length, err := strconv.Atoi(h.Get("Content-Length"))
	return err == nil && length <= maxErrorBody
}

// maxErrorBody bounds the registry error documents buffered to put the client's names back.
const maxErrorBody = 64 << 10

// finish sends a buffered document once the upstream response is complete.
func finish(w *responseWriter) {
	if !w.buffering {
		return
	}
	body := w.buf
	switch {
	case w.status != http.StatusOK:
		body = rewrite.ErrorBody(body, &w.x)
	case w.x.Route.Kind == rewrite.KindTags:
		body, _ = rewrite.TagsBody(body, w.x.Route.Name)
	case w.x.Route.Kind == rewrite.KindCatalog:
		body, _ = rewrite.CatalogBody(body, w.x.Target)
	}
	w.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}

// rewriteHeaders applies the response rules to the headers that can carry Harbor's names or
// origin. Each header is looked at only for the statuses that carry it: under Yaegi every map
// lookup counts. It fails only when the origin is needed and the request's Host cannot be one.
func rewriteHeaders(w *responseWriter, h http.Header, code int) *rewrite.Error {
	var challenges, locations, links []string
	switch {
	case code == http.StatusOK:
		links = h["Link"]
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		challenges = h["Www-Authenticate"]
	default:
		locations = h["Location"]
	}
	if challenges == nil && locations == nil && links == nil {
		return nil
	}
	if err := prepareOrigin(w); err != nil {
		return err
	}
	for i, v := range challenges {
		challenges[i] = rewrite.Challenge(&w.x, v)
	}
	for i, v := range locations {
		location, _ := rewrite.RewriteURL(&w.x, v) // a local: Yaegi v0.16.1 drops tuples assigned into an index
		locations[i] = location
	}
	if links != nil {
		kept := links[:0]
		for _, v := range links {
			if v = rewrite.RewriteLink(&w.x, v); v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, "Link")
		} else {
			h["Link"] = kept
		}
	}
	return nil
}

// prepareOrigin fills in what the response rules need to know about the public side of the
// exchange, once a header needs it.
func prepareOrigin(w *responseWriter) *rewrite.Error {
	w.x.RequestHost, w.x.MirrorPath, w.x.RealmPath, w.x.Origin = w.r.Host, w.m.mirrorPath, w.m.realmPath, w.m.publicOrigin
	if w.x.Origin != "" {
		return nil
	}
	origin, err := rewrite.Origin(requestScheme(w.r), w.r.Host)
	if err != nil {
		return err
	}
	w.x.Origin = origin
	return nil
}
