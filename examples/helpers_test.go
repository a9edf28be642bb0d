// Package examples tests the deployment examples under examples/: each one is decoded with
// Traefik's own code (the file provider, the Docker label parser, the Kubernetes CRD types) and
// its plugin settings are decoded into the plugin's Config exactly as Traefik does, then checked
// option by option and by building the middleware and sending it requests.
package examples

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	harbormirror "github.com/harbormirror/harbormirror"
	"github.com/mitchellh/mapstructure"
	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	httpmuxer "github.com/traefik/traefik/v3/pkg/muxer/http"
)

// The plugin as every example names it.
const (
	pluginKey    = "harbormirror"
	pluginModule = "github.com/harbormirror/harbormirror"
)

// The two middlewares every example defines, by name.
const (
	mirrorMiddleware = "dockerhub-mirror"
	originMiddleware = "harbor-origin"
)

// The hosts every example serves.
const (
	mirrorHost = "dockerhub.example.com"
	harborHost = "harbor.example.com"
)

// wantConfig is a plugin Config as the examples intend it, with registries joined back.
type wantConfig struct {
	Project       string
	Registries    map[string]string
	LibraryPrefix bool
	MirrorPath    string
	TokenPath     string
	PublicURL     string
	ReadOnly      bool
	RegistryOnly  bool
}

// wantMirror is the Docker Hub mirror middleware of every example.
var wantMirror = wantConfig{
	Project:       "hub",
	Registries:    map[string]string{"docker.io": "hub", "ghcr.io": "ghcr"},
	LibraryPrefix: true,
	TokenPath:     "/service/token",
	PublicURL:     "https://" + mirrorHost,
	ReadOnly:      true,
	RegistryOnly:  true,
}

// wantOrigin is the origin-fix-only middleware on Harbor's own host.
var wantOrigin = wantConfig{
	Registries:    map[string]string{},
	LibraryPrefix: true,
	TokenPath:     "/service/token",
	PublicURL:     "https://" + harborHost,
	RegistryOnly:  true,
}

// read returns an example file, by path relative to examples/.
func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// traefikDecode decodes plugin settings into a fresh plugin Config the way Traefik v3.6.12 does
// (pkg/plugins/middlewareyaegi.go, createConfig): CreateConfig, then mapstructure with
// WeaklyTypedInput and a string-to-slice hook on ",". Every key lands in the Config's Settings,
// as written (the Config has no field per option; see config.go).
func traefikDecode(settings map[string]any) (*harbormirror.Config, error) {
	cfg := harbormirror.CreateConfig()
	if len(settings) == 0 { // Traefik does not decode an empty map
		return cfg, nil
	}
	decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           cfg,
	})
	if err != nil {
		return nil, err
	}
	if err := decoder.Decode(settings); err != nil {
		return nil, err
	}
	return cfg, nil
}

// pluginSettings returns a middleware's settings for this plugin, failing unless the middleware
// is exactly one plugin middleware of this plugin.
func pluginSettings(t *testing.T, where string, mw *dynamic.Middleware) map[string]any {
	t.Helper()
	if mw == nil {
		t.Fatalf("%s: no such middleware", where)
	}
	if len(mw.Plugin) != 1 || mw.Plugin[pluginKey] == nil {
		t.Fatalf("%s: want plugin.%s only, got %#v", where, pluginKey, mw)
	}
	// Nothing else may be set on it either.
	bare := *mw
	bare.Plugin = nil
	if !reflect.DeepEqual(bare, dynamic.Middleware{}) {
		t.Errorf("%s: other middleware settings besides the plugin: %#v", where, bare)
	}
	return mw.Plugin[pluginKey]
}

