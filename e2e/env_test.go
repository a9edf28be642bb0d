// Package e2e runs real registry clients through a real Traefik with harbormirror in front of a
// real Harbor v2.15.2 (e2e/realharbor), and the fault and hostile scenarios in front of a
// Harbor-compatible registry that can be stopped, cut or scripted (e2e/harbor). Every scenario
// asserts Harbor's request log, so a client that silently fell back to Docker Hub, or a request
// that reached the wrong project, fails it.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// Users of the fake Harbor's private project (the real one's are realharbor.Alice and
// realharbor.AlicePassword: real Harbor wants an upper-case letter in a password).
const (
	alice         = "alice"
	alicePassword = "wonderland-7"
)

// mirror is one scenario's world: two upstream registries (Docker Hub and ghcr.io), a Harbor
// with a proxy-cache project for each plus a private project alice maintains, and Traefik with
// the plugin in front of Harbor. startMirror's Harbor is the real one (World: this test's
// projects and upstreams in the binary's shared real Harbor); the fault and hostile worlds
// run the fake (Harbor), which can be stopped, cut or scripted.
type mirror struct {
	DockerHub, GHCR *harbor.Hub
	// HubProject and GHCRProject are the proxy-cache projects of DockerHub and GHCR,
	// TeamProject the private one (on real Harbor e.g. hub-3, ghcr-3, team-3).
	HubProject, GHCRProject, TeamProject string
	World                                *realharbor.World // real Harbor, or nil
	Harbor                               *harbor.Server    // fake Harbor, or nil
	Traefik                              *harness.Traefik
	CA                                   *harness.TestCA // set with mirrorOptions.TLS
	// Host is the mirror's plain-HTTP host:port; TLSHost the HTTPS one (with TLS).
	Host, TLSHost string
	// Alice and AlicePassword are the private project's maintainer.
	Alice, AlicePassword string

	t *testing.T
}

type mirrorOptions struct {
	// Settings are the plugin's settings for the world's project names; default: mirrorSettings.
	Settings func(m *mirror) map[string]any
	// NoMiddleware routes Traefik straight to Harbor, without the plugin (for baselines).
	NoMiddleware bool
	// TLS gives Traefik a websecure entrypoint with a certificate from a test CA.
	TLS bool
	// ForwardedProtoHTTP puts an old nginx's habit between Traefik and Harbor: a second hop (a
	// Traefik entrypoint of its own) that sends Harbor X-Forwarded-Proto: http, so Harbor answers
	// uploads with http:// Locations. (A headers middleware after the plugin on the mirror's
	// router would change the very request the plugin reads its scheme from.)
	ForwardedProtoHTTP bool
	// ExtraStatic is merged into Traefik's static configuration (harness.TraefikConfig).
	ExtraStatic string
}

// mirrorSettings serve the world's Docker Hub proxy cache as the root, ghcr.io routed to its
// ghcr proxy cache.
func mirrorSettings(m *mirror) map[string]any {
	return map[string]any{"project": m.HubProject, "registries": map[string]any{"ghcr.io": m.GHCRProject}}
}

// defaultSettings are mirrorSettings of a fake world (projects hub and ghcr).
func defaultSettings() map[string]any {
	return mirrorSettings(&mirror{HubProject: "hub", GHCRProject: "ghcr"})
}

// startMirror starts the scenario world on real Harbor: the test's own projects and upstreams
// in the shared stack, and Traefik (tagging every request it sends Harbor with the world's
// TestID) in front of Harbor's nginx; everything stops when the test ends.
func startMirror(t *testing.T, opts mirrorOptions) *mirror {
	t.Helper()
	w := realharbor.NewWorld(t)
	m := &mirror{
		t:         t,
		DockerHub: w.DockerHub, GHCR: w.GHCR, World: w,
		HubProject: w.HubProject, GHCRProject: w.GHCRProject, TeamProject: w.TeamProject,
		Alice: realharbor.Alice, AlicePassword: realharbor.AlicePassword,
	}
	startTraefik(t, m, w.Harbor.URL, w.TestID, opts)
	return m
}

