package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// Answers of Harbor's that the plugin must rewrite or refuse (issue #13: encoded and untyped
// documents, challenge lists, origin-fix-only realms), scripted by a front between real Traefik
// and the fake Harbor: the front answers the paths of its table, as Harbor receives them, and
// passes every other request on to Harbor.
type hostileAnswer struct {
	status int
	header map[string][]string // a nil value removes the header (Go's server would set one)
	body   []byte
}

// hostileFront starts the front and returns its URL.
func hostileFront(t *testing.T, harborURL string, answers map[string]hostileAnswer) string {
	t.Helper()
	target, err := url.Parse(harborURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			proxy.ServeHTTP(w, r)
			return
		}
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// hostileUpstreamCase is a request through Traefik and what the client must get.
type hostileUpstreamCase struct {
	name, target string
	status       int
	header       map[string]string // "" means absent
	body         string            // the client's body must equal it ("" = not checked)
	notInBody    []string
}

func runHostileUpstream(t *testing.T, settings map[string]any, answers map[string]hostileAnswer, cases []hostileUpstreamCase) {
	m := faultStart(t, faultOptions{Settings: settings, Front: func(t *testing.T, harborURL string) string {
		return hostileFront(t, harborURL, answers)
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			request := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n", c.target, m.Host)
			resp, body, err := hostileSend(m.Host, []byte(request), "GET")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d (%.300q)", resp.StatusCode, c.status, body)
			}
			for k, want := range c.header {
				want = strings.ReplaceAll(want, "{host}", m.Host)
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s:\n got %q\nwant %q", k, got, want)
				}
			}
			if c.body != "" && string(body) != c.body {
				t.Errorf("body %.300q, want %q", body, c.body)
			}
			for _, s := range c.notInBody {
				if strings.Contains(string(body), s) {
					t.Errorf("body %.300q names %q", body, s)
				}
			}
		})
	}
}

func TestHostileUpstreamAnswers(t *testing.T) {
	gzipJSON := func(status int, doc string, extra ...string) hostileAnswer {
		h := map[string][]string{"Content-Type": {"application/json; charset=utf-8"}, "Content-Encoding": {"gzip"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = []string{extra[i+1]}
		}
		return hostileAnswer{status: status, header: h, body: hostileGzip(doc)}
	}
	catalog := `{"repositories":["hub/library/hello","team/secret","ghcr/owner/app"]}`
	answers := map[string]hostileAnswer{
		"/v2/hub/team/chal/manifests/latest": {status: 401, header: map[string][]string{"Www-Authenticate": {
			`Negotiate YWJjZA==, Bearer realm="http://harbor-core:8080/service/token",service="harbor-registry",scope="repository:hub/team/chal:pull", Basic realm="harbor"`}}},
		"/v2/hub/team/gz/tags/list": gzipJSON(200, `{"name":"hub/team/gz","tags":["v1"]}`),
		"/v2/hub/team/gz401/manifests/latest": gzipJSON(401, `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/team/gz401, action: pull"}]}`,
			"Www-Authenticate", `Bearer realm="http://harbor-core:8080/service/token",service="harbor-registry",scope="repository:hub/team/gz401:pull"`),
		"/v2/hub/team/br/tags/list": {status: 200, header: map[string][]string{"Content-Type": {"application/json"}, "Content-Encoding": {"br"}}, body: []byte(`{"name":"hub/team/br","tags":[]}`)},
		"/v2/_catalog":              gzipJSON(200, catalog),
	}
	runHostileUpstream(t, defaultSettings(), answers, []hostileUpstreamCase{
		{name: "challenge list with a token68 challenge", target: "/v2/team/chal/manifests/latest", status: 401,
			header: map[string]string{"Www-Authenticate": `Negotiate YWJjZA==, Bearer realm="http://{host}/service/token",service="harbor-registry",scope="repository:team/chal:pull", Basic realm="harbor"`}},
		{name: "gzip tags/list", target: "/v2/team/gz/tags/list", status: 200, header: map[string]string{"Content-Encoding": ""},
			body: `{"name":"team/gz","tags":["v1"]}`},
		{name: "gzip error document of a pull's 401", target: "/v2/team/gz401/manifests/latest", status: 401, header: map[string]string{"Content-Encoding": ""},
			body: `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: team/gz401, action: pull"}]}`},
		{name: "brotli tags/list refused", target: "/v2/team/br/tags/list", status: 502, notInBody: []string{"hub/"}},
		{name: "gzip catalog refused", target: "/v2/_catalog", status: 502, notInBody: []string{"hub/", "team/secret", "owner/app"}},
	})
}

func TestHostileUpstreamUntypedCatalog(t *testing.T) {
	catalog := []byte(`{"repositories":["hub/library/hello","team/secret"]}`)
	for name, contentType := range map[string][]string{"without Content-Type": nil, "Application/JSON": {"Application/JSON"}} {
		t.Run(name, func(t *testing.T) {
			answers := map[string]hostileAnswer{"/v2/_catalog": {status: 200, header: map[string][]string{"Content-Type": contentType}, body: catalog}}
			runHostileUpstream(t, defaultSettings(), answers, []hostileUpstreamCase{
				{name: "catalog filtered", target: "/v2/_catalog", status: 200, body: `{"repositories":["library/hello"]}` + "\n"},
			})
		})
	}
}

// Origin-fix-only mode moves only a realm on this host: an external token service stays.
func TestHostileUpstreamOriginOnlyRealm(t *testing.T) {
	answers := map[string]hostileAnswer{
		"/v2/":                          {status: 401, header: map[string][]string{"Www-Authenticate": {`Bearer realm="https://auth.example.org/token",service="harbor-registry"`}}},
		"/v2/team/app/manifests/latest": {status: 401, header: map[string][]string{"Www-Authenticate": {`Negotiate YWJjZA==, Bearer realm="/service/token",service="harbor-registry"`}}},
	}
	// No project and no registries: origin-fix-only (one setting, as Traefik refuses an empty plugin block).
	runHostileUpstream(t, map[string]any{"registryOnly": "false"}, answers, []hostileUpstreamCase{
		{name: "realm on another host", target: "/v2/", status: 401,
			header: map[string]string{"Www-Authenticate": `Bearer realm="https://auth.example.org/token",service="harbor-registry"`}},
		{name: "relative realm in a list", target: "/v2/team/app/manifests/latest", status: 401,
			header: map[string]string{"Www-Authenticate": `Negotiate YWJjZA==, Bearer realm="http://{host}/service/token",service="harbor-registry"`}},
	})
}
