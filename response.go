package harbormirror

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// responseWriter rewrites Harbor's response headers on their way out. Bodies stream through,
// except the small JSON documents whose names it rewrites: tags/list, _catalog and registry errors.
//
// Yaegi (speed): Write and Header are promoted from the embedded writer. An interpreted
// Write costs about 1.4 µs and 18 allocations per call, paid on every 32 KiB of a blob; a promoted
// one is a compiled call of Traefik's writer (Yaegi binds it to the field, not to the value the
// field held when the wrapper was made). A response whose body needs handling swaps a bodyWriter
// into the field in WriteHeader, or, for a pull lane's 401, a recorder.
type responseWriter struct {
	http.ResponseWriter // where Write goes: out, body once the body needs handling, or a recorder
	out                 http.ResponseWriter
	m                   *Mirror
	r                   *http.Request
	// in is the client's request target as received (Request.RequestURI before the plugin mapped
	// it): the one record of the client's request that the response rules read, as
	// httputil.ProxyRequest's In.
	in string
	// tier is the tier that mapped the request, until x is filled in. The general path fills x as
	// it maps; a lane or the pull path leaves it empty, and fillExchange fills it from in when a
	// response first needs it, and sets generalTier: the general rules answer from then on.
	tier int
	x    rewrite.Exchange
	// document is set for a GET of tags/list or _catalog, whose JSON names are rewritten.
	document    bool
	wroteHeader bool
	body        *bodyWriter
}

// bodyWriter takes over the body of a response that cannot stream through untouched: one the
// plugin refused (Harbor's body is dropped), a document it buffers to rewrite, one without
// Content-Length that it flushes as it goes (Yaegi (correctness): Traefik's compiled proxy cannot
// see an interpreted Flush method, traefik#10269), and any response on a route that may carry a Link
// header, in case the body is written before the header.
//
// A held body is answered as soon as it is whole, inside the upstream's last Write, when Harbor
// declared its length: Traefik's access log takes OriginStatus and OriginContentSize from its
// writer when the service handler (the plugin's next) returns, and would log 0 and 0 otherwise.
type bodyWriter struct {
	http.ResponseWriter // Traefik's writer
	w                   *responseWriter
	refused             bool
	buffering           bool
	flusher             http.Flusher
	status              int
	buf                 []byte
	// length is the body's declared Content-Length, -1 if none.
	length int
	// lane marks the error document of a pull lane's 401 (see laneChallenge).
	lane bool
	// mustRewrite: a held document that cannot be passed as it is (see writeHeader).
	mustRewrite bool
}

// The tiers that map a request (doc.go), as responseWriter.tier records them.
const (
	generalTier = iota
	laneTier
	pullPathTier
)

// newResponseWriter is the writer of a request the general path maps; r is as received.
func newResponseWriter(m *Mirror, w http.ResponseWriter, r *http.Request) *responseWriter {
	return &responseWriter{ResponseWriter: w, out: w, m: m, r: r, in: r.RequestURI}
}

// takeBody routes the rest of the response's body through a bodyWriter.
func takeBody(w *responseWriter) *bodyWriter {
	if w.body == nil {
		w.body = &bodyWriter{ResponseWriter: w.out, w: w}
		w.ResponseWriter = w.body
	}
	return w.body
}