// checkSettings decodes settings as Traefik does and strictly, checks every option exactly
// (value and type), then builds the middleware with the plugin's New and checks what it does.
func checkSettings(t *testing.T, where string, settings map[string]any, want wantConfig) {
	t.Helper()
	for _, p := range optionProblems(t, settings) {
		t.Errorf("%s: %s", where, p)
	}
	cfg, err := traefikDecode(settings)
	if err != nil {
		t.Fatalf("%s: Traefik's decoding fails: %v", where, err)
	}
	o, err := cfg.Options()
	if err != nil {
		t.Fatalf("%s: the plugin refuses the settings: %v", where, err)
	}
	got := wantConfig{
		Project:       o.Project,
		LibraryPrefix: o.LibraryPrefix,
		MirrorPath:    o.MirrorPath,
		TokenPath:     o.TokenPath,
		PublicURL:     o.PublicURL,
		ReadOnly:      o.ReadOnly,
		RegistryOnly:  o.RegistryOnly,
		Registries:    o.Registries,
	}
	if got.Registries == nil {
		got.Registries = map[string]string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: the plugin gets\n  %+v\nwant\n  %+v", where, got, want)
	}
	if want.Project != "" {
		checkMirrorBehaviour(t, where, cfg, want)
	} else {
		checkOriginBehaviour(t, where, cfg, want)
	}
}

// upstreamSeen records what the middleware passed on to Harbor.
type upstreamSeen struct {
	calls int
	path  string
	query string
	host  string
}

// serve sends one request through a middleware built from cfg, in front of an upstream that
// records the request and answers with status and headers.
func serve(t *testing.T, cfg *harbormirror.Config, method, target string, status int, header http.Header) (*httptest.ResponseRecorder, *upstreamSeen) {
	t.Helper()
	seen := &upstreamSeen{}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.calls++
		seen.path, seen.query, seen.host = r.URL.Path, r.URL.RawQuery, r.Host
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
	})
	h, err := harbormirror.New(context.Background(), next, cfg, "probe")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set("X-Forwarded-Proto", "https") // as Traefik's websecure entrypoint sets it
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, seen
}

// checkMirrorBehaviour shows each option of a mirror configuration at work.
func checkMirrorBehaviour(t *testing.T, where string, cfg *harbormirror.Config, want wantConfig) {
	t.Helper()
	base := want.PublicURL
	// project + libraryPrefix: a one-component Docker Hub name lands in <project>/library/.
	if _, seen := serve(t, cfg, http.MethodGet, base+"/v2/nginx/manifests/latest", 200, nil); seen.path != "/v2/"+want.Project+"/library/nginx/manifests/latest" {
		t.Errorf("%s: GET /v2/nginx/manifests/latest reached Harbor as %q", where, seen.path)
	}
	// registries: each ?ns= goes to its project (the plugin joined the keys back).
	for registry, project := range want.Registries {
		_, seen := serve(t, cfg, http.MethodGet, base+"/v2/org/tool/manifests/v1?ns="+registry, 200, nil)
		if seen.path != "/v2/"+project+"/org/tool/manifests/v1" || seen.query != "" {
			t.Errorf("%s: ?ns=%s reached Harbor as %q?%s, want project %s", where, registry, seen.path, seen.query, project)
		}
	}
	if rec, seen := serve(t, cfg, http.MethodGet, base+"/v2/org/tool/manifests/v1?ns=quay.io", 200, nil); seen.calls != 0 || rec.Code != http.StatusNotFound {
		t.Errorf("%s: ?ns=quay.io (not routed): %d, Harbor called %d times", where, rec.Code, seen.calls)
	}
	// readOnly: no upload reaches Harbor.
	if rec, seen := serve(t, cfg, http.MethodPost, base+"/v2/nginx/blobs/uploads/", 202, nil); want.ReadOnly != (seen.calls == 0 && rec.Code == http.StatusMethodNotAllowed) {
		t.Errorf("%s: POST upload answered %d, Harbor called %d times; readOnly %v", where, rec.Code, seen.calls, want.ReadOnly)
	}
	// registryOnly: Harbor's UI is not served on the mirror host.
	if rec, seen := serve(t, cfg, http.MethodGet, base+"/", 200, nil); want.RegistryOnly != (seen.calls == 0 && rec.Code == http.StatusNotFound) {
		t.Errorf("%s: GET / answered %d, Harbor called %d times; registryOnly %v", where, rec.Code, seen.calls, want.RegistryOnly)
	}
	// publicURL + tokenPath: Harbor's challenge points clients at the mirror's token path.
	challenge := http.Header{"Www-Authenticate": {`Bearer realm="https://` + harborHost + `/service/token",service="harbor-registry",scope="repository:` + want.Project + `/library/nginx:pull"`}}
	rec, _ := serve(t, cfg, http.MethodGet, base+"/v2/library/nginx/manifests/latest", 401, challenge)
	wantChallenge := `Bearer realm="` + want.PublicURL + want.TokenPath + `",service="harbor-registry",scope="repository:library/nginx:pull"`
	if got := rec.Header().Get("Www-Authenticate"); got != wantChallenge {
		t.Errorf("%s: challenge\n  %s\nwant\n  %s", where, got, wantChallenge)
	}
	_, seen := serve(t, cfg, http.MethodGet, base+want.TokenPath+"?service=harbor-registry&scope=repository:library/nginx:pull", 200, nil)
	if q, _ := url.ParseQuery(seen.query); seen.path != want.TokenPath || q.Get("scope") != "repository:"+want.Project+"/library/nginx:pull" {
		t.Errorf("%s: token request reached Harbor as %s?%s", where, seen.path, seen.query)
	}
}

