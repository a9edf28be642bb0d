package e2e

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/images"
	"go.yaml.in/yaml/v3"
)

// The hosts every example under examples/ serves, and what it expects of Harbor.
const (
	exampleMirrorHost = "dockerhub.example.com"
	exampleHarborHost = "harbor.example.com"
	exampleUser       = "alice"
	examplePassword   = "secret" // fakeharbor's default -users alice:secret
)

// exampleRead returns a file of examples/, by path relative to it.
func exampleRead(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "examples", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exampleReplace replaces old by new in s, failing unless old occurs exactly once: a template
// point of an example that moved must not go unnoticed.
func exampleReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("example: %q occurs %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// exampleOfflineStatic returns the experimental section of examples/file/traefik-offline.yml as
// ExtraStatic, after checking that it declares the plugin as the harness loads it (the harness
// provides the sources under plugins-local; a different key or module would load a second plugin
// and fail).
func exampleOfflineStatic(t *testing.T) string {
	t.Helper()
	var static map[string]any
	if err := yaml.Unmarshal([]byte(exampleRead(t, "file/traefik-offline.yml")), &static); err != nil {
		t.Fatal(err)
	}
	exp := map[string]any{"experimental": static["experimental"]}
	want := map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{
		harness.PluginName: map[string]any{"moduleName": harness.RootModule}}}}
	if fmt.Sprint(exp) != fmt.Sprint(want) {
		t.Fatalf("traefik-offline.yml: experimental %v, want %v", exp, want)
	}
	b, err := yaml.Marshal(exp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exampleTransport reaches the example hosts by name on Traefik's TLS entrypoint (as if DNS
// pointed them at it), trusting only the test CA; any other address is refused.
func exampleTransport(t *testing.T, ca *harness.TestCA, tlsURL string) *http.Transport {
	t.Helper()
	target := hostOf(t, tlsURL)
	var d net.Dialer
	tr := &http.Transport{
		Proxy:           nil,
		TLSClientConfig: ca.ClientTLSConfig(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != exampleMirrorHost+":443" && addr != exampleHarborHost+":443" {
				return nil, fmt.Errorf("example transport: no route to %s", addr)
			}
			return d.DialContext(ctx, network, target)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// exampleNS adds ?ns=<registry> to every registry API request for the mirror host, as containerd
// does for a hosts.toml mirror; the token request keeps the ns its realm carries.
type exampleNS struct {
	inner    http.RoundTripper
	registry string
}

func (n exampleNS) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == exampleMirrorHost && strings.HasPrefix(r.URL.Path, "/v2/") && r.URL.Query().Get("ns") == "" {
		r = r.Clone(r.Context())
		q := r.URL.Query()
		q.Set("ns", n.registry)
		r.URL.RawQuery = q.Encode()
	}
	return n.inner.RoundTrip(r)
}

// exampleRequest is one request Harbor received, from the fake's log or fakeharbor's output.
type exampleRequest struct {
	Method, Path, RawQuery, Host string
	Status                       int
}

func (r exampleRequest) String() string {
	s := r.Method + " " + r.Path
	if r.RawQuery != "" {
		s += "?" + r.RawQuery
	}
	return fmt.Sprintf("%s host=%s -> %d", s, r.Host, r.Status)
}

func exampleFromHarbor(reqs []harbor.Request) []exampleRequest {
	out := make([]exampleRequest, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, exampleRequest{Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Host: r.Host, Status: r.Status})
	}
	return out
}

// exampleTraceLine is a request line fakeharbor prints (harbor.Request.String with its prefix).
var exampleTraceLine = regexp.MustCompile(`^harbor: (\S+) (\S+) host=(\S+)(?: auth=\S+)? -> (\d+)`)

// exampleFromTrace parses fakeharbor's output.
func exampleFromTrace(out string) []exampleRequest {
	var reqs []exampleRequest
	for _, line := range strings.Split(out, "\n") {
		m := exampleTraceLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		status, _ := strconv.Atoi(m[4])
		path, query, _ := strings.Cut(m[2], "?")
		reqs = append(reqs, exampleRequest{Method: m[1], Path: path, RawQuery: query, Host: m[3], Status: status})
	}
	return reqs
}

func exampleTrace(reqs []exampleRequest) string {
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}

// exampleProve pulls, pushes and probes through both hosts of an example, on a Harbor with a
// Docker Hub proxy cache "hub" and a second one "ghcr" (both holding library/hello and
// library/single) and a private project "team" of alice, answering uploads with absolute http://
// Locations as behind TLS offloading; harborLog returns what Harbor has received so far.
func exampleProve(t *testing.T, rt http.RoundTripper, harborLog func() []exampleRequest) {
	t.Helper()
	ctx := context.Background()

	// Docker Hub names on the mirror host: the manifest list of hello, and every blob of single.
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	desc, err := remote.Get(ref(exampleMirrorHost+"/hello:latest"), remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull %s/hello: %v\nHarbor received:\n%s", exampleMirrorHost, err, exampleTrace(harborLog()))
	}
	if want := digestOf(t, images.Hello); desc.Digest.String() != want {
		t.Errorf("hello: digest %s, want %s", desc.Digest, want)
	}
	exampleValidate(t, ref(exampleMirrorHost+"/library/single:latest"), rt, harborLog)

	// containerd's ?ns=ghcr.io on the same host: project ghcr.
	exampleValidate(t, ref(exampleMirrorHost+"/library/single:latest"), exampleNS{inner: rt, registry: "ghcr.io"}, harborLog)

	client := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// readOnly: an upload gets 405 from the plugin.
	resp := exampleDo(t, client, http.MethodPost, "https://"+exampleMirrorHost+"/v2/library/single/blobs/uploads/")
	if resp.status != http.StatusMethodNotAllowed || !strings.Contains(resp.body, "UNSUPPORTED") {
		t.Errorf("POST upload on the mirror host: %d %s, want 405 UNSUPPORTED", resp.status, resp.body)
	}
	// registryOnly: no Harbor UI on the mirror host.
	if resp := exampleDo(t, client, http.MethodGet, "https://"+exampleMirrorHost+"/"); resp.status != http.StatusNotFound || !strings.Contains(resp.body, "NOT_FOUND") {
		t.Errorf("GET / on the mirror host: %d %s, want the plugin's 404", resp.status, resp.body)
	}

	// Harbor's own host: the UI passes through; a push gets https upload Locations.
	exampleDo(t, client, http.MethodGet, "https://"+exampleHarborHost+"/")
	img, err := images.Get(images.Single)
	if err != nil {
		t.Fatal(err)
	}
	locs := &locationRecorder{inner: rt}
	pushRef := ref(exampleHarborHost + "/team/example:v1")
	if err := remote.Write(pushRef, img.(v1.Image), remote.WithTransport(locs), remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: exampleUser, Password: examplePassword})); err != nil {
		t.Fatalf("push %s: %v\nHarbor received:\n%s", pushRef, err, exampleTrace(harborLog()))
	}
	uploads := 0
	for _, l := range locs.locations() {
		if strings.Contains(l, "/blobs/uploads/") {
			uploads++
			if prefix := "https://" + exampleHarborHost + "/v2/team/example/blobs/uploads/"; !strings.HasPrefix(l, prefix) {
				t.Errorf("upload Location %q, want %s...", l, prefix)
			}
		}
	}
	if uploads == 0 {
		t.Errorf("the push got no upload Location: %q", locs.locations())
	}

	// What Harbor received, host by host. Access-log-like lines can lag the response a little.
	var reqs []exampleRequest
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		reqs = harborLog()
		if exampleSaw(reqs, "PUT", exampleHarborHost, "/v2/team/example/manifests/v1", 201) || time.Now().After(deadline) {
			break
		}
	}
	trace := exampleTrace(reqs)
	config, err := img.(v1.Image).ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		method, host, path string
		status             int
	}{
		{"GET", exampleMirrorHost, "/v2/hub/library/hello/manifests/latest", 200},
		{"GET", exampleMirrorHost, "/v2/hub/library/single/blobs/" + config.String(), 200},
		{"GET", exampleMirrorHost, "/v2/ghcr/library/single/blobs/" + config.String(), 200},
		{"GET", exampleHarborHost, "/", 0},
		{"PUT", exampleHarborHost, "/v2/team/example/manifests/v1", 201},
	} {
		if !exampleSaw(reqs, want.method, want.host, want.path, want.status) {
			t.Errorf("Harbor never got %s %s on host %s (status %d); it received:\n%s", want.method, want.path, want.host, want.status, trace)
		}
	}
	scopes := map[string]bool{}
	for _, r := range reqs {
		switch {
		case r.Host != exampleMirrorHost && r.Host != exampleHarborHost:
			t.Errorf("request on host %q, not through the example's routers: %s", r.Host, r)
		case r.Host == exampleHarborHost:
		case r.Path == "/service/token":
			q, _ := url.ParseQuery(r.RawQuery)
			for _, s := range q["scope"] {
				scopes[s] = true
			}
		case r.Method != "GET" && r.Method != "HEAD":
			t.Errorf("a %s reached Harbor through the read-only mirror: %s", r.Method, r)
		case r.Path != "/v2/" && !strings.HasPrefix(r.Path, "/v2/hub/library/") && !strings.HasPrefix(r.Path, "/v2/ghcr/library/"):
			t.Errorf("a request outside hub/ and ghcr/ reached Harbor through the mirror: %s", r)
		case strings.Contains(r.RawQuery, "ns="):
			t.Errorf("?ns= reached Harbor: %s", r)
		}
	}
	for _, s := range []string{"repository:hub/library/hello:pull", "repository:hub/library/single:pull", "repository:ghcr/library/single:pull"} {
		if !scopes[s] {
			t.Errorf("no token request for %s through the mirror; scopes %v", s, scopes)
		}
	}
}