// WriteHeader passes the common answer, a 200 with a length and no Link, straight through.
// Yaegi (speed): the rest goes to writeHeader, whose locals are then not allocated on every
// response.
func (w *responseWriter) WriteHeader(code int) {
	if code != http.StatusOK || w.wroteHeader || w.body != nil {
		writeStatus(w, code)
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

// writeStatus tries the pull lane's answer to a 401 before the general rules of writeHeader.
func writeStatus(w *responseWriter, code int) {
	if code == http.StatusUnauthorized && w.tier == laneTier && !w.wroteHeader && laneChallenge(w, w.m, w.r) {
		w.wroteHeader = true
		return
	}
	writeHeader(w, code)
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
	if w.tier != generalTier {
		fillExchange(w)
	}
	h := w.out.Header()
	if err := rewriteHeaders(w, h, code); err != nil {
		refuse(w, err)
		return
	}
	if bufferDocument(w, h, code) {
		body := takeBody(w)
		body.buffering, body.status = true, code
		// An encoded document that cannot be held is refused rather than passed: it would name
		// the project as Harbor does.
		body.mustRewrite = h["Content-Encoding"] != nil
		holdUntil(body, h)
		return
	}
	if _, sized := h["Content-Length"]; !sized {
		// Yaegi (correctness): flushed from Write; Traefik never calls an interpreted Flush.
		if f, ok := w.out.(http.Flusher); ok {
			takeBody(w).flusher = f
		}
	}
	w.out.WriteHeader(code)
}

// refuse answers with the plugin's error in place of Harbor's answer, whose headers and body are
// dropped.
func refuse(w *responseWriter, err *rewrite.Error) {
	body := takeBody(w)
	body.refused = true
	body.buffering = false
	body.buf = nil
	h := w.out.Header()
	for k := range h {
		delete(h, k) // the answer is the plugin's now: none of Harbor's headers stay
	}
	writeError(w.out, err)
}

// laneChallenge answers Harbor's 401 to a request of the pull lane when the challenge has
// Harbor's own shape and the Host can be an origin; otherwise it changes nothing and returns
// false, and the general rules answer.
// Yaegi (speed): kept apart from the general rules, and small: a function's locals are allocated
// on every call.
func laneChallenge(w *responseWriter, m *Mirror, r *http.Request) bool {
	h := w.out.Header()
	challenges := h["Www-Authenticate"]
	if len(challenges) != 1 {
		return false
	}
	template := laneChallengeTemplate(w, m, r)
	if template == "" {
		return false
	}
	challenge := m.challengeLane.ReplaceAllString(challenges[0], template)
	if challenge == challenges[0] {
		return false
	}
	challenges[0] = challenge
	if r.Method != http.MethodHead && isErrorDocument(h) {
		holdLaneError(w, h)
		return true
	}
	laneOtherBody(w, h, r)
	return true
}

// laneOtherBody answers a pull lane's 401 whose body is not in the shape of Harbor's error
// document: one that may still name the project (encoded, untyped, JSON in another case) is held
// and rewritten by the general rules (finishDocument), anything else passes.
func laneOtherBody(w *responseWriter, h http.Header, r *http.Request) {
	if r.Method != http.MethodHead && isOtherErrorDocument(h) {
		fillExchange(w)
		body := takeBody(w)
		body.buffering, body.status, body.mustRewrite = true, http.StatusUnauthorized, true
		holdUntil(body, h)
		return
	}
	w.out.WriteHeader(http.StatusUnauthorized)
}

// maxLaneHost is rewrite.MaxHostLength as a constant of this package.
// Yaegi (speed): see maxLaneTarget.
const maxLaneHost = rewrite.MaxHostLength

// laneChallengeTemplate is the replacement of Harbor's challenge: the realm is the mirror's token
// endpoint with the lane's only query, ?ns=<registry>, which is the project's realm query. It is ""
// when the Host cannot be an origin (the general rules then answer 400).
func laneChallengeTemplate(w *responseWriter, m *Mirror, r *http.Request) string {
	origin := m.publicOrigin
	if origin == "" {
		if len(r.Host) > maxLaneHost || !m.hostLane.MatchString(r.Host) {
			return ""
		}
		origin = requestScheme(r) + "://" + r.Host
	}
	query := ""
	if q := strings.IndexByte(w.in, '?'); q >= 0 {
		query = w.in[q:]
	}
	return `Bearer realm="` + origin + m.realmPath + query + m.challengeTail
}

// holdLaneError holds the error document of a pull lane's 401; finishLaneError writes it with the
// client's names.
func holdLaneError(w *responseWriter, h http.Header) {
	length, _ := strconv.Atoi(h["Content-Length"][0]) // isErrorDocument checked it is there
	w.body = &bodyWriter{ResponseWriter: w.out, w: w, buffering: true, status: http.StatusUnauthorized, lane: true, length: length}
	w.ResponseWriter = &laneBody{w.out, w.body, length}
}

// laneBody is the writer of a pull lane's 401 error document: one small Write, which holds it
// and answers once it is whole.
type laneBody struct {
	http.ResponseWriter
	b      *bodyWriter
	length int
}

func (l *laneBody) Write(p []byte) (int, error) {
	b := l.b
	if b.buffering {
		b.buf = append(b.buf, p...)
		if len(b.buf) == l.length {
			b.buffering = false
			finishLaneError(b.w)
		}
	}
	return len(p), nil
}

// holdUntil notes the length of a held body, and answers at once for an empty one.
func holdUntil(b *bodyWriter, h http.Header) {
	b.length = declaredLength(h)
	if b.length == 0 {
		finishHeld(b.w)
	}
}

// declaredLength is a response's Content-Length, -1 if it has none.
func declaredLength(h http.Header) int {
	if v := h["Content-Length"]; len(v) == 1 {
		if n, err := strconv.Atoi(v[0]); err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

// isErrorDocument says whether a response's body is a registry error in the shape Harbor sends,
// small enough to hold: JSON, not encoded, with a Content-Length of at most five digits (Go's
// client, in Traefik's proxy, passes on only a valid one).
func isErrorDocument(h http.Header) bool {
	length, kind := h["Content-Length"], h["Content-Type"]
	return len(length) == 1 && len(length[0]) <= rewrite.MaxErrorBodyDigits && len(kind) == 1 &&
		strings.HasPrefix(kind[0], "application/json") && h["Content-Encoding"] == nil
}

// isOtherErrorDocument says whether an error body in another shape may name the project and is
// held too: encoded (decodeDocument decodes it within bounds or refuses it), or small and
// untyped or JSON in another case.
func isOtherErrorDocument(h http.Header) bool {
	if h["Content-Encoding"] != nil {
		return true
	}
	length, kind := h["Content-Length"], h["Content-Type"]
	return len(length) == 1 && len(length[0]) <= rewrite.MaxErrorBodyDigits && (kind == nil || len(kind) == 1 && len(kind[0]) >= len(jsonType) && strings.EqualFold(kind[0][:len(jsonType)], jsonType))
}

// jsonType is compared in any case, as media types are.
const jsonType = "application/json"

// finishLaneError sends the error document of a pull lane's 401 with the client's names.
func finishLaneError(w *responseWriter) {
	body := w.m.errorNames.Replace(string(w.body.buf))
	w.out.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.out.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w.out, body)
}

// fillExchange fills in the exchange of a pull that a lane or the pull path mapped, from the
// client's request as received, for the response rules.
func fillExchange(w *responseWriter) {
	w.tier = generalTier
	rewrite.FillPull(w.m.projects, &w.x, w.in, w.m.mirrorPath)
}

// Flush serves compiled callers that can see it.
// Yaegi (correctness): under Yaegi it is never called; bodyWriter.Write flushes instead.
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
		if len(b.buf)+len(p) <= rewrite.MaxRewrittenBody {
			b.buf = append(b.buf, p...)
			if len(b.buf) == b.length {
				finishHeld(b.w)
			}
			return len(p), nil
		}
		if b.mustRewrite {
			refuse(b.w, documentRefused("over "+strconv.Itoa(rewrite.MaxRewrittenBody)+" bytes"))
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

// bufferDocument says whether the body is a document to rewrite: a 200 tags/list, whatever its
// Content-Type says, or a registry error that names the mapped repository, small enough to hold
// or encoded (finishDocument decodes it within bounds).
func bufferDocument(w *responseWriter, h http.Header, code int) bool {
	if code == http.StatusOK {
		return w.document
	}
	return code >= http.StatusBadRequest && w.x.MappedName != "" && w.r.Method != http.MethodHead &&
		(isErrorDocument(h) || isOtherErrorDocument(h))
}

// finish sends a held body once the upstream handler has returned, if it is not sent yet (its
// length was not declared, or it came short).
func finish(w *responseWriter) {
	if w.body.buffering {
		finishHeld(w)
	}
}

// finishHeld sends a held body; anything after it is dropped.
func finishHeld(w *responseWriter) {
	w.body.buffering, w.body.refused = false, true
	if w.body.lane {
		finishLaneError(w)
	} else {
		finishDocument(w)
	}
}

// finishDocument sends a buffered document with the client's names, decoded if it was encoded;
// one it cannot decode or rewrite is refused.
func finishDocument(w *responseWriter) {
	b := w.body
	body, err := decodeDocument(w.out.Header(), b.buf)
	if err != nil {
		refuse(w, err)
		return
	}
	ok := true
	switch {
	case b.status != http.StatusOK:
		body = rewrite.ErrorBody(body, &w.x)
	case w.x.Route.Kind == rewrite.KindTags:
		body, ok = rewrite.TagsBody(body, w.x.Route.Name)
		// One without a name passes, as long as it does not name the project either.
		ok = ok || !bytes.Contains(body, []byte(w.x.Project.Name+"/"))
	}
	if !ok {
		refuse(w, documentRefused("not the JSON document of its endpoint"))
		return
	}
	w.out.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.out.WriteHeader(b.status)
	_, _ = w.out.Write(body)
}

// decodeDocument undoes a document's Content-Encoding: gzip within MaxRewrittenBody; any other
// coding, a corrupt stream or a larger document is an error.
func decodeDocument(h http.Header, buf []byte) ([]byte, *rewrite.Error) {
	codings := h["Content-Encoding"]
	if codings == nil {
		return buf, nil
	}
	coding := strings.ToLower(strings.TrimSpace(strings.Join(codings, ",")))
	switch coding {
	case "", "identity":
		h.Del("Content-Encoding")
		return buf, nil
	case "gzip", "x-gzip":
	default:
		return nil, documentRefused("Content-Encoding " + coding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(buf))
	if err != nil {
		return nil, documentRefused("gzip: " + err.Error())
	}
	decoded, err := io.ReadAll(io.LimitReader(zr, rewrite.MaxRewrittenBody+1))
	if err != nil {
		return nil, documentRefused("gzip: " + err.Error())
	}
	if len(decoded) > rewrite.MaxRewrittenBody {
		return nil, documentRefused("decodes to over " + strconv.Itoa(rewrite.MaxRewrittenBody) + " bytes")
	}
	h.Del("Content-Encoding")
	return decoded, nil
}

// documentRefused answers in place of a document of Harbor's that the plugin cannot rewrite.
func documentRefused(detail string) *rewrite.Error {
	return &rewrite.Error{Status: http.StatusBadGateway, Code: "UNKNOWN", Message: "the registry's answer cannot be rewritten for this mirror", Detail: detail}
}

// rewriteHeaders applies the response rules to the headers that can carry Harbor's names or
// origin. It fails only when the origin is needed and the request's Host cannot be one.
//
// Yaegi (speed): each header is looked at only for the statuses that carry it, and each has its
// own small function: every map lookup counts, and a function's locals are allocated on every
// call.
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
		// Yaegi (correctness): a local; Yaegi v0.16.1 drops a tuple assigned into an index.
		location, _ := rewrite.URL(&w.x, v)
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
		if v = rewrite.Link(&w.x, v); v != "" {
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

// requestScheme trusts X-Forwarded-Proto as Traefik's entrypoint sets it (from the connection,
// or from a trusted proxy in front), then the connection itself.
func requestScheme(r *http.Request) string {
	switch r.Header.Get("X-Forwarded-Proto") {
	case "https":
		return "https"
	case "http":
		return "http"
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// writeError answers with the plugin's own registry error.
func writeError(w http.ResponseWriter, e *rewrite.Error) {
	body := e.Body()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
