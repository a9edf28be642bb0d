package harbormirror

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// New validates the configuration and builds the middleware.
func New(_ context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	m, err := newMirror(config)
	if err != nil {
		return nil, fmt.Errorf("harbormirror middleware %q: %w", name, err)
	}
	m.next = next
	if m.pullLane == nil {
		return &withoutLanes{m}, nil
	}
	return m, nil
}

// withoutLanes serves a configuration that no lane serves (origin-fix-only, or one whose every
// request names its registry): its requests skip the lanes' regexp calls.
type withoutLanes struct{ m *Mirror }

func (h *withoutLanes) ServeHTTP(w http.ResponseWriter, r *http.Request) { route(h.m, w, r) }

// maxLaneTarget is rewrite.MaxRequestTarget as a constant of this package.
// Yaegi (speed): a constant of another package costs a pull one allocation more.
const maxLaneTarget = rewrite.MaxRequestTarget

// ServeHTTP tries the lanes first.
//
// Yaegi (speed): every local and every intermediate value of a function is allocated on each
// call, whether its branch runs or not, so each function below holds only what its own request
// needs.
func (m *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// RequestURI is what Traefik's proxy forwards, path and query as the client sent them.
	target := r.RequestURI
	// A longer target skips the lanes, whose regexps would scan all of it (tens of milliseconds
	// for a name near Traefik's 1 MiB limit): the pull path refuses it on the mirror's paths.
	// Yaegi (speed): one condition around the lanes and one route call; a second call would
	// cost a pull two allocations.
	if len(target) <= maxLaneTarget {
		if mapped := m.pullLane.ReplaceAllString(target, m.pullTemplate); mapped != target {
			forwardLanePull(m, w, r, target, mapped)
			return
		}
		if mapped := m.tokenLane.ReplaceAllString(target, m.tokenTemplate); mapped != target {
			forwardLaneToken(m, w, r, mapped)
			return
		}
	}
	route(m, w, r)
}

// forwardLanePull forwards a manifest or blob request the pull lane mapped.
func forwardLanePull(m *Mirror, w http.ResponseWriter, r *http.Request, target, mapped string) {
	// Yaegi (speed): the methods are compared in isRead, whose values are allocated only when it
	// is called; written out here, they would cost every pull five allocations.
	if len(mapped) > m.maxPull || m.readOnly && !isRead(r) {
		route(m, w, r)
		return
	}
	forwardPull(m, &responseWriter{ResponseWriter: w, out: w, m: m, r: r, in: target, tier: laneTier}, r, mapped)
}

func isRead(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead
}

// forwardPull sends a pull's request that a lane or the pull path mapped on to Harbor. The
// exchange is filled in only if the response needs names (see fillExchange).
func forwardPull(m *Mirror, rw *responseWriter, r *http.Request, mapped string) {
	u := r.URL
	// Yaegi (speed): one assignment each; a tuple assignment allocates a temporary per value.
	u.Path = mapped
	u.RawPath = ""
	u.RawQuery = ""
	r.RequestURI = mapped
	m.next.ServeHTTP(rw, r)
	if rw.body != nil {
		finish(rw)
	}
}

// forwardLaneToken forwards a token request the token lane mapped.
func forwardLaneToken(m *Mirror, w http.ResponseWriter, r *http.Request, mapped string) {
	if len(mapped) > m.maxToken || r.Method != http.MethodGet {
		route(m, w, r)
		return
	}
	u := r.URL
	u.Path = m.tokenPath
	u.RawPath = ""
	u.RawQuery = mapped[m.tokenQueryAt:]
	r.RequestURI = mapped
	m.next.ServeHTTP(w, r)
}

// route routes a request that no lane took: registry and token requests to the pull path, and
// from there to the general path.
func route(m *Mirror, w http.ResponseWriter, r *http.Request) {
	if m.atRoot {
		path := r.URL.Path
		if strings.HasPrefix(path, "/v2/") {
			pullPath(m, w, r, path)
			return
		}
		if path == m.tokenPath {
			tokenPullPath(m, w, r)
			return
		}
	}
	routeRest(m, w, r)
}

// routeRest routes everything but a /v2/... or token request at the host's root.
// Yaegi (speed): kept apart from route so that a pull does not pay for its branches.
func routeRest(m *Mirror, w http.ResponseWriter, r *http.Request) {
	if m.originOnly {
		// Only headers change in this mode, and Traefik's proxy writes them before the body.
		// Yaegi (correctness): a local; Yaegi v0.16.1 passes a call's result to compiled code
		// without its interface wrapper, and reflect panics.
		rw := newResponseWriter(m, w, r)
		m.next.ServeHTTP(rw, r)
		return
	}
	path := r.URL.Path
	if m.mirrorPath != "" {
		rest := strings.TrimPrefix(path, m.mirrorPath)
		if len(rest) == len(path) || !strings.HasPrefix(rest, "/") {
			m.next.ServeHTTP(w, r)
			return
		}
		path = rest
	}
	switch {
	case strings.HasPrefix(path, "/v2/") || path == "/v2":
		pullPath(m, w, r, path)
	case path == m.tokenPath:
		tokenPullPath(m, w, r)
	case m.registryOnly && m.mirrorPath == "":
		writeError(w, rewrite.NotFound("this host serves only the registry API"))
	default:
		m.next.ServeHTTP(w, r)
	}
}

