package yaegitest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// benchWriter is a reusable ResponseWriter, so that allocations counted are the plugin's.
type benchWriter struct {
	header http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }

// benchCase is a request and Harbor's answer to it, with the headers Harbor sends.
type benchCase struct {
	method, target string
	status         int
	header         http.Header
	bodyWrites     int // 32 KiB writes of the body, as Traefik's proxy copies a blob
	body           string
}

var benchCases = map[string]benchCase{
	"ManifestHEAD": {"HEAD", "/v2/library/hello/manifests/latest?ns=docker.io", 200, http.Header{
		"Content-Length":        {"1165"},
		"Content-Type":          {"application/vnd.docker.distribution.manifest.list.v2+json"},
		"Docker-Content-Digest": {digest},
	}, 0, ""},
	"BlobGET1MiB": {"GET", "/v2/library/hello/blobs/" + digest, 200, http.Header{
		"Content-Length":        {"1048576"},
		"Content-Type":          {"application/octet-stream"},
		"Docker-Content-Digest": {digest},
	}, 32, ""},
	"TokenGET": {"GET", "/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", 200, http.Header{
		"Content-Length": {"1099"},
		"Content-Type":   {"application/json; charset=utf-8"},
	}, 0, ""},
	"Challenge401": {"GET", "/v2/library/hello/manifests/latest", 401, http.Header{
		"Content-Length":   {strconv.Itoa(len(harborUnauthorized))},
		"Content-Type":     {"application/json; charset=utf-8"},
		"Www-Authenticate": {realmIn + `,scope="repository:hub/library/hello:pull"`},
	}, 0, harborUnauthorized},
}

// harborAnswer sets the headers the way Traefik's proxy copies them: fresh slices per response.
func harborAnswer(c benchCase) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range c.header {
			h[k] = []string{v[0]}
		}
		w.WriteHeader(c.status)
		for i := 0; i < c.bodyWrites; i++ {
			_, _ = w.Write(chunk[:])
		}
		if c.body != "" {
			_, _ = io.WriteString(w, c.body)
		}
	})
}

var chunk [32 << 10]byte

func runBenchmark(b *testing.B, build build, c benchCase) {
	runBenchmarkSettings(b, build, c, map[string]interface{}{"project": "hub"})
}

func runBenchmarkSettings(b *testing.B, build build, c benchCase, settings map[string]interface{}) {
	next := harborAnswer(c)
	handler := next
	if build != nil {
		var err error
		if handler, err = build(b, settings, next); err != nil {
			b.Fatal(err)
		}
	}
	req := httptest.NewRequest(c.method, c.target, nil)
	req.Host = "mirror.example.com"
	serveRepeatedly(b, handler, req, "", c.status)
}

// serveRepeatedly serves req b.N times, restoring what the plugin changes (and the body, if
// any) before each, and checks the last answer's status.
func serveRepeatedly(b *testing.B, handler http.Handler, req *http.Request, body string, status int) {
	url, requestURI := *req.URL, req.RequestURI
	w := &benchWriter{header: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		*req.URL, req.RequestURI = url, requestURI
		if body != "" {
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		}
		for k := range w.header {
			delete(w.header, k)
		}
		handler.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.status != status {
		b.Fatalf("status %d, want %d", w.status, status)
	}
}

// BenchmarkHarborAlone is the baseline: the scripted Harbor without the plugin.
func BenchmarkHarborAlone(b *testing.B) {
	for name, c := range benchCases {
		b.Run(name, func(b *testing.B) { runBenchmark(b, nil, c) })
	}
}

func BenchmarkCompiled(b *testing.B) {
	for name, c := range benchCases {
		b.Run(name, func(b *testing.B) { runBenchmark(b, buildCompiled, c) })
	}
}

func BenchmarkYaegi(b *testing.B) {
	for name, c := range benchCases {
		b.Run(name, func(b *testing.B) { runBenchmark(b, buildYaegi, c) })
	}
}

// BenchmarkYaegiFloor measures what the plugin costs under Yaegi before any mapping: a request it
// passes through untouched, the response wrapper alone (origin-fix-only mode), and a refusal.
func BenchmarkYaegiFloor(b *testing.B) {
	passThrough := benchCase{"GET", "/api/v2.0/projects", 200, http.Header{"Content-Length": {"2"}, "Content-Type": {"application/json"}}, 0, ""}
	b.Run("PassThrough", func(b *testing.B) {
		runBenchmarkSettings(b, buildYaegi, passThrough, map[string]interface{}{"project": "hub", "registryOnly": false})
	})
	b.Run("OriginFixWrapperOnly", func(b *testing.B) {
		runBenchmarkSettings(b, buildYaegi, passThrough, map[string]interface{}{})
	})
	b.Run("Refused404", func(b *testing.B) {
		runBenchmarkSettings(b, buildYaegi, benchCase{"GET", "/api/v2.0/projects", 404, http.Header{}, 0, ""}, map[string]interface{}{"project": "hub"})
	})
}

// BenchmarkYaegiEmptyPlugin and BenchmarkYaegiEmptyWrapper are the floors under the figures of
// BenchmarkYaegi, over the same requests: what any plugin pays under Yaegi (its ServeHTTP only
// calls next), and what any response-rewriting one pays (one interpreted method on a wrapper of
// the ResponseWriter). The plugin is testdata/floorplugins/src/harbormirror.invalid/floorplugin.
func BenchmarkYaegiEmptyPlugin(b *testing.B)  { benchmarkFloor(b, emptyPlugin) }
func BenchmarkYaegiEmptyWrapper(b *testing.B) { benchmarkFloor(b, emptyWrapper) }

var (
	emptyPlugin  = map[string]interface{}{}
	emptyWrapper = map[string]interface{}{"wrapResponse": true}
)

func benchmarkFloor(b *testing.B, settings map[string]interface{}) {
	p := loadFloorPlugin(b)
	for kind, c := range benchCases {
		b.Run(kind, func(b *testing.B) { runBenchmarkSettings(b, p.build, c, settings) })
	}
}

// loadFloorPlugin loads the floor plugin from the GOPATH testdata/floorplugins as Traefik's
// loader loads a plugin.
func loadFloorPlugin(t testing.TB) yaegiPlugin {
	goPath, err := filepath.Abs(filepath.Join("testdata", "floorplugins"))
	if err != nil {
		t.Fatal(err)
	}
	i, err := interpreterAt(goPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := importPlugin(i, "harbormirror.invalid/floorplugin")
	if err != nil {
		t.Fatalf("Yaegi could not load the floor plugin: %v", err)
	}
	return p
}

// TestFloorPlugin keeps the floors what their benchmarks say they are: the empty plugin hands
// next the writer it was given, the wrapper hands it another, and both pass the answer through.
func TestFloorPlugin(t *testing.T) {
	p := loadFloorPlugin(t)
	for name, floor := range map[string]struct {
		settings map[string]interface{}
		wraps    bool
	}{"EmptyPlugin": {emptyPlugin, false}, "EmptyWrapper": {emptyWrapper, true}} {
		t.Run(name, func(t *testing.T) {
			out := &benchWriter{header: http.Header{}}
			var got http.ResponseWriter
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = w
				w.WriteHeader(http.StatusTeapot)
			})
			h, err := p.build(t, floor.settings, next)
			if err != nil {
				t.Fatal(err)
			}
			h.ServeHTTP(out, httptest.NewRequest("GET", "/v2/", nil))
			if out.status != http.StatusTeapot {
				t.Errorf("status %d, want %d", out.status, http.StatusTeapot)
			}
			if wrapped := got != http.ResponseWriter(out); wrapped != floor.wraps {
				t.Errorf("next got a wrapper: %v, want %v", wrapped, floor.wraps)
			}
		})
	}
}