// checkOriginBehaviour shows an origin-fix-only configuration at work: Harbor's http:// upload
// Location on this host comes back on the public origin; nothing else changes.
func checkOriginBehaviour(t *testing.T, where string, cfg *harbormirror.Config, want wantConfig) {
	t.Helper()
	host := strings.TrimPrefix(want.PublicURL, "https://")
	loc := http.Header{"Location": {"http://" + host + "/v2/team/app/blobs/uploads/abc?_state=x"}}
	rec, seen := serve(t, cfg, http.MethodPost, want.PublicURL+"/v2/team/app/blobs/uploads/", 202, loc)
	if seen.path != "/v2/team/app/blobs/uploads/" {
		t.Errorf("%s: the upload reached Harbor as %q, want it unmapped", where, seen.path)
	}
	if got, wantLoc := rec.Header().Get("Location"), want.PublicURL+"/v2/team/app/blobs/uploads/abc?_state=x"; got != wantLoc {
		t.Errorf("%s: upload Location %q, want %q", where, got, wantLoc)
	}
	if rec, seen := serve(t, cfg, http.MethodGet, want.PublicURL+"/harbor/projects", 200, nil); seen.calls != 1 || rec.Code != 200 {
		t.Errorf("%s: Harbor's UI did not pass through: %d, %d calls", where, rec.Code, seen.calls)
	}
}