// exampleValidate pulls an image with every blob and checks its content.
func exampleValidate(t *testing.T, ref name.Reference, rt http.RoundTripper, harborLog func() []exampleRequest) {
	t.Helper()
	img, err := remote.Image(ref, remote.WithTransport(rt))
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Fatalf("pull %s: %v\nHarbor received:\n%s", ref, err, exampleTrace(harborLog()))
	}
	if d, _ := img.Digest(); d.String() != digestOf(t, images.Single) {
		t.Errorf("%s: digest %s, want %s", ref, d, digestOf(t, images.Single))
	}
}

func exampleSaw(reqs []exampleRequest, method, host, path string, status int) bool {
	for _, r := range reqs {
		if r.Method == method && r.Host == host && r.Path == path && (status == 0 || r.Status == status) {
			return true
		}
	}
	return false
}

type exampleResponse struct {
	status int
	body   string
}

func exampleDo(t *testing.T, c *http.Client, method, rawURL string) exampleResponse {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return exampleResponse{status: resp.StatusCode, body: string(body)}
}

// exampleFakeharborTar builds e2e/cmd/fakeharbor as a static binary and returns a root file
// system tar holding it as /fakeharbor, with the /tmp it keeps its storage in.
func exampleFakeharborTar(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakeharbor")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fakeharbor")
	build.Dir = filepath.Join(harness.RepoRoot(t), "e2e")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/fakeharbor: %v\n%s", err, out)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := tar.NewWriter(f)
	for _, h := range []*tar.Header{
		{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir},
		{Name: "fakeharbor", Mode: 0o755, Size: int64(len(binary)), Typeflag: tar.TypeReg},
	} {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write(binary); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return tarPath
}
