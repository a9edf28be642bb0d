package harness

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// A throwaway plugin with the real module path and layout (a subpackage, a test file that
// must not be copied), so the harness is proven independently of the real plugin's state.
var testPlugin = map[string]string{
	".traefik.yml": `displayName: harness self-test plugin
type: middleware
import: github.com/harbormirror/harbormirror
summary: Sets a response header and prefixes the path (harness self-test).
testData:
  value: loaded
`,
	"go.mod": "module github.com/harbormirror/harbormirror\n\ngo 1.22\n",
	"plugin.go": `package harbormirror

import (
	"context"
	"fmt"
	"net/http"

	"github.com/harbormirror/harbormirror/rewrite"
)

type Config struct {
	Header string
	Value  string
	Prefix string
}

func CreateConfig() *Config { return &Config{Header: "X-Harness-Plugin"} }

type plugin struct {
	next   http.Handler
	cfg    Config
}

func New(_ context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	if cfg.Value == "" {
		return nil, fmt.Errorf("value is required")
	}
	fmt.Println("harness-test-plugin: created", name)
	return &plugin{next: next, cfg: *cfg}, nil
}

func (p *plugin) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	rw.Header().Set(p.cfg.Header, p.cfg.Value)
	req.URL.Path = rewrite.Prefix(p.cfg.Prefix, req.URL.Path)
	// Traefik's proxy takes the outgoing path from RequestURI when it is set.
	req.RequestURI = req.URL.RequestURI()
	p.next.ServeHTTP(rw, req)
}
`,
	"rewrite/rewrite.go": `package rewrite

import "strings"

// Prefix inserts prefix after /v2.
func Prefix(prefix, path string) string {
	if prefix == "" || !strings.HasPrefix(path, "/v2/") {
		return path
	}
	return "/v2/" + strings.Trim(prefix, "/") + path[len("/v2"):]
}
`,
	// Would break the load if it were copied: tests are not part of the plugin.
	"plugin_test.go": "package harbormirror\n\nimport _ \"example.invalid/not/there\"\n",
	"e2e/go.mod":     "module github.com/harbormirror/harbormirror/e2e\n",
	"e2e/x.go":       "package e2e\n",
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// backend records the paths it is asked for.
type backend struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.paths = append(b.paths, r.URL.Path)
		b.mu.Unlock()
		w.Header().Set("X-Backend-Path", r.URL.Path)
		fmt.Fprintf(w, "backend saw %s\n", r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.paths...)
}

func dynamicFor(b *backend, pluginOpts string) string {
	return fmt.Sprintf(`http:
  routers:
    r:
      rule: PathPrefix(`+"`/`"+`)
      service: backend
      middlewares: [hm]
  middlewares:
    hm:
      plugin:
        harbormirror:
%s
  services:
    backend:
      loadBalancer:
        servers:
          - url: %s
`, pluginOpts, b.URL)
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}

func TestCopyPlugin(t *testing.T) {
	src := writeTree(t, testPlugin)
	dst := filepath.Join(t.TempDir(), "out")
	if err := copyPlugin(src, dst); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dst, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(got)
	want := []string{".traefik.yml", "go.mod", "plugin.go", "rewrite/rewrite.go"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("copied %v, want %v", got, want)
	}
}

func TestMergeMaps(t *testing.T) {
	dst := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "b": 1}
	mergeMaps(dst, map[string]any{"a": map[string]any{"y": 3, "z": 4}, "b": map[string]any{"k": 1}})
	if got := fmt.Sprint(dst); got != "map[a:map[x:1 y:3 z:4] b:map[k:1]]" {
		t.Fatal(got)
	}
}

