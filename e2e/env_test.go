// Package e2e runs real registry clients through a real Traefik with harbormirror in front of a
// Harbor-compatible registry. Every scenario asserts the registry's request log, so a client that
// silently fell back to Docker Hub, or a request that reached the wrong project, fails it.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// Users of the private project.
const (
	alice         = "alice"
	alicePassword = "wonderland-7"
)

// mirror is one scenario's world: two upstream registries (Docker Hub and ghcr.io), a fake
// Harbor with a proxy-cache project for each plus a private project, and Traefik with the
// plugin in front of Harbor.
type mirror struct {
	DockerHub, GHCR *harbor.Hub
	Harbor          *harbor.Server
	Traefik         *harness.Traefik
	CA              *harness.TestCA // set with mirrorOptions.TLS
	// Host is the mirror's plain-HTTP host:port; TLSHost the HTTPS one (with TLS).
	Host, TLSHost string
}

type mirrorOptions struct {
	// Settings are the plugin's settings; default: project hub, ghcr.io routed to ghcr.
	Settings map[string]any
	// NoMiddleware routes Traefik straight to Harbor, without the plugin (for baselines).
	NoMiddleware bool
	// TLS gives Traefik a websecure entrypoint with a certificate from a test CA.
	TLS bool
	// AbsoluteHTTPUploadLocations makes Harbor answer uploads with http:// Locations, as behind
	// a TLS-offloading proxy.
	AbsoluteHTTPUploadLocations bool
	// ExternalScheme is Harbor's external URL scheme for its realm (default http).
	ExternalScheme string
	// ExtraStatic is merged into Traefik's static configuration (harness.TraefikConfig).
	ExtraStatic string
}

func defaultSettings() map[string]any {
	return map[string]any{"project": "hub", "registries": map[string]any{"ghcr.io": "ghcr"}}
}

// startMirror starts the scenario world; everything stops when the test ends.
func startMirror(t *testing.T, opts mirrorOptions) *mirror {
	t.Helper()
	m := &mirror{DockerHub: startHub(t), GHCR: startHub(t)}
	var err error
	m.Harbor, err = harbor.Start(harbor.Options{
		Projects: []harbor.Project{
			{Name: "hub", Public: true, ProxyCacheOf: m.DockerHub.URL},
			{Name: "ghcr", Public: true, ProxyCacheOf: m.GHCR.URL},
			{Name: "team", Members: []string{alice}},
		},
		Users:                       map[string]string{alice: alicePassword},
		ExternalScheme:              opts.ExternalScheme,
		AbsoluteHTTPUploadLocations: opts.AbsoluteHTTPUploadLocations,
	})
	if err != nil {
		t.Fatalf("start Harbor: %v", err)
	}
	t.Cleanup(func() { _ = m.Harbor.Close() })

	settings := opts.Settings
	if settings == nil {
		settings = defaultSettings()
	}
	cfg := harness.TraefikConfig{Dynamic: dynamicConfig(m.Harbor.URL, settings, !opts.NoMiddleware), NoPlugin: opts.NoMiddleware, ExtraStatic: opts.ExtraStatic}
	if opts.TLS {
		m.CA = harness.GenerateTestCA(t, "127.0.0.1", "localhost")
		cfg.TLS = m.CA.TLSFiles()
	}
	m.Traefik = harness.StartTraefik(t, cfg)
	m.Host = hostOf(t, m.Traefik.WebURL)
	if opts.TLS {
		m.TLSHost = hostOf(t, m.Traefik.TLSURL)
	}
	if !opts.NoMiddleware {
		requirePluginActive(t, m)
	}
	return m
}

