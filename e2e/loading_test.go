package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/harness"
)

// Scenario 7: Traefik loads the plugin and attaches it to the router, and a configuration the
// plugin rejects is reported where an operator looks, naming the bad key.
//
// Where Traefik v3.6.12 reports an error returned by the plugin's New (or by its own decoding of
// the settings into Config), found by these tests:
//   - its log, at ERROR level, from pkg/server/router/router.go, once per entrypoint:
//     ERR .../pkg/server/router/router.go:261 > error="harbormirror middleware \"harbormirror@file\": project: \"Not A Project\" is not a Harbor project name (...)" entryPointName=web routerName=mirror@file
//   - the API: /api/http/routers lists the router with status "disabled" and the error in
//     its "error" list; /api/http/middlewares lists the middleware "disabled" with it too.
//
// "Plugins loaded." is logged all the same: loading (interpreting the sources) succeeded, only
// building the middleware failed. Traefik keeps running without the router, so its requests
// go to whichever other router matches, or get Traefik's 404. A source that does not load
// at all is logged as "Plugins are disabled because an error has occurred." instead.

// ldMirrorRouter is the router the plugin serves in these tests; ldMiddleware its middleware.
const (
	ldMirrorRouter = "mirror@file"
	ldMiddleware   = "harbormirror@file"
)

// TestPluginLoadsAndAttaches: the plugin loads, its middleware is enabled on the router, and a
// request is mapped by it (not merely answered by Traefik).
func TestPluginLoadsAndAttaches(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{})
	log := m.Traefik.Log()
	if line := ldLine(log, harness.LogPluginsLoaded); !strings.Contains(line, `plugins=["harbormirror"]`) {
		t.Errorf("Traefik logged %q, want %q naming the plugin", line, harness.LogPluginsLoaded)
	}
	for _, bad := range []string{harness.LogPluginsDisabled, "harbormirror middleware"} {
		if line := ldLine(log, bad); line != "" {
			t.Errorf("Traefik logged: %s", line)
		}
	}

	// The router first tags each request with the test's ID (for the shared Harbor's log).
	r := ldRouter(t, m.Traefik, ldMirrorRouter)
	if want := []string{"testid@file", ldMiddleware}; r.Status != "enabled" || !slices.Equal(r.Middlewares, want) || len(r.Errors) != 0 {
		t.Errorf("router %s: status %s, middlewares %v, errors %v; want enabled with %v and no errors",
			r.Name, r.Status, r.Middlewares, r.Errors, want)
	}
	mw := ldMiddlewareInfo(t, m.Traefik)
	if mw.Status != "enabled" || mw.Type != harness.PluginName || !slices.Contains(mw.UsedBy, ldMirrorRouter) || len(mw.Errors) != 0 {
		t.Errorf("middleware %s: %+v; want enabled, type %s, used by %s", ldMiddleware, mw, harness.PluginName, ldMirrorRouter)
	}

	// The plugin's effect: a one-component Docker Hub name reaches the Docker Hub project under
	// library/.
	mpSend(t, "GET", "http://"+m.Host+"/v2/hello/manifests/latest", nil)
	if reqs := requests(m); len(reqs) != 1 || reqs[0].Path != "/v2/"+m.HubProject+"/library/hello/manifests/latest" {
		t.Errorf("GET /v2/hello/manifests/latest: Harbor received:\n%s", traceOf(reqs))
	}
}

