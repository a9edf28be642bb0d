package yaegitest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	harbormirror "github.com/harbormirror/harbormirror"
	"github.com/mitchellh/mapstructure"
)

// exchange is one request through the plugin to a scripted Harbor and back. The same table runs
// compiled and under Yaegi.
type exchange struct {
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

const (
	digest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	realmIn = `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry"`
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

var exchanges = []exchange{
	{name: "ping forwarded, realm on the public https origin",
		method: "GET", target: "/v2/", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn}},
		forwarded: "/v2/", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="https://mirror.example.com/service/token",service="harbor-registry"`}},
	{name: "/v2 without slash", method: "GET", target: "/v2", forwarded: "/v2", status: 200},
	{name: "manifest HEAD mapped, challenge scope loses the project",
		method: "HEAD", target: "/v2/library/hello/manifests/latest", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="https://mirror.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "one-component name gets library/ and Harbor's 301 reads back",
		method: "GET", target: "/v2/hello/manifests/latest",
		harborStatus: 301, harborHeader: http.Header{"Location": {"/v2/hub/library/hello/manifests/latest"}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 301,
		header2: map[string]string{"Location": "/v2/library/hello/manifests/latest"}},
	{name: "libraryPrefix off", settings: map[string]interface{}{"project": "hub", "libraryPrefix": "false"},
		method: "GET", target: "/v2/hello/manifests/latest", forwarded: "/v2/hub/hello/manifests/latest", status: 200},
	{name: "containerd ns=docker.io: ns dropped, carried in the realm",
		method: "HEAD", target: "/v2/library/hello/manifests/latest?ns=docker.io",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="http://mirror.example.com/service/token?ns=docker.io",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "containerd ns=ghcr.io routed to its project",
		settings: map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr.io": "ghcr"}},
		method:   "GET", target: "/v2/owner/app/blobs/" + digest + "?ns=ghcr.io",
		forwarded: "/v2/ghcr/owner/app/blobs/" + digest, status: 200},
	{name: "registries from Docker labels arrive nested",
		settings: map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr": map[string]interface{}{"io": "ghcr"}}},
		method:   "GET", target: "/v2/owner/app/manifests/v1?ns=ghcr.io", forwarded: "/v2/ghcr/owner/app/manifests/v1", status: 200},
	{name: "unlisted ns is unknown and never reaches Harbor",
		method: "GET", target: "/v2/owner/app/manifests/v1?ns=quay.io",
		status: 404, header2: registryErrorHeaders, bodyHas: `"code":"NAME_UNKNOWN"`},
	{name: "token GET: scopes mapped, other parameters kept",
		method: "GET", target: "/service/token?account=alice&scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
		forwarded: "/service/token?account=alice&scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry", status: 200},
	{name: "token GET with the ns marker of the realm",
		settings: map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr.io": "ghcr"}},
		method:   "GET", target: "/service/token?ns=ghcr.io&scope=repository%3Aowner%2Fapp%3Apull&service=harbor-registry",
		forwarded: "/service/token?scope=repository%3Aghcr%2Fowner%2Fapp%3Apull&service=harbor-registry", status: 200},
	{name: "token POST form: scopes mapped, Content-Length right",
		method: "POST", target: "/service/token", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		body:      "grant_type=password&username=alice&password=s3cret&service=harbor-registry&scope=repository%3Alibrary%2Fhello%3Apull",
		forwarded: "/service/token", forwardedBody: "grant_type=password&username=alice&password=s3cret&service=harbor-registry&scope=repository%3Ahub%2Flibrary%2Fhello%3Apull",
		status: 200},
	{name: "token POST over the limit", method: "POST", target: "/service/token",
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "scope=" + strings.Repeat("a", tokenFormLimit),
		status: 413, header2: registryErrorHeaders, bodyHas: `"code":"SIZE_INVALID"`},
	{name: "token POST that is not a form", method: "POST", target: "/service/token",
		header: map[string]string{"Content-Type": "application/json"}, body: `{"scope":"repository:other/x:pull"}`,
		status: 415, header2: registryErrorHeaders},
	{name: "token DELETE", method: "DELETE", target: "/service/token", status: 405, header2: registryErrorHeaders},
	{name: "token scope naming another project stays inside",
		method: "GET", target: "/service/token?scope=repository%3A..%2Fother%2Fx%3Apull&service=harbor-registry",
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"NAME_INVALID"`},
	{name: "upload with mount: from= mapped, http Location fixed behind TLS offloading",
		method: "POST", target: "/v2/team/app/blobs/uploads/?mount=" + digest + "&from=team%2Fbase", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 202, harborHeader: http.Header{"Location": {"http://mirror.example.com/v2/hub/team/app/blobs/uploads/u-1?_state=abc%3D"}},
		forwarded: "/v2/hub/team/app/blobs/uploads/?mount=" + digest + "&from=hub%2Fteam%2Fbase", status: 202,
		header2: map[string]string{"Location": "https://mirror.example.com/v2/team/app/blobs/uploads/u-1?_state=abc%3D"}},
	{name: "upload PUT keeps _state and digest",
		method: "PUT", target: "/v2/team/app/blobs/uploads/u-1?_state=abc%3D&digest=" + digest, body: "layer",
		forwarded: "/v2/hub/team/app/blobs/uploads/u-1?_state=abc%3D&digest=" + digest, forwardedBody: "layer", status: 200},
	{name: "object-storage redirect untouched",
		method: "GET", target: "/v2/library/hello/blobs/" + digest,
		harborStatus: 307, harborHeader: http.Header{"Location": {"https://s3.example.com/b/docker/registry/v2/blobs/x?sig=1"}},
		forwarded: "/v2/hub/library/hello/blobs/" + digest, status: 307,
		header2: map[string]string{"Location": "https://s3.example.com/b/docker/registry/v2/blobs/x?sig=1"}},
	{name: "several challenge values all rewritten",
		method: "GET", target: "/v2/library/hello/manifests/latest", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Basic realm="harbor"`, realmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Basic realm="harbor"`}},
	{name: "Basic challenge left alone",
		method: "GET", target: "/v2/_catalog",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Basic realm="harbor"`}},
		forwarded: "/v2/_catalog", status: 401, header2: map[string]string{"Www-Authenticate": `Basic realm="harbor"`}},
	{name: "tags/list: name is the client's, Link loses the project",
		method: "GET", target: "/v2/hello/tags/list?n=1",
		harborStatus: 200, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Content-Length": {"48"},
			"Link": {`</v2/hub/library/hello/tags/list?last=v1&n=1>; rel="next"`}},
		harborBody: `{"name":"hub/library/hello","tags":["latest","v1"]}`,
		forwarded:  "/v2/hub/library/hello/tags/list?n=1", status: 200,
		header2: map[string]string{"Link": `</v2/library/hello/tags/list?last=v1&n=1>; rel="next"`,
			"Content-Length": strconv.Itoa(len(`{"name":"hello","tags":["latest","v1"]}`))},
		bodyHas: `{"name":"hello","tags":["latest","v1"]}`},
	{name: "catalog lists only the project, without its prefix",
		method: "GET", target: "/v2/_catalog?n=3",
		harborStatus: 200, harborHeader: http.Header{"Content-Type": {"application/json"},
			"Link": {`</v2/_catalog?last=hub%2Fteam%2Fapp&n=3>; rel="next"`}},
		harborBody: `{"repositories":["hub/library/hello","hub/team/app","hub0/x"]}`,
		forwarded:  "/v2/_catalog", status: 200,
		header2: map[string]string{"Link": ""},
		bodyHas: `{"repositories":["library/hello","team/app"]}`},
	{name: "encoded slash refused before Harbor",
		method: "GET", target: "/v2/a%2Fb/manifests/latest", status: 400, header2: registryErrorHeaders},
	{name: "dot segments refused", method: "GET", target: "/v2/../other/x/manifests/latest", status: 400, header2: registryErrorHeaders},
	{name: "semicolon in the query refused", method: "GET", target: "/v2/x/manifests/latest?a=b;ns=ghcr.io", status: 400},
	{name: "unknown endpoint", method: "GET", target: "/v2/x/unknown", status: 404, header2: registryErrorHeaders},
	{name: "hostile Host header is never echoed into a realm",
		method: "GET", target: "/v2/", host: `evil.com"injected`,
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn}}, harborBody: "harbor's body",
		forwarded: "/v2/", status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "publicURL wins over Host",
		settings: map[string]interface{}{"project": "hub", "publicURL": "https://dockerhub.example.com"},
		method:   "GET", target: "/v2/", host: "internal:8080",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn}},
		forwarded: "/v2/", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="https://dockerhub.example.com/service/token",service="harbor-registry"`}},
	{name: "readOnly refuses a push", settings: map[string]interface{}{"project": "hub", "readOnly": "true"},
		method: "PUT", target: "/v2/team/app/manifests/v1", status: 405, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "readOnly lets a pull through", settings: map[string]interface{}{"project": "hub", "readOnly": true},
		method: "GET", target: "/v2/team/app/manifests/v1", forwarded: "/v2/hub/team/app/manifests/v1", status: 200},
	{name: "registryOnly hides Harbor's UI", method: "GET", target: "/harbor/projects", status: 404, header2: registryErrorHeaders},
	{name: "registryOnly off passes other paths untouched", settings: map[string]interface{}{"project": "hub", "registryOnly": "false"},
		method: "GET", target: "/api/v2.0/projects?q=a%2Fb", forwarded: "/api/v2.0/projects?q=a%2Fb", status: 200},
	{name: "mirrorPath: Docker >= 25 path form mapped",
		settings: map[string]interface{}{"project": "hub", "mirrorPath": "/hub"},
		method:   "HEAD", target: "/hub/v2/library/hello/manifests/latest",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="http://mirror.example.com/hub/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "mirrorPath: token path under it",
		settings: map[string]interface{}{"project": "hub", "mirrorPath": "/hub"},
		method:   "GET", target: "/hub/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
		forwarded: "/service/token?scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry", status: 200},
	{name: "mirrorPath: upload Location gets the path back",
		settings: map[string]interface{}{"project": "hub", "mirrorPath": "/hub"},
		method:   "POST", target: "/hub/v2/team/app/blobs/uploads/",
		harborStatus: 202, harborHeader: http.Header{"Location": {"/v2/hub/team/app/blobs/uploads/u-1"}},
		forwarded: "/v2/hub/team/app/blobs/uploads/", status: 202,
		header2: map[string]string{"Location": "/hub/v2/team/app/blobs/uploads/u-1"}},
	{name: "mirrorPath: Harbor's own registry paths pass byte for byte",
		settings: map[string]interface{}{"project": "hub", "mirrorPath": "/hub"},
		method:   "GET", target: "/v2/team/app/manifests/v1?x=%2F",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn + `,scope="repository:team/app:pull"`}},
		forwarded: "/v2/team/app/manifests/v1?x=%2F", status: 401,
		header2: map[string]string{"Www-Authenticate": realmIn + `,scope="repository:team/app:pull"`}},
	{name: "mirrorPath: a longer first segment is not the mirror",
		settings: map[string]interface{}{"project": "hub", "mirrorPath": "/hub"},
		method:   "GET", target: "/hubble/v2/x/manifests/latest", forwarded: "/hubble/v2/x/manifests/latest", status: 200},
	{name: "origin-fix-only: upload Location gets https, path kept",
		settings: map[string]interface{}{}, host: "harbor.example.com",
		method: "POST", target: "/v2/team/app/blobs/uploads/", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 202, harborHeader: http.Header{"Location": {"http://harbor.example.com/v2/team/app/blobs/uploads/u-1?_state=x"}},
		forwarded: "/v2/team/app/blobs/uploads/", status: 202,
		header2: map[string]string{"Location": "https://harbor.example.com/v2/team/app/blobs/uploads/u-1?_state=x"}},
	{name: "origin-fix-only: realm scheme fixed, scope kept",
		settings: map[string]interface{}{}, host: "harbor.example.com",
		method: "GET", target: "/v2/team/app/manifests/v1", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Bearer realm="http://harbor.example.com/service/token",service="harbor-registry",scope="repository:team/app:pull"`}},
		forwarded: "/v2/team/app/manifests/v1", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:team/app:pull"`}},
	{name: "origin-fix-only: UI passes", settings: map[string]interface{}{},
		method: "GET", target: "/harbor/projects", forwarded: "/harbor/projects", status: 200},
	{name: "Harbor's own errors pass through, named without the project",
		method: "GET", target: "/v2/nope/manifests/latest",
		harborStatus: 404, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(harborNotFound))}},
		harborBody: harborNotFound,
		forwarded:  "/v2/hub/library/nope/manifests/latest", status: 404,
		header2: map[string]string{"Content-Length": strconv.Itoa(len(clientLibraryNotFound))},
		bodyHas: clientLibraryNotFound},
	{name: "a 401 detail loses the project",
		method: "GET", target: "/v2/library/hello/manifests/latest",
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Content-Length": {"148"},
			"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`}},
		harborBody: `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"hub/library/hello","Action":"pull"}]}]}`,
		forwarded:  "/v2/hub/library/hello/manifests/latest", status: 401,
		bodyHas: `"Name":"library/hello"`},
	{name: "Harbor's 401 to a pull: challenge and error document named for the client, Content-Length right",
		method: "GET", target: "/v2/library/hello/manifests/latest?ns=docker.io", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Content-Length": {strconv.Itoa(len(harborUnauthorized))},
			"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull",error="invalid_token"`}},
		harborBody: harborUnauthorized,
		forwarded:  "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{
			"Www-Authenticate": `Bearer realm="https://mirror.example.com/service/token?ns=docker.io",service="harbor-registry",scope="repository:library/hello:pull",error="invalid_token"`,
			"Content-Length":   strconv.Itoa(len(clientUnauthorized)), "Content-Type": "application/json; charset=utf-8"},
		bodyHas: clientUnauthorized},
	{name: "Harbor's 404 to a pull: the error document names the repository as the client did",
		method: "GET", target: "/v2/library/nope/manifests/latest?ns=docker.io",
		harborStatus: 404, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(harborNotFound))}},
		harborBody: harborNotFound,
		forwarded:  "/v2/hub/library/nope/manifests/latest", status: 404,
		header2: map[string]string{"Content-Length": strconv.Itoa(len(clientLibraryNotFound))},
		bodyHas: clientLibraryNotFound},
	{name: "Harbor's 401 to a pull with publicURL",
		settings: map[string]interface{}{"project": "hub", "publicURL": "https://dockerhub.example.com"},
		method:   "HEAD", target: "/v2/library/hello/manifests/latest", host: "internal:8080",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="https://dockerhub.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "Harbor's 401 to a pull on a hostile Host is refused, not echoed",
		method: "GET", target: "/v2/library/hello/manifests/latest", host: `evil.com"injected`,
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`}}, harborBody: "harbor's body",
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
}

// Harbor's error document of a 401 to an anonymous pull, and as the client must see it.
const (
	harborUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/library/hello, action: pull: unauthorized to access repository: hub/library/hello, action: pull"}]}` + "\n"
	clientUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: library/hello, action: pull: unauthorized to access repository: library/hello, action: pull"}]}` + "\n"
)

