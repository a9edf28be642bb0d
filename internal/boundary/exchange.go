package boundary

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Exchange is one request through the plugin to a scripted Harbor and back, with what Harbor must
// receive and the client must see. Every table runs compiled and under Yaegi, each with the lanes
// and without them.
type Exchange struct {
	name     string
	settings map[string]interface{} // as Traefik passes them; nil means {project: hub}
	method   string
	target   string // request URI as the client sends it
	host     string // default mirror.example.com
	header   map[string]string
	body     string

	harborStatus int
	harborHeader http.Header
	harborBody   string

	forwarded     string // request URI Harbor must receive; "" means it must not be reached
	forwardedBody string
	status        int
	header2       map[string]string // response headers the client must see ("" means absent)
	bodyHas       string
}

// Digest is a blob's or manifest's digest; RealmIn is Harbor's challenge to a request of the
// registry API, before the plugin rewrites it.
const (
	Digest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	RealmIn = `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry"`
)

const (
	harborNotFound = `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"hub/library/nope:latest"}]}`
	// as a client sees it, whether it named the repository nope or library/nope
	clientLibraryNotFound = `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"library/nope:latest"}]}`
)

// tokenFormLimit is the size of token form the plugin reads (64 KiB, as the README states; the
// plugin's maxTokenForm): a form one byte larger is refused.
const tokenFormLimit = 64 << 10

// documentLimit is the size of tags/list and _catalog document the plugin buffers to rewrite
// (8 MiB, as the README states).
const documentLimit = 8 << 20

var registryErrorHeaders = map[string]string{
	"Content-Type":                    "application/json",
	"Docker-Distribution-API-Version": "registry/2.0",
}

// Harbor's error document of a 401 to an anonymous pull, and as the client must see it.
const (
	HarborUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/library/hello, action: pull: unauthorized to access repository: hub/library/hello, action: pull"}]}` + "\n"
	clientUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: library/hello, action: pull: unauthorized to access repository: library/hello, action: pull"}]}` + "\n"
)

// Build makes the middleware from settings the way Traefik does: compiled or under Yaegi, with
// its lanes or without.
type Build func(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error)

// harborStub answers as the exchange says and records what reached it.
type harborStub struct {
	reached     bool
	requestURI  string
	body        string
	contentLen  int64
	consistency string
}

func (e Exchange) harbor(seen *harborStub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.reached = true
		seen.requestURI = r.RequestURI
		if r.URL.RequestURI() != r.RequestURI {
			seen.consistency = "URL " + r.URL.RequestURI() + " vs RequestURI " + r.RequestURI
		}
		body, _ := io.ReadAll(r.Body)
		seen.body, seen.contentLen = string(body), r.ContentLength
		for k, v := range e.harborHeader {
			w.Header()[k] = append([]string(nil), v...)
		}
		status := e.harborStatus
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, e.harborBody)
	})
}

// RunExchanges runs a table of exchanges through the middleware build makes, each against the
// table's expectations.
func RunExchanges(t *testing.T, build Build, table []Exchange) {
	for _, e := range table {
		t.Run(e.name, func(t *testing.T) {
			settings := e.settings
			if settings == nil {
				settings = map[string]interface{}{"project": "hub"}
			}
			var seen harborStub
			handler, err := build(t, settings, e.harbor(&seen))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			req := httptest.NewRequest(e.method, e.target, strings.NewReader(e.body))
			req.Host = "mirror.example.com"
			if e.host != "" {
				req.Host = e.host
			}
			for k, v := range e.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)

			if e.forwarded == "" && seen.reached {
				t.Errorf("reached Harbor as %s; want it refused", seen.requestURI)
			}
			if e.forwarded != "" {
				switch {
				case !seen.reached:
					t.Errorf("never reached Harbor; answered %d %s", rec.Code, rec.Body)
				case seen.requestURI != e.forwarded:
					t.Errorf("Harbor got %s, want %s", seen.requestURI, e.forwarded)
				case seen.consistency != "":
					t.Errorf("request inconsistent: %s", seen.consistency)
				}
			}
			if e.forwardedBody != "" && (seen.body != e.forwardedBody || seen.contentLen != int64(len(e.forwardedBody))) {
				t.Errorf("Harbor got body %q (Content-Length %d), want %q", seen.body, seen.contentLen, e.forwardedBody)
			}
			if rec.Code != e.status {
				t.Errorf("status %d, want %d (body %s)", rec.Code, e.status, rec.Body)
			}
			for k, want := range e.header2 {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s:\n got %s\nwant %s", k, got, want)
				}
			}
			if !strings.Contains(rec.Body.String(), e.bodyHas) {
				t.Errorf("body %s, want it to contain %s", rec.Body, e.bodyHas)
			}
			if rec.Code >= 400 && (!seen.reached || rec.Code != e.harborStatus) && !strings.HasPrefix(rec.Body.String(), `{"errors":[{`) && e.method != "HEAD" {
				t.Errorf("refusal body %s is not a registry error", rec.Body)
			}
		})
	}
}

// Tables are the exchange tables by name.
var Tables = []struct {
	Name      string
	Exchanges []Exchange
}{
	{"Exchanges", Exchanges},
	{"HostileExchanges", HostileExchanges},
	{"CatalogExchanges", CatalogExchanges},
	{"OwnNameExchanges", OwnNameExchanges},
	{"ReferenceExchanges", ReferenceExchanges},
}

// RunEveryTable runs every exchange table, and the origin capture of origin.go, through the
// middleware build makes.
func RunEveryTable(t *testing.T, build Build) {
	for _, table := range Tables {
		t.Run(table.Name, func(t *testing.T) { RunExchanges(t, build, table.Exchanges) })
	}
	t.Run("OriginCapture", func(t *testing.T) { RunOriginCapture(t, build) })
}
