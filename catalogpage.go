package harbormirror

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// forwardCatalog asks Harbor for its whole catalog, with no query of the client's, and answers the
// client's page of the project's repositories itself (rewrite.CatalogPage). The catalog is
// confined by construction: no parameter of the client's reaches Harbor, and Harbor's 200 never
// reaches the client; only the page built from it does, or an error when it cannot be read.
// Any other answer (Harbor's 401 to all but admins) takes the general response rules.
func forwardCatalog(m *Mirror, rw *responseWriter, r *http.Request) {
	held := &heldResponse{header: http.Header{}, length: -1, m: m, rw: rw}
	m.next.ServeHTTP(held, r)
	if !held.answered {
		answerCatalog(held)
	}
}

// answerCatalog answers from Harbor's held answer: inside Harbor's last Write when it declared
// its length (so that Traefik's access log sees the answer, see bodyWriter), else afterwards.
func answerCatalog(held *heldResponse) {
	held.answered = true
	rw := held.rw
	if held.status != http.StatusOK && held.status != 0 {
		replay(rw, held)
		return
	}
	body, link, err := catalogPage(held.m, rw, held)
	if err != nil {
		writeError(rw.out, err)
		return
	}
	h := rw.out.Header()
	for k, v := range held.header {
		h[k] = v
	}
	h.Del("Content-Encoding")
	h.Del("Link")
	h.Del("Etag")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if link != "" {
		h.Set("Link", link)
	}
	rw.out.WriteHeader(http.StatusOK)
	_, _ = rw.out.Write(body)
}

func catalogPage(m *Mirror, rw *responseWriter, held *heldResponse) ([]byte, string, *rewrite.Error) {
	if held.over {
		return nil, "", rewrite.CatalogTooLarge(rewrite.MaxRewrittenBody)
	}
	if encoding := held.header.Get("Content-Encoding"); encoding != "" && encoding != "identity" {
		return nil, "", rewrite.CatalogEncoded(encoding)
	}
	// The client's query, whose n and last pick the page.
	_, query, _ := strings.Cut(rw.in, "?")
	return rewrite.CatalogPage(held.body, rw.x.Project, query, m.mirrorPath)
}

// replay sends a held answer through the general response rules.
func replay(rw *responseWriter, held *heldResponse) {
	h := rw.Header()
	for k, v := range held.header {
		h[k] = v
	}
	rw.WriteHeader(held.status)
	_, _ = rw.Write(held.body)
	if rw.body != nil {
		finish(rw)
	}
}

// heldResponse holds an answer of Harbor's, up to rewrite.MaxRewrittenBody of body, for the plugin to
// answer from.
type heldResponse struct {
	header   http.Header
	status   int
	body     []byte
	over     bool // the body was longer than the limit, and is cut
	length   int  // the declared Content-Length, -1 if none
	answered bool
	m        *Mirror
	rw       *responseWriter
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.status != 0 || code < http.StatusOK {
		return
	}
	h.status = code
	if h.length = declaredLength(h.header); h.length == 0 {
		answerCatalog(h)
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.WriteHeader(http.StatusOK)
	}
	if h.answered {
		return len(p), nil
	}
	if len(h.body)+len(p) > rewrite.MaxRewrittenBody {
		h.over = true
		return len(p), nil
	}
	h.body = append(h.body, p...)
	if len(h.body) == h.length {
		answerCatalog(h)
	}
	return len(p), nil
}