// build makes the middleware from settings the way Traefik does; compiled here, interpreted by
// Yaegi in yaegi_test.go.
type build func(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error)

func buildCompiled(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	cfg := harbormirror.CreateConfig()
	if err := decodeSettings(settings, cfg); err != nil {
		return nil, err
	}
	return harbormirror.New(context.Background(), next, cfg, "test")
}

// decodeSettings decodes plugin settings into a config exactly as Traefik v3.6's plugin loader.
func decodeSettings(settings map[string]interface{}, result interface{}) error {
	if len(settings) == 0 {
		return nil
	}
	decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           result,
	})
	if err != nil {
		return err
	}
	return decoder.Decode(settings)
}

// harborStub answers as the exchange says and records what reached it.
type harborStub struct {
	reached     bool
	requestURI  string
	body        string
	contentLen  int64
	consistency string
}

func (e exchange) harbor(seen *harborStub) http.Handler {
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

func runExchanges(t *testing.T, build build) { runExchangeTable(t, build, exchanges) }

// runExchangeTable runs a table of exchanges; the tables of other files run through it too.
func runExchangeTable(t *testing.T, build build, table []exchange) {
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

func TestExchanges(t *testing.T) { runExchanges(t, buildCompiled) }

// configErrors are settings New must refuse, with the key named in the error.
var configErrors = []struct {
	settings map[string]interface{}
	key      string
}{
	{map[string]interface{}{"project": "Hub"}, "project"},
	{map[string]interface{}{"project": "hub/x"}, "project"},
	{map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr.io": "Bad Project"}}, "registries.ghcr.io"},
	{map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr io": "ghcr"}}, "registries"},
	{map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr.io": 3}}, "registries.ghcr.io"},
	{map[string]interface{}{"project": "hub", "mirrorPath": "/v2"}, "mirrorPath"},
	{map[string]interface{}{"project": "hub", "mirrorPath": "hub"}, "mirrorPath"},
	{map[string]interface{}{"mirrorPath": "/hub"}, "mirrorPath"},
	{map[string]interface{}{"project": "hub", "tokenPath": "token"}, "tokenPath"},
	{map[string]interface{}{"project": "hub", "publicURL": "dockerhub.example.com"}, "publicURL"},
	{map[string]interface{}{"project": "hub", "publicURL": "https://dockerhub.example.com/hub"}, "publicURL"},
	{map[string]interface{}{"project": "hub", "mirrorPth": "/hub"}, "unknown settings mirrorPth"},
	{map[string]interface{}{"project": "hub", "readOnly": "maybe"}, "readOnly"},
	{map[string]interface{}{"project": "hub", "registries": "ghcr.io=ghcr"}, "registries"},
	// Traefik's decoder would match these without regard to case; the plugin names the spelling.
	{map[string]interface{}{"project": "hub", "readonly": true}, "readonly: no such option; did you mean readOnly?"},
	{map[string]interface{}{"Project": "hub"}, "Project: no such option; did you mean project?"},
	{map[string]interface{}{"project": "hub", "PUBLICURL": "https://mirror.example.com"}, "did you mean publicURL?"},
	{map[string]interface{}{"project": "hub", "readOnly": true, "readonly": false}, "did you mean readOnly?"},
}

func runConfigErrors(t *testing.T, build build) {
	for _, c := range configErrors {
		_, err := build(t, c.settings, http.NotFoundHandler())
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("settings %v: error %v, want one naming %s", c.settings, err, c.key)
		}
	}
}

func TestConfigErrors(t *testing.T) { runConfigErrors(t, buildCompiled) }

func TestDefaults(t *testing.T) {
	c, err := harbormirror.CreateConfig().Options()
	if err != nil || !c.LibraryPrefix || !c.RegistryOnly || c.TokenPath != "/service/token" || c.ReadOnly || c.Project != "" {
		t.Errorf("defaults %+v, %v", c, err)
	}
}

// Each option spelt exactly takes the value Traefik's providers deliver: strings from the file
// provider and Docker labels, typed values from a CRD; a nil (empty YAML key) keeps the default.
func TestOptionsAsDelivered(t *testing.T) {
	for _, settings := range []map[string]interface{}{
		{"project": "hub", "readOnly": "true", "libraryPrefix": "false", "registryOnly": "0", "mirrorPath": "/hub", "tokenPath": "/t", "publicURL": "https://m.example.com", "registries": map[string]interface{}{"docker": map[string]interface{}{"io": "hub"}}},
		{"project": "hub", "readOnly": true, "libraryPrefix": false, "registryOnly": false, "mirrorPath": "/hub", "tokenPath": "/t", "publicURL": "https://m.example.com", "registries": map[string]interface{}{"docker.io": "hub"}},
	} {
		cfg := harbormirror.CreateConfig()
		if err := decodeSettings(settings, cfg); err != nil {
			t.Fatal(err)
		}
		o, err := cfg.Options()
		want := harbormirror.Options{Project: "hub", Registries: map[string]string{"docker.io": "hub"}, MirrorPath: "/hub", TokenPath: "/t", PublicURL: "https://m.example.com", ReadOnly: true}
		if err != nil || !reflect.DeepEqual(o, want) {
			t.Errorf("settings %v: options %+v, %v; want %+v", settings, o, err, want)
		}
	}
	cfg := &harbormirror.Config{Settings: map[string]interface{}{"tokenPath": nil}}
	if o, err := cfg.Options(); err != nil || o.TokenPath != "/service/token" {
		t.Errorf("tokenPath nil: %+v, %v; want the default", o, err)
	}
}

// A response without Content-Length is flushed as it streams (see bodyWriter): each chunk has
// reached the client before the next is written. Harbor's side calls WriteHeader first, as
// Traefik's proxy always does.
func runStreaming(t *testing.T, build build) {
	rec := httptest.NewRecorder()
	handler, err := build(t, map[string]interface{}{"project": "hub"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for _, chunk := range []string{"one,", "two"} {
			rec.Flushed = false
			_, _ = io.WriteString(w, chunk)
			if !rec.Flushed {
				t.Errorf("chunk %q not flushed", chunk)
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/library/hello/blobs/"+digest, nil))
	if rec.Body.String() != "one,two" {
		t.Errorf("body %q, want the stream unchanged", rec.Body)
	}
}

// A list page whose body is written before its header (an implicit 200) still has its Link
// rewritten: only manifests and blobs go straight to Traefik's writer.
func runBodyBeforeHeader(t *testing.T, build build) {
	handler, err := build(t, map[string]interface{}{"project": "hub"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `</v2/hub/library/hello/tags/list?last=v1&n=1>; rel="next"`)
		_, _ = io.WriteString(w, "{}")
	}))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/library/hello/tags/list?n=1", nil))
	if got, want := rec.Header().Get("Link"), `</v2/library/hello/tags/list?last=v1&n=1>; rel="next"`; got != want {
		t.Errorf("Link %q, want %q", got, want)
	}
}

func TestStreaming(t *testing.T)        { runStreaming(t, buildCompiled) }
func TestBodyBeforeHeader(t *testing.T) { runBodyBeforeHeader(t, buildCompiled) }

// The second challenge value of "several challenge values all rewritten", which header2 (first
// value only) cannot see.
func TestSecondChallengeValue(t *testing.T) {
	for name, build := range map[string]build{"compiled": buildCompiled, "yaegi": buildYaegi} {
		harbor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Www-Authenticate"] = []string{`Basic realm="harbor"`, realmIn + `,scope="repository:hub/library/hello:pull"`}
			w.WriteHeader(http.StatusUnauthorized)
		})
		handler, err := build(t, map[string]interface{}{"project": "hub"}, harbor)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v2/library/hello/manifests/latest", nil)
		req.Host = "mirror.example.com"
		handler.ServeHTTP(rec, req)
		want := []string{`Basic realm="harbor"`, `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}
		if got := rec.Header()["Www-Authenticate"]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s: Www-Authenticate %q, want %q", name, got, want)
		}
	}
}

// One middleware instance serves concurrent requests of every kind; run with -race.
func runConcurrent(t *testing.T, build build) {
	var mu sync.Mutex
	var seen []string
	harbor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Www-Authenticate", realmIn+`,scope="repository:hub/library/hello:pull"`)
		w.Header().Set("Location", "/v2/hub/library/hello/blobs/uploads/u")
		w.WriteHeader(http.StatusUnauthorized)
	})
	handler, err := build(t, map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr.io": "ghcr"}}, harbor)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{
		"/v2/hello/manifests/latest":                 "/v2/hub/library/hello/manifests/latest",
		"/v2/owner/app/manifests/v1?ns=ghcr.io":      "/v2/ghcr/owner/app/manifests/v1",
		"/v2/library/hello/blobs/" + digest:          "/v2/hub/library/hello/blobs/" + digest,
		"/service/token?scope=repository%3Ax%3Apull": "/service/token?scope=repository%3Ahub%2Flibrary%2Fx%3Apull",
	}
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				for target := range targets {
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
					if strings.HasPrefix(target, "/v2/") && !strings.Contains(rec.Header().Get("Www-Authenticate"), "scope=\"repository:") {
						errs <- "challenge not rewritten for " + target
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 8*25*len(targets) {
		t.Fatalf("%d requests reached Harbor, want %d", len(seen), 8*25*len(targets))
	}
	want := map[string]bool{}
	for _, v := range targets {
		want[v] = true
	}
	for _, uri := range seen {
		if !want[uri] {
			t.Fatalf("Harbor got %s", uri)
		}
	}
}

func TestConcurrent(t *testing.T)      { runConcurrent(t, buildCompiled) }
func TestYaegiConcurrent(t *testing.T) { runConcurrent(t, buildYaegi) }