// optionNames are the plugin's option keys as the README and the plugin's Options json tags
// spell them.
func optionNames(t *testing.T) []string {
	t.Helper()
	var names []string
	typ := reflect.TypeOf(harbormirror.Options{})
	for i := 0; i < typ.NumField(); i++ {
		tag := typ.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			t.Fatalf("Config.%s has no json name", typ.Field(i).Name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// optionProblems lists what is wrong with plugin settings, each guard on its own:
//   - a key not spelt exactly as the README's options table;
//   - the plugin's New refusing the configuration (an unknown key, an option in other letter
//     case, a bad value), after Traefik's decoding, which accepts all of these.
func optionProblems(t *testing.T, settings map[string]any) []string {
	t.Helper()
	var problems []string
	known := map[string]bool{}
	for _, n := range optionNames(t) {
		known[n] = true
	}
	var keys []string
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			problems = append(problems, fmt.Sprintf("option %q is not one of the README's %v", k, optionNames(t)))
		}
	}
	cfg, err := traefikDecode(settings)
	if err != nil {
		return append(problems, "Traefik's decoding: "+err.Error())
	}
	if _, err := harbormirror.New(context.Background(), http.NotFoundHandler(), cfg, "check"); err != nil {
		problems = append(problems, "the plugin's New: "+err.Error())
	}
	return problems
}

// readmeOptions lists the option names of the README's options table.
func readmeOptions(t *testing.T) []string {
	t.Helper()
	readme := read(t, "../README.md")
	_, section, ok := strings.Cut(readme, "\n## Options\n")
	if !ok {
		t.Fatal("README.md has no Options section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\|").FindAllStringSubmatch(section, -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return names
}

// hostsOf returns the hosts a router rule matches, parsed by Traefik's own rule parser.
func hostsOf(t *testing.T, rule string) []string {
	t.Helper()
	hosts, err := httpmuxer.ParseDomains(rule)
	if err != nil {
		t.Fatalf("rule %q: %v", rule, err)
	}
	return hosts
}

// checkRouter checks one router of the file provider or Docker labels.
func checkRouter(t *testing.T, where string, r *dynamic.Router, host, middleware, service string) {
	t.Helper()
	if r == nil {
		t.Fatalf("%s: no such router", where)
	}
	if got := hostsOf(t, r.Rule); !reflect.DeepEqual(got, []string{host}) {
		t.Errorf("%s: rule %q matches hosts %v, want %s", where, r.Rule, got, host)
	}
	if !reflect.DeepEqual(r.EntryPoints, []string{"websecure"}) {
		t.Errorf("%s: entryPoints %v, want [websecure]", where, r.EntryPoints)
	}
	if r.TLS == nil {
		t.Errorf("%s: no TLS", where)
	}
	if !reflect.DeepEqual(r.Middlewares, []string{middleware}) {
		t.Errorf("%s: middlewares %v, want [%s]", where, r.Middlewares, middleware)
	}
	if r.Service != service {
		t.Errorf("%s: service %q, want %q", where, r.Service, service)
	}
}

// checkFallbackRouter checks the router that keeps Harbor's own host up when Traefik cannot load
// the plugin: main's host, entrypoint, TLS and service, no middleware, and a lower priority than
// main's (Traefik's default priority is the length of the rule), so that it serves only while
// main is dropped.
func checkFallbackRouter(t *testing.T, where string, fallback, main *dynamic.Router) {
	t.Helper()
	if fallback == nil || main == nil {
		t.Fatalf("%s: no such router (or no main router)", where)
	}
	if got, want := hostsOf(t, fallback.Rule), hostsOf(t, main.Rule); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: hosts %v, want the main router's %v", where, got, want)
	}
	if !reflect.DeepEqual(fallback.EntryPoints, main.EntryPoints) || (fallback.TLS == nil) != (main.TLS == nil) || fallback.Service != main.Service {
		t.Errorf("%s: entryPoints %v, TLS %v, service %q; want the main router's", where, fallback.EntryPoints, fallback.TLS, fallback.Service)
	}
	if len(fallback.Middlewares) != 0 {
		t.Errorf("%s: middlewares %v; a fallback must not depend on the plugin", where, fallback.Middlewares)
	}
	mainPriority := main.Priority
	if mainPriority == 0 {
		mainPriority = len(main.Rule)
	}
	if fallback.Priority == 0 || fallback.Priority >= mainPriority {
		t.Errorf("%s: priority %d, want below the main router's %d", where, fallback.Priority, mainPriority)
	}
}

// catalogPlugin is a plugin catalog entry of Traefik's static configuration.
type catalogPlugin struct {
	ModuleName string `yaml:"moduleName"`
	Version    string `yaml:"version"`
}

// checkCatalogPlugin checks a plugin catalog entry: this module, at a release version.
func checkCatalogPlugin(t *testing.T, where string, p catalogPlugin) {
	t.Helper()
	if p.ModuleName != pluginModule {
		t.Errorf("%s: moduleName %q, want %q", where, p.ModuleName, pluginModule)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(p.Version) {
		t.Errorf("%s: version %q is not a release tag vX.Y.Z", where, p.Version)
	}
}