func startHub(t *testing.T) *harbor.Hub {
	t.Helper()
	hub, err := harbor.StartDockerHub()
	if err != nil {
		t.Fatalf("start upstream registry: %v", err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	return hub
}

// dynamicConfig routes everything to Harbor through the plugin (Traefik passes the client's Host
// to Harbor, as by default).
func dynamicConfig(harborURL string, settings map[string]any, withPlugin bool) string {
	return taggedDynamicConfig(harborURL, "", settings, withPlugin)
}

// taggedDynamicConfig is dynamicConfig whose router, with a testID, first sets the request header
// realharbor.TestHeader to it, so that the test finds its own requests in a Harbor shared by tests.
func taggedDynamicConfig(harborURL, testID string, settings map[string]any, withPlugin bool) string {
	var middlewares []string
	if testID != "" {
		middlewares = append(middlewares, "testid")
	}
	if withPlugin {
		middlewares = append(middlewares, "harbormirror")
	}
	var b strings.Builder
	b.WriteString("http:\n  routers:\n    mirror:\n      rule: PathPrefix(`/`)\n      service: harbor\n")
	if len(middlewares) > 0 {
		fmt.Fprintf(&b, "      middlewares: [%s]\n  middlewares:\n", strings.Join(middlewares, ", "))
	}
	if testID != "" {
		fmt.Fprintf(&b, "    testid:\n      headers:\n        customRequestHeaders:\n          %s: %q\n", realharbor.TestHeader, testID)
	}
	if withPlugin {
		b.WriteString("    harbormirror:\n      plugin:\n        harbormirror:\n")
		writeYAML(&b, settings, "          ")
	}
	fmt.Fprintf(&b, "  services:\n    harbor:\n      loadBalancer:\n        servers:\n          - url: %q\n", harborURL)
	return b.String()
}

// writeYAML writes a settings map as YAML, keys sorted, values quoted (as a user would).
func writeYAML(b *strings.Builder, settings map[string]any, indent string) {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := settings[k].(type) {
		case map[string]any:
			fmt.Fprintf(b, "%s%q:\n", indent, k)
			writeYAML(b, v, indent+"  ")
		default:
			fmt.Fprintf(b, "%s%q: %q\n", indent, k, fmt.Sprint(v))
		}
	}
}

// requirePluginActive fails unless the plugin loaded and its middleware serves the router:
// Traefik drops a router whose plugin failed to load and keeps answering, often with 404.
func requirePluginActive(t *testing.T, m *mirror) {
	t.Helper()
	if !strings.Contains(m.Traefik.Log(), harness.LogPluginsLoaded) {
		t.Fatalf("Traefik did not log %q", harness.LogPluginsLoaded)
	}
	routers, err := m.Traefik.Routers()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routers {
		if strings.HasPrefix(r.Name, "mirror@") || strings.Contains(r.Name, "-mirror@") {
			if r.Status != "enabled" || len(r.Middlewares) == 0 {
				t.Fatalf("router %s is %s with middlewares %v (errors %v)", r.Name, r.Status, r.Middlewares, r.Errors)
			}
		}
	}
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// seedDockerHub stores test images in the fake Docker Hub as library/<name>:latest.
func seedDockerHub(t *testing.T, m *mirror, names ...string) {
	t.Helper()
	if err := images.Seed(context.Background(), m.DockerHub, "library", names...); err != nil {
		t.Fatalf("seed Docker Hub: %v", err)
	}
}

// requests returns what Harbor received since the last reset, for assertions.
func requests(m *mirror) []harbor.Request { return m.Harbor.Requests() }

// assertConfined fails when any request reached Harbor outside the allowed projects, or a token
// request asked for a name with a doubled prefix (hub/hub/...), the mark of a leaked challenge.
func assertConfined(t *testing.T, reqs []harbor.Request, allowed ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, p := range allowed {
		ok[p] = true
	}
	for _, r := range reqs {
		if r.Project != "" && !ok[r.Project] {
			t.Errorf("request reached project %q: %s", r.Project, r)
		}
		for _, s := range r.Scopes {
			first, rest, _ := strings.Cut(s.Name, "/")
			if s.Type == "repository" && (!ok[first] || strings.HasPrefix(rest, first+"/")) {
				t.Errorf("token scope %s:%s outside %v: %s", s.Type, s.Name, allowed, r)
			}
		}
	}
}

// assertServed fails unless Harbor answered a GET or HEAD of repository repo with 200 at least
// once: the proof that the client pulled through the mirror rather than around it.
func assertServed(t *testing.T, reqs []harbor.Request, repo string) {
	t.Helper()
	for _, r := range reqs {
		if r.Repository == repo && r.Status == 200 && (r.Method == "GET" || r.Method == "HEAD") {
			return
		}
	}
	t.Errorf("Harbor never served %s; it received:\n%s", repo, traceOf(reqs))
}

func traceOf(reqs []harbor.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}

// testImage is a single-platform test image as built.
func testImage(t *testing.T, name string) v1.Image {
	t.Helper()
	a, err := images.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	img, ok := a.(v1.Image)
	if !ok {
		t.Fatalf("%s is not an image", name)
	}
	return img
}

// locationRecorder is a transport that remembers every Location header it sees.
type locationRecorder struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  []string
}

func (r *locationRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err == nil && resp.Header.Get("Location") != "" {
		r.mu.Lock()
		r.seen = append(r.seen, resp.Header.Get("Location"))
		r.mu.Unlock()
	}
	return resp, err
}

func (r *locationRecorder) locations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// digestOf is the digest of a test image as built, to compare with what a client pulled.
func digestOf(t *testing.T, name string) string {
	t.Helper()
	a, err := images.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := partial.Digest(a)
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