// TestPluginConfigErrors: each configuration New (or Traefik's decoder) rejects is reported in
// Traefik's log and API with the bad key, and the router is dropped: requests are no longer
// mapped. With another router on the host (Harbor's own, say) they reach Harbor unmapped and
// still look like registry answers; with none, Traefik answers 404 and Harbor sees nothing.
func TestPluginConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]any
		key      string // how the error names the setting
		detail   string // the rest of the message, without quotes (they are escaped in the log)
	}{
		{"project", map[string]any{"project": "Not A Project"}, "project:", "is not a Harbor project name"},
		{"mirrorPath", map[string]any{"project": "hub", "mirrorPath": "/v2"}, "mirrorPath:", "must not start with /v2"},
		{"mirrorPathWithoutProject", map[string]any{"mirrorPath": "/hub"}, "mirrorPath:", "needs a project or registries to serve"},
		{"registries", map[string]any{"project": "hub", "registries": map[string]any{"docker.io": "Docker Hub"}}, "registries.docker.io:", "is not a Harbor project name"},
		{"publicURL", map[string]any{"project": "hub", "publicURL": "mirror.example.com"}, "publicURL:", "scheme must be http or https"},
		{"tokenPath", map[string]any{"project": "hub", "tokenPath": "service/token"}, "tokenPath:", "must be an absolute path outside /v2"},
		{"readOnly", map[string]any{"project": "hub", "readOnly": "maybe"}, "readOnly:", "is not true or false"},
		// An option in other letter case, which Traefik's decoder alone would take as the option.
		{"optionCase", map[string]any{"project": "hub", "readonly": "true"}, "readonly:", "no such option; did you mean readOnly?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := startHub(t)
			h := ldStartHarbor(t, hub)
			tr := harness.StartTraefik(t, harness.TraefikConfig{
				Dynamic: ldTwoRouters(h.URL, tc.settings), NoWait: true,
				// The default 2 s throttle would delay the second configuration below.
				ExtraStatic: "providers:\n  providersThrottleDuration: 10ms\n",
			})

			// The router: disabled, with the error in its error list.
			r := ldWaitRouterStatus(t, tr, ldMirrorRouter)
			if r.Status != "disabled" || len(r.Errors) == 0 || !strings.Contains(r.Errors[0], tc.key) || !strings.Contains(r.Errors[0], tc.detail) {
				t.Errorf("router %s: status %s, errors %q; want disabled with an error naming %s", r.Name, r.Status, r.Errors, tc.key)
			}
			mw := ldMiddlewareInfo(t, tr)
			if mw.Status != "disabled" || len(mw.Errors) == 0 || !strings.Contains(mw.Errors[0], tc.key) {
				t.Errorf("middleware %s: status %s, errors %q; want disabled with an error naming %s", ldMiddleware, mw.Status, mw.Errors, tc.key)
			}
			// The log: one ERR line for the router, naming the key. Plugins did load.
			log := tr.Log()
			line := ldErrorLine(log, tc.detail)
			if !strings.Contains(line, " ERR ") || !strings.Contains(line, "routerName="+ldMirrorRouter) || !strings.Contains(line, tc.key) {
				t.Errorf("Traefik's log has no ERR line for %s naming %s; the line found: %q", ldMirrorRouter, tc.key, line)
			} else {
				t.Logf("Traefik logged: %s", line)
			}
			if !strings.Contains(log, harness.LogPluginsLoaded) || strings.Contains(log, harness.LogPluginsDisabled) {
				t.Errorf("want %q and not %q in the log", harness.LogPluginsLoaded, harness.LogPluginsDisabled)
			}

			// The silent drop: Traefik keeps serving, and the pull goes to Harbor unmapped.
			ldAssertUnmapped(t, tr, h, true)

			// With the mirror router alone on the host, Traefik answers 404 itself.
			if err := tr.UpdateDynamic(dynamicConfig(h.URL, tc.settings, true)); err != nil {
				t.Fatal(err)
			}
			ldWaitRouterGone(t, tr, "harbor@file")
			ldAssertUnmapped(t, tr, h, false)
		})
	}
}