// pullPath forwards a registry request that MapPull maps (path: the URL's path without the
// mirror path), and hands any other to generalPath.
func pullPath(m *Mirror, w http.ResponseWriter, r *http.Request, path string) {
	if len(r.RequestURI) > rewrite.MaxRequestTarget {
		writeError(w, rewrite.TargetTooLong())
		return
	}
	u := r.URL
	mapped := rewrite.MapPull(m.projects, path, u.RawPath, u.RawQuery)
	if mapped == "" || m.readOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		generalPath(m, w, r, path)
		return
	}
	forwardPull(m, &responseWriter{ResponseWriter: w, out: w, m: m, r: r, in: r.RequestURI, tier: pullPathTier}, r, mapped)
}

// generalPath serves any registry request (MapRequest), and refuses writes to a read-only
// mirror.
func generalPath(m *Mirror, w http.ResponseWriter, r *http.Request, path string) {
	if m.readOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, rewrite.MethodNotAllowed("this mirror is read-only"))
		return
	}
	rw := newResponseWriter(m, w, r)
	if err := rewrite.MapRequest(m.projects, &rw.x, path, r.URL.RawPath, r.URL.RawQuery); err != nil {
		writeError(w, err)
		return
	}
	if rw.x.Route.Kind == rewrite.KindUpload && isFormBody(r) {
		writeError(w, unsupportedMediaType("an upload's body must not be a form: the registry would read mount, from, digest and _state from it"))
		return
	}
	if rw.x.Route.Kind != rewrite.KindManifest && rw.x.Route.Kind != rewrite.KindBlob {
		// A tags/list document is rewritten, and a page's Link is rewritten even if the body
		// comes before the header. Manifests and blobs stream through Traefik's writer directly.
		rw.document = r.Method == http.MethodGet && rw.x.Route.Kind == rewrite.KindTags
		takeBody(rw)
	}
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.RequestURI = rw.x.Path, "", rw.x.RawQuery, rw.x.RequestURI
	if rw.x.Route.Kind == rewrite.KindCatalog && r.Method == http.MethodGet {
		forwardCatalog(m, rw, r)
		return
	}
	m.next.ServeHTTP(rw, r)
	if rw.body != nil {
		finish(rw)
	}
}

// tokenPullPath forwards a token request that MapTokenPull maps, and hands any other to
// generalTokenPath.
func tokenPullPath(m *Mirror, w http.ResponseWriter, r *http.Request) {
	if len(r.RequestURI) > rewrite.MaxRequestTarget {
		writeError(w, rewrite.TargetTooLong())
		return
	}
	if r.Method == http.MethodGet {
		if query := rewrite.MapTokenPull(m.projects, r.URL.RawQuery); query != "" {
			u := r.URL
			u.Path = m.tokenPath
			u.RawPath = ""
			u.RawQuery = query
			r.RequestURI = m.tokenPath + "?" + query
			m.next.ServeHTTP(w, r)
			return
		}
	}
	generalTokenPath(m, w, r)
}

// generalTokenPath maps any token request: several scopes, a login's account, the OAuth2 POST.
func generalTokenPath(m *Mirror, w http.ResponseWriter, r *http.Request) {
	query, project, err := rewrite.MapTokenRequest(m.projects, r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if err := mapTokenForm(r, project); err != nil {
			writeError(w, err)
			return
		}
	default:
		writeError(w, rewrite.MethodNotAllowed("the token endpoint takes GET and POST"))
		return
	}
	// URL and RequestURI in step: Traefik's proxy rebuilds the outgoing target from RequestURI.
	r.URL.Path = m.tokenPath
	r.URL.RawPath = ""
	r.URL.RawQuery = query
	r.RequestURI = r.URL.RequestURI()
	m.next.ServeHTTP(w, r)
}

// isFormBody says whether the registry behind Harbor would read form values from the request's
// body: Go's Request.FormValue, which distribution's upload handler uses for mount, from, digest
// and _state, parses the body of a POST, PUT or PATCH of these media types, and its values win
// over the query's, which the plugin maps and Harbor's permission check reads. Go reads the first
// Content-Type only, and takes its media type even when its parameters are malformed; so does
// this check (a loop over every value would let 1 MiB of headers cost milliseconds under Yaegi).
func isFormBody(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return false
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType == "application/x-www-form-urlencoded" || mediaType == "multipart/form-data"
}

func unsupportedMediaType(detail string) *rewrite.Error {
	return &rewrite.Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED", Message: "unsupported media type", Detail: detail}
}

// mapTokenForm maps the scopes of an OAuth2 token request body (RFC 6749 form).
func mapTokenForm(r *http.Request, project *rewrite.Project) *rewrite.Error {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return unsupportedMediaType("a POST token request must be application/x-www-form-urlencoded")
	}
	// The plugin maps the form's scopes as it reads them: an encoded form would pass unmapped.
	if codings := r.Header["Content-Encoding"]; len(codings) > 1 || len(codings) == 1 && !strings.EqualFold(strings.TrimSpace(codings[0]), "identity") {
		return unsupportedMediaType("a POST token request must not be content-encoded")
	}
	form, err := io.ReadAll(io.LimitReader(r.Body, rewrite.MaxTokenForm+1))
	_ = r.Body.Close()
	if err != nil {
		return rewrite.BadRequest("reading the token form: " + err.Error())
	}
	if len(form) > rewrite.MaxTokenForm {
		return rewrite.TooLarge("the token form is limited to " + strconv.Itoa(rewrite.MaxTokenForm) + " bytes")
	}
	mapped, e := rewrite.MapTokenForm(string(form), project)
	if e != nil {
		return e
	}
	r.Body = io.NopCloser(strings.NewReader(mapped))
	r.ContentLength = int64(len(mapped))
	r.Header.Set("Content-Length", strconv.Itoa(len(mapped)))
	// No new GetBody: Traefik's proxy does not replay bodies and a stale one would resend the
	// unmapped form. Yaegi (correctness): an interpreted closure handed to compiled code races.
	r.GetBody = nil
	return nil
}