// startFakeMirror is startMirror's world on the fake Harbor, for tests that read or script
// what only the fake exposes.
func startFakeMirror(t *testing.T, opts mirrorOptions) *mirror {
	t.Helper()
	m := &mirror{t: t, DockerHub: startHub(t), GHCR: startHub(t)}
	startFakeHarbor(t, m, "")
	startTraefik(t, m, m.Harbor.URL, "", opts)
	return m
}

// startFakeHarbor starts a fake Harbor with the worlds' projects (hub and ghcr proxy-caching m's
// upstreams, private team with alice) on addr ("" for any port) as m.Harbor, closed when the
// test ends. A Harbor started again on the same address has empty storage and a new token key:
// its proxy-cache projects fill again from upstream, and old tokens are refused.
func startFakeHarbor(t *testing.T, m *mirror, addr string) *harbor.Server {
	t.Helper()
	m.HubProject, m.GHCRProject, m.TeamProject = "hub", "ghcr", "team"
	m.Alice, m.AlicePassword = alice, alicePassword
	var h *harbor.Server
	var err error
	// The address was released a moment ago; a listener still closing can hold it briefly.
	for attempt := 0; attempt < 50; attempt++ {
		h, err = harbor.Start(harbor.Options{
			Addr: addr,
			Projects: []harbor.Project{
				{Name: m.HubProject, Public: true, ProxyCacheOf: m.DockerHub.URL},
				{Name: m.GHCRProject, Public: true, ProxyCacheOf: m.GHCR.URL},
				{Name: m.TeamProject, Members: []string{alice}},
			},
			Users: map[string]string{alice: alicePassword},
		})
		if err == nil || addr == "" || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start Harbor on %q: %v", addr, err)
	}
	t.Cleanup(func() { _ = h.Close() })
	m.Harbor = h
	return h
}