// TestPluginLoadError: plugin sources that do not compile under Yaegi disable all plugins; Traefik
// says so once at start-up and drops the router the same way.
func TestPluginLoadError(t *testing.T) {
	src := t.TempDir()
	root := harness.RepoRoot(t)
	// The plugin's files as they are (every non-test Go file of the root package), plugin.go broken.
	goFiles, err := filepath.Glob(filepath.Join(root, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{".traefik.yml", "go.mod"}
	for _, f := range goFiles {
		if !strings.HasSuffix(f, "_test.go") {
			files = append(files, filepath.Base(f))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "plugin.go" {
			b = append(b, []byte("\nfunc broken() int { return \"not an int\" }\n")...)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(src, "rewrite"), os.DirFS(filepath.Join(root, "rewrite"))); err != nil {
		t.Fatal(err)
	}
	hub := startHub(t)
	h := ldStartHarbor(t, hub)
	tr := harness.StartTraefik(t, harness.TraefikConfig{
		Dynamic: ldTwoRouters(h.URL, defaultSettings()), NoWait: true, PluginSource: src,
	})
	r := ldWaitRouterStatus(t, tr, ldMirrorRouter)
	line := ldLine(tr.Log(), harness.LogPluginsDisabled)
	if line == "" || !strings.Contains(line, "plugin.go") {
		t.Errorf("Traefik's log has no %q line pointing at plugin.go; got %q", harness.LogPluginsDisabled, line)
	} else {
		t.Logf("Traefik logged: %s", line)
	}
	if r.Status != "disabled" {
		t.Errorf("router %s: status %s, errors %q; want disabled", r.Name, r.Status, r.Errors)
	}
	t.Logf("router %s: status %s, errors %q", r.Name, r.Status, r.Errors)
	ldAssertUnmapped(t, tr, h, true)
}

// ldTwoRouters is dynamicConfig plus a catch-all router without the plugin, as when Harbor's
// UI and API share the host: it takes whatever the mirror router does not.
func ldTwoRouters(harborURL string, settings map[string]any) string {
	dyn := dynamicConfig(harborURL, settings, true)
	dyn = strings.Replace(dyn, "    mirror:\n      rule: PathPrefix(`/`)\n",
		"    mirror:\n      rule: PathPrefix(`/`)\n      priority: 100\n", 1)
	return strings.Replace(dyn, "  routers:\n",
		"  routers:\n    harbor:\n      rule: PathPrefix(`/`)\n      priority: 1\n      service: harbor\n", 1)
}

func ldStartHarbor(t *testing.T, hub *harbor.Hub) *harbor.Server {
	t.Helper()
	h, err := harbor.Start(harbor.Options{Projects: []harbor.Project{{Name: "hub", Public: true, ProxyCacheOf: hub.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// ldAssertUnmapped sends the first requests of a pull of hello and checks that none was mapped:
// through another router they reach Harbor as sent (viaHarbor), else Traefik answers 404.
func ldAssertUnmapped(t *testing.T, tr *harness.Traefik, h *harbor.Server, viaHarbor bool) {
	t.Helper()
	h.ResetLog()
	host := strings.TrimPrefix(tr.WebURL, "http://")
	paths := []string{"/v2/", "/v2/hello/manifests/latest", "/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry"}
	for _, p := range paths {
		resp := mpSend(t, "GET", "http://"+host+p, nil)
		if !viaHarbor && resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want Traefik's 404", p, resp.StatusCode)
		}
		if viaHarbor && p == "/v2/hello/manifests/latest" && resp.StatusCode != http.StatusUnauthorized {
			// Harbor's challenge: to a client it still looks like a registry.
			t.Errorf("GET %s: %d, want Harbor's 401", p, resp.StatusCode)
		}
	}
	reqs := h.Requests()
	if !viaHarbor {
		if len(reqs) != 0 {
			t.Errorf("with the router dropped, Harbor still received:\n%s", traceOf(reqs))
		}
		return
	}
	if len(reqs) != len(paths) {
		t.Fatalf("sent %d requests, Harbor received:\n%s", len(paths), traceOf(reqs))
	}
	for i, r := range reqs {
		if got := r.Path + mpQueryOf(r.RawQuery); got != paths[i] || r.Project == "hub" {
			t.Errorf("GET %s reached Harbor as %s (project %q); want it unmapped", paths[i], got, r.Project)
		}
		for _, s := range r.Scopes {
			if strings.HasPrefix(s.Name, "hub/") {
				t.Errorf("token scope %s was mapped: %s", s.Name, r)
			}
		}
	}
}

// ldRouter returns a router from Traefik's API.
func ldRouter(t *testing.T, tr *harness.Traefik, name string) harness.RouterInfo {
	t.Helper()
	rs, err := tr.Routers()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no router %s in Traefik's API: %+v", name, rs)
	return harness.RouterInfo{}
}

// ldWaitRouterStatus waits for the file provider's configuration to reach the API (NoWait starts
// Traefik without waiting for it) and returns the router.
func ldWaitRouterStatus(t *testing.T, tr *harness.Traefik, name string) harness.RouterInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs, err := tr.Routers()
		if err == nil {
			for _, r := range rs {
				if r.Name == name && r.Status != "" {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("router %s not in Traefik's API within 30 s (%v): %+v", name, err, rs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// ldWaitRouterGone waits until a new configuration without the router is live.
func ldWaitRouterGone(t *testing.T, tr *harness.Traefik, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs, err := tr.Routers()
		if err == nil && !slices.ContainsFunc(rs, func(r harness.RouterInfo) bool { return r.Name == name }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("router %s still in Traefik's API after 30 s (%v)", name, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// ldMiddlewareEntry is one entry of Traefik's /api/http/middlewares.
type ldMiddlewareEntry struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Status string   `json:"status"`
	UsedBy []string `json:"usedBy"`
	Errors []string `json:"error"`
}

func ldMiddlewareInfo(t *testing.T, tr *harness.Traefik) ldMiddlewareEntry {
	t.Helper()
	resp := mpSend(t, "GET", tr.APIURL+"/api/http/middlewares/"+ldMiddleware, nil)
	var mw ldMiddlewareEntry
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/http/middlewares/%s: %d %s", ldMiddleware, resp.StatusCode, resp.body)
	}
	if err := json.Unmarshal(resp.body, &mw); err != nil {
		t.Fatalf("GET /api/http/middlewares/%s: %v", ldMiddleware, err)
	}
	return mw
}

// ldLine returns the first log line containing substr, or "".
func ldLine(log, substr string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

// ldErrorLine returns the first ERR line containing detail, or failing that any line with it.
func ldErrorLine(log, detail string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, " ERR ") && strings.Contains(line, detail) {
			return line
		}
	}
	if line := ldLine(log, detail); line != "" {
		return line
	}
	return fmt.Sprintf("(no line mentions %q)", detail)
}