// BenchmarkYaegiHeap measures the live heap of the plugin loaded as Traefik's loader loads it: an
// interpreter given the standard library's symbols, then the plugin's packages (Yaegi's graph of
// their code). Go's collector lets the heap grow to about twice what is live, so Traefik's
// resident memory grows by about twice these figures.
func BenchmarkYaegiHeap(b *testing.B) {
	var stdlib, plugin uint64
	for n := 0; n < b.N; n++ {
		start := liveHeap()
		i := newInterpreter(b)
		withStdlib := liveHeap()
		if _, err := i.Eval(fmt.Sprintf("import %q", moduleName)); err != nil {
			b.Fatal(err)
		}
		loaded := liveHeap()
		runtime.KeepAlive(i)
		stdlib += withStdlib - start
		plugin += loaded - withStdlib
	}
	b.ReportMetric(float64(stdlib)/float64(b.N)/(1<<20), "MiB-stdlib/op")
	b.ReportMetric(float64(plugin)/float64(b.N)/(1<<20), "MiB-plugin/op")
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkYaegiRewrite measures the rewrite functions of each path under Yaegi, called from
// interpreted code as the plugin calls them: where the time of BenchmarkYaegi goes.
func BenchmarkYaegiRewrite(b *testing.B) {
	i := newInterpreter(b)
	if _, err := i.Eval(fmt.Sprintf("import %q", moduleName+"/rewrite")); err != nil {
		b.Fatal(err)
	}
	if _, err := i.Eval(`
var projects = rewrite.NewProjects("hub", nil, true)
var x = &rewrite.Exchange{}
func init() { rewrite.FillPull(projects, x, "/v2/library/hello/manifests/latest?ns=docker.io", ""); x.Origin = "http://mirror.example.com"; x.RealmPath = "/service/token" }
var errorBody = []byte("{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":[{\"Type\":\"repository\",\"Class\":\"\",\"Name\":\"hub/library/hello\",\"Action\":\"pull\"}]}]}")
func Nothing() {}
func MapPull() { rewrite.MapPull(projects, "/v2/library/hello/manifests/latest", "", "ns=docker.io") }
func MapTokenPull() { rewrite.MapTokenPull(projects, "scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry") }
func MapRequest() { rewrite.MapRequest(projects, &rewrite.Exchange{}, "/v2/library/hello/manifests/latest", "", "ns=docker.io") }
func FillPull() { rewrite.FillPull(projects, &rewrite.Exchange{}, "/v2/library/hello/manifests/latest?ns=docker.io", "") }
func Origin() { rewrite.Origin("http", "mirror.example.com") }
func Challenge() { rewrite.Challenge(x, "Bearer realm=\"http://harbor:8080/service/token\",service=\"harbor-registry\",scope=\"repository:hub/library/hello:pull\"") }
func ErrorBody() { rewrite.ErrorBody(errorBody, x) }
`); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"Nothing", "MapPull", "MapTokenPull", "MapRequest", "FillPull", "Origin", "Challenge", "ErrorBody"} {
		v, err := i.Eval(name)
		if err != nil {
			b.Fatal(err)
		}
		f, ok := v.Interface().(func())
		if !ok {
			b.Fatalf("%s is a %T", name, v.Interface())
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for n := 0; n < b.N; n++ {
				f()
			}
		})
	}
}