func TestTraefikLoadsLocalPlugin(t *testing.T) {
	b := newBackend(t)
	tr := StartTraefik(t, TraefikConfig{
		PluginSource: writeTree(t, testPlugin),
		Dynamic: dynamicFor(b, `          value: loaded
          prefix: test`),
	})

	resp, body := get(t, http.DefaultClient, tr.WebURL+"/v2/library/x/manifests/latest")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, body %q", resp.Status, body)
	}
	if got := resp.Header.Get("X-Harness-Plugin"); got != "loaded" {
		t.Errorf("X-Harness-Plugin = %q, want %q (plugin not in the chain)", got, "loaded")
	}
	if got, want := b.seen(), "/v2/test/library/x/manifests/latest"; len(got) != 1 || got[0] != want {
		t.Errorf("backend saw %v, want [%s]", got, want)
	}

	log := tr.Log()
	for _, s := range []string{LogPluginsLoaded, `harness-test-plugin: created hm@file`} {
		if !strings.Contains(log, s) {
			t.Errorf("traefik log lacks %q", s)
		}
	}
	if strings.Contains(log, LogPluginsDisabled) {
		t.Errorf("traefik log says plugins are disabled")
	}
	if err := tr.WaitAccessLog(`"GET /v2/library/x/manifests/latest HTTP/1.1" 200`, 5*time.Second); err != nil {
		t.Errorf("%v\naccess log:\n%s", err, tr.AccessLog())
	}
	if _, err := os.Stat(filepath.Join(tr.Dir, "plugins-local/src", RootModule, "plugin_test.go")); err == nil {
		t.Errorf("plugin_test.go was copied")
	}
}

func TestTraefikTLS(t *testing.T) {
	b := newBackend(t)
	ca := GenerateTestCA(t)
	tr := StartTraefik(t, TraefikConfig{
		PluginSource: writeTree(t, testPlugin),
		Dynamic:      dynamicFor(b, `          value: tls`),
		TLS:          ca.TLSFiles(),
	})
	if tr.TLSURL == "" {
		t.Fatal("no TLSURL")
	}
	// Both copies of the router exist: "r" on web and "websecure-r" on websecure.
	rs, err := tr.Routers()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, r := range rs {
		names[r.Name] = r.Status
	}
	if names["r@file"] != "enabled" || names["websecure-r@file"] != "enabled" {
		t.Errorf("routers: %v", names)
	}

	c := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLSConfig()}}
	t.Cleanup(c.CloseIdleConnections)
	for _, base := range []string{tr.TLSURL, strings.Replace(tr.TLSURL, "127.0.0.1", "localhost", 1), tr.WebURL} {
		resp, body := get(t, c, base+"/v2/")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Harness-Plugin") != "tls" {
			t.Errorf("%s: %s %v %q", base, resp.Status, resp.Header, body)
		}
		if strings.HasPrefix(base, "https") && resp.TLS == nil {
			t.Errorf("%s: not TLS", base)
		}
	}
}

// A plugin that does not compile makes Traefik drop its routers; the harness must say so
// instead of timing out or letting requests fall through to a 404.
func TestTraefikReportsBrokenPlugin(t *testing.T) {
	files := map[string]string{}
	for k, v := range testPlugin {
		files[k] = v
	}
	files["plugin.go"] += "\nfunc broken() { undefinedThing() }\n"
	b := newBackend(t)
	tr := StartTraefik(t, TraefikConfig{
		PluginSource: writeTree(t, files),
		Dynamic:      dynamicFor(b, `          value: x`),
		NoWait:       true,
	})
	err := tr.WaitRouter("r", 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "could not load the plugins") {
		t.Fatalf("WaitRouter = %v, want a plugin load error", err)
	}
	t.Logf("as expected: %v", err)
}

// The real plugin at the repository root, as the other e2e tests will use it.
func TestTraefikRealPlugin(t *testing.T) {
	if _, err := os.Stat(filepath.Join(RepoRoot(t), "plugin.go")); err != nil {
		t.Skip("no plugin.go at the repository root yet")
	}
	b := newBackend(t)
	tr := StartTraefik(t, TraefikConfig{Dynamic: dynamicFor(b, `          project: hub`)})

	resp, body := get(t, http.DefaultClient, tr.WebURL+"/v2/library/x/manifests/latest")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, body %q", resp.Status, body)
	}
	if got, want := b.seen(), "/v2/hub/library/x/manifests/latest"; len(got) != 1 || got[0] != want {
		t.Errorf("backend saw %v, want [%s]", got, want)
	}
	if !strings.Contains(tr.Log(), LogPluginsLoaded) {
		t.Errorf("traefik log lacks %q", LogPluginsLoaded)
	}
}