// startTraefik starts m's Traefik routing to backend through the plugin (unless
// opts.NoMiddleware), tagging requests with testID when given.
func startTraefik(t *testing.T, m *mirror, backend, testID string, opts mirrorOptions) {
	t.Helper()
	settingsOf := opts.Settings
	if settingsOf == nil {
		settingsOf = mirrorSettings
	}
	route := traefikRoute{Backend: backend, TestID: testID, Settings: settingsOf(m), Plugin: !opts.NoMiddleware}
	extraStatic := opts.ExtraStatic
	if opts.ForwardedProtoHTTP {
		if extraStatic != "" {
			t.Fatal("mirrorOptions: ForwardedProtoHTTP with ExtraStatic is not supported")
		}
		ports, err := harness.FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		route.OldProxy = fmt.Sprintf("127.0.0.1:%d", ports[0])
		extraStatic = fmt.Sprintf("entryPoints:\n  oldproxy:\n    address: %q\n", route.OldProxy)
	}
	cfg := harness.TraefikConfig{Dynamic: route.dynamicConfig(), NoPlugin: opts.NoMiddleware, ExtraStatic: extraStatic}
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

// traefikRoute is the dynamic configuration of a mirror: one router for every request, to
// Backend (Traefik passes the client's Host on, as by default).
type traefikRoute struct {
	Backend string
	// TestID, when set, is sent as realharbor.TestHeader on every request, first thing, so
	// that the test finds its own requests in a Harbor shared by tests.
	TestID string
	// Plugin puts the plugin with Settings on the router.
	Plugin   bool
	Settings map[string]any
	// OldProxy, when set, is the address of the entrypoint "oldproxy" (in the static
	// configuration): the mirror's router goes through it to Backend, and its own router sets
	// X-Forwarded-Proto: http (mirrorOptions.ForwardedProtoHTTP).
	OldProxy string
}

// dynamicConfig routes everything to harborURL, through the plugin when withPlugin.
func dynamicConfig(harborURL string, settings map[string]any, withPlugin bool) string {
	return traefikRoute{Backend: harborURL, Settings: settings, Plugin: withPlugin}.dynamicConfig()
}

func (r traefikRoute) dynamicConfig() string {
	var middlewares []string
	if r.TestID != "" {
		middlewares = append(middlewares, "testid")
	}
	if r.Plugin {
		middlewares = append(middlewares, "harbormirror")
	}
	service := "harbor"
	if r.OldProxy != "" {
		service = "oldproxy"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "http:\n  routers:\n    mirror:\n      rule: PathPrefix(`/`)\n      service: %s\n", service)
	if len(middlewares) > 0 {
		fmt.Fprintf(&b, "      middlewares: [%s]\n", strings.Join(middlewares, ", "))
	}
	if r.OldProxy != "" {
		b.WriteString("    oldproxy:\n      entryPoints: [oldproxy]\n      rule: PathPrefix(`/`)\n      service: harbor\n      middlewares: [forwardedprotohttp]\n")
		middlewares = append(middlewares, "forwardedprotohttp")
	}
	if len(middlewares) > 0 {
		b.WriteString("  middlewares:\n")
	}
	if r.TestID != "" {
		fmt.Fprintf(&b, "    testid:\n      headers:\n        customRequestHeaders:\n          %s: %q\n", realharbor.TestHeader, r.TestID)
	}
	if r.Plugin {
		b.WriteString("    harbormirror:\n      plugin:\n        harbormirror:\n")
		writeYAML(&b, r.Settings, "          ")
	}
	if r.OldProxy != "" {
		b.WriteString("    forwardedprotohttp:\n      headers:\n        customRequestHeaders:\n          X-Forwarded-Proto: \"http\"\n")
	}
	fmt.Fprintf(&b, "  services:\n    harbor:\n      loadBalancer:\n        servers:\n          - url: %q\n", r.Backend)
	if r.OldProxy != "" {
		fmt.Fprintf(&b, "    oldproxy:\n      loadBalancer:\n        servers:\n          - url: \"http://%s\"\n", r.OldProxy)
	}
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

// requests returns every request of the world's Traefik that Harbor received so far, for
// assertions: on real Harbor from its nginx log (see syncLog), on the fake from its log.
func requests(m *mirror) []harbor.Request {
	if m.World == nil {
		return m.Harbor.Requests()
	}
	syncLog(m.t, m.World)
	reqs, err := m.World.Requests()
	if err != nil {
		m.t.Fatalf("Harbor's request log: %v", err)
	}
	return reqs
}

var syncCount atomic.Int64

// syncLog waits until nginx has logged every request the test's clients got an answer to.
// nginx writes a request's line after answering it, so a client can act on the answer first;
// a request sent to nginx after the client's, under an ID of its own, is logged after them.
func syncLog(t *testing.T, w *realharbor.World) {
	t.Helper()
	id := fmt.Sprintf("%s sync-%d", w.TestID, syncCount.Add(1))
	req, err := http.NewRequest(http.MethodGet, w.Harbor.URL+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(realharbor.TestHeader, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sync with Harbor's log: %v", err)
	}
	_ = resp.Body.Close()
	if _, err := w.Harbor.WaitRequests(id, func(r []harbor.Request) bool { return len(r) > 0 }, 30*time.Second); err != nil {
		t.Fatalf("sync with Harbor's log: %v", err)
	}
}

// harborStore stores artifacts in a Harbor project the way an admin pushes them, past Traefik
// (none of it is in the world's requests): an images.Storer of names <project>/<repo>.
type harborStore struct{ m *mirror }

func (s harborStore) Store(ctx context.Context, repo, tag string, a harbor.Artifact) error {
	if s.m.World == nil {
		return s.m.Harbor.Store(ctx, repo, tag, a)
	}
	h := s.m.World.Harbor
	ref := h.Host + "/" + repo
	if tag != "" {
		ref += ":" + tag
	}
	return images.Push(ctx, ref, a, &authn.Basic{Username: realharbor.AdminUser, Password: realharbor.AdminPassword})
}

// upstreamSince returns what hub received after the first mark requests.
func upstreamSince(hub *harbor.Hub, mark int) []harbor.Request { return hub.Requests()[mark:] }

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
