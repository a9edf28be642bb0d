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
// Write and Header are promoted from the embedded writer on purpose. Under Yaegi an interpreted
// Write costs about 1.4 µs and 18 allocations per call, paid on every 32 KiB of a blob; a promoted
// one is a compiled call of Traefik's writer (Yaegi binds it to the field, not to the value the
// field held when the wrapper was made). A response whose body needs handling swaps a bodyWriter
// into the field in WriteHeader.
type responseWriter struct {
	http.ResponseWriter // where Write goes: out, or body once the body needs handling
	out                 http.ResponseWriter
	m                   *Mirror
	r                   *http.Request
	x                   rewrite.Exchange
	// pullPath and pullQuery are the client's request when MapPull mapped it and x is still
	// empty: the response rules need x only for some responses.
	pullPath, pullQuery string
	// document is set for a GET of tags/list or _catalog, whose JSON names are rewritten.
	document    bool
	wroteHeader bool
	body        *bodyWriter
}

// bodyWriter takes over the body of a response that cannot stream through untouched: one the
// plugin refused (Harbor's body is dropped), a document it buffers to rewrite, one without
// Content-Length that it flushes as it goes (under Yaegi, Traefik's compiled proxy cannot see an
// interpreted Flush method, traefik#10269), and any response on a route that may carry a Link
// header, in case the body is written before the header.
type bodyWriter struct {
	http.ResponseWriter // Traefik's writer
	w                   *responseWriter
	refused             bool
	buffering           bool
	flusher             http.Flusher
	status              int
	buf                 []byte
}

func newResponseWriter(m *Mirror, w http.ResponseWriter, r *http.Request) *responseWriter {
	return &responseWriter{ResponseWriter: w, out: w, m: m, r: r}
}

// takeBody routes the rest of the response's body through a bodyWriter.
func takeBody(w *responseWriter) *bodyWriter {
	if w.body == nil {
		w.body = &bodyWriter{ResponseWriter: w.out, w: w}
		w.ResponseWriter = w.body
	}
	return w.body
}

// WriteHeader passes the common answer, a 200 with a length and no Link, straight through; the
// rest goes to writeHeader, so that Yaegi does not allocate its locals on every response.
func (w *responseWriter) WriteHeader(code int) {
	if code != http.StatusOK || w.wroteHeader || w.body != nil {
		writeHeader(w, code)
		return
	}
	h := w.out.Header()
	if h["Link"] != nil || h["Content-Length"] == nil {
		writeHeader(w, code)
		return
	}
	w.wroteHeader = true
	w.out.WriteHeader(code)
}

func writeHeader(w *responseWriter, code int) {
	if w.wroteHeader {
		return
	}
	if code < http.StatusOK {
		w.out.WriteHeader(code) // informational: the real header comes later
		return
	}
	w.wroteHeader = true
	if w.pullPath != "" {
		fillExchange(w)
	}
	h := w.out.Header()
	if err := rewriteHeaders(w, h, code); err != nil {
		takeBody(w).refused = true
		for k := range h {
			delete(h, k) // the answer is the plugin's now: none of Harbor's headers stay
		}
		writeError(w.out, err)
		return
	}
	if bufferDocument(w, h, code) {
		body := takeBody(w)
		body.buffering, body.status = true, code
		return
	}
	if _, sized := h["Content-Length"]; !sized {
		if f, ok := w.out.(http.Flusher); ok {
			takeBody(w).flusher = f
		}
	}
	w.out.WriteHeader(code)
}

// fillExchange fills in the exchange of a pull for the response rules.
func fillExchange(w *responseWriter) {
	rewrite.FillPull(w.m.projects, &w.x, w.pullPath, w.pullQuery)
	w.pullPath = ""
}

// Flush serves compiled callers that can see it; under Yaegi, bodyWriter.Write flushes instead.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Traefik's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.out }

func (b *bodyWriter) Write(p []byte) (int, error) {
	if !b.w.wroteHeader {
		writeHeader(b.w, http.StatusOK)
	}
	if b.refused {
		return len(p), nil
	}
	if b.buffering {
		if len(b.buf)+len(p) <= maxRewrittenBody {
			b.buf = append(b.buf, p...)
			return len(p), nil
		}
		if err := streamUnchanged(b); err != nil {
			return 0, err
		}
	}
	n, err := b.ResponseWriter.Write(p)
	if b.flusher != nil {
		b.flusher.Flush()
	}
	return n, err
}

func (b *bodyWriter) Flush() {
	if b.buffering || b.refused {
		return
	}
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// streamUnchanged gives up on a document too large to buffer and sends what it holds as is.
func streamUnchanged(b *bodyWriter) error {
	b.buffering = false
	b.ResponseWriter.Header().Del("Content-Length")
	b.flusher, _ = b.ResponseWriter.(http.Flusher)
	b.ResponseWriter.WriteHeader(b.status)
	_, err := b.ResponseWriter.Write(b.buf)
	b.buf = nil
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
	b := w.body
	if b == nil || !b.buffering {
		return
	}
	body := b.buf
	switch {
	case b.status != http.StatusOK:
		body = rewrite.ErrorBody(body, &w.x)
	case w.x.Route.Kind == rewrite.KindTags:
		body, _ = rewrite.TagsBody(body, w.x.Route.Name)
	case w.x.Route.Kind == rewrite.KindCatalog:
		body, _ = rewrite.CatalogBody(body, w.x.Target)
	}
	w.out.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.out.WriteHeader(b.status)
	_, _ = w.out.Write(body)
}

// rewriteHeaders applies the response rules to the headers that can carry Harbor's names or
// origin. Each header is looked at only for the statuses that carry it, and each has its own small
// function: under Yaegi every map lookup counts, and a function's locals are allocated on every
// call. It fails only when the origin is needed and the request's Host cannot be one.
func rewriteHeaders(w *responseWriter, h http.Header, code int) *rewrite.Error {
	switch {
	case code == http.StatusOK:
		if links := h["Link"]; links != nil {
			return rewriteLinks(w, h, links)
		}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		if challenges := h["Www-Authenticate"]; challenges != nil {
			return rewriteChallenges(w, challenges)
		}
	default:
		if locations := h["Location"]; locations != nil {
			return rewriteLocations(w, locations)
		}
	}
	return nil
}

func rewriteChallenges(w *responseWriter, challenges []string) *rewrite.Error {
	if err := prepareOrigin(w); err != nil {
		return err
	}
	for i, v := range challenges {
		challenges[i] = rewrite.Challenge(&w.x, v)
	}
	return nil
}

func rewriteLocations(w *responseWriter, locations []string) *rewrite.Error {
	if err := prepareOrigin(w); err != nil {
		return err
	}
	for i, v := range locations {
		location, _ := rewrite.RewriteURL(&w.x, v) // a local: Yaegi v0.16.1 drops tuples assigned into an index
		locations[i] = location
	}
	return nil
}

func rewriteLinks(w *responseWriter, h http.Header, links []string) *rewrite.Error {
	if err := prepareOrigin(w); err != nil {
		return err
	}
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
