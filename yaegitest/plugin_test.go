package yaegitest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	harbormirror "github.com/harbormirror/harbormirror"
	"github.com/harbormirror/harbormirror/internal/boundary"
	"github.com/mitchellh/mapstructure"
)

// build makes the middleware from settings the way Traefik does; compiled here, interpreted by
// Yaegi in yaegi_test.go.
type build = boundary.Build

// The exchange tables' names that the other tests and the benchmarks of this module use too.
const (
	digest             = boundary.Digest
	realmIn            = boundary.RealmIn
	harborUnauthorized = boundary.HarborUnauthorized
)

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

// The exchange tables (internal/boundary), each run compiled and under Yaegi: with the lanes here,
// without them in TestYaegiExchangesWithoutLanes and in the plugin's TestExchangesWithoutLanes.
func TestExchanges(t *testing.T)      { boundary.RunExchanges(t, buildCompiled, boundary.Exchanges) }
func TestYaegiExchanges(t *testing.T) { boundary.RunExchanges(t, buildYaegi, boundary.Exchanges) }
func TestHostileExchanges(t *testing.T) {
	boundary.RunExchanges(t, buildCompiled, boundary.HostileExchanges)
}
func TestYaegiHostileExchanges(t *testing.T) {
	boundary.RunExchanges(t, buildYaegi, boundary.HostileExchanges)
}

// The smaller tables run compiled and under Yaegi in one test each.
func TestCatalogExchanges(t *testing.T)   { runBoth(t, boundary.CatalogExchanges) }
func TestOwnNameExchanges(t *testing.T)   { runBoth(t, boundary.OwnNameExchanges) }
func TestReferenceExchanges(t *testing.T) { runBoth(t, boundary.ReferenceExchanges) }

func runBoth(t *testing.T, table []boundary.Exchange) {
	for name, build := range map[string]build{"compiled": buildCompiled, "yaegi": buildYaegi} {
		t.Run(name, func(t *testing.T) { boundary.RunExchanges(t, build, table) })
	}
}

func TestOriginCapture(t *testing.T) {
	for name, build := range map[string]build{"compiled": buildCompiled, "yaegi": buildYaegi} {
		t.Run(name, func(t *testing.T) { boundary.RunOriginCapture(t, build) })
	}
}

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
