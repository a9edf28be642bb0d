package clients

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// testRegistry is distribution's registry served in-process with in-memory storage; it records every
// request it receives.
type testRegistry struct {
	URL    string // http(s)://127.0.0.1:port
	Host   string // 127.0.0.1:port
	CAPath string // PEM of the server certificate, for TLS registries

	transport http.RoundTripper // trusts the server's certificate

	mu       sync.Mutex
	requests []recordedRequest
}

type recordedRequest struct {
	Method, URI, UserAgent string
	Authorized             bool // carried an Authorization header
}

func (r recordedRequest) String() string { return r.Method + " " + r.URI }

type registryOptions struct {
	tls                bool
	htpasswdUser, pass string // basic auth when set
}

func startTestRegistry(t *testing.T, opts registryOptions) *testRegistry {
	t.Helper()
	// The registry logs every request through logrus' global logger; tests read the recorded requests.
	logrus.SetOutput(io.Discard)

	config := &configuration.Configuration{}
	config.Storage = configuration.Storage{
		"inmemory":    configuration.Parameters{},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
	}
	config.HTTP.Secret = "harbormirror-clients-test"
	if opts.htpasswdUser != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.htpasswdUser+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		config.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "test", "path": htpasswd}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, config)

	reg := &testRegistry{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		reg.requests = append(reg.requests, recordedRequest{
			Method: r.Method, URI: r.URL.RequestURI(), UserAgent: r.UserAgent(),
			Authorized: r.Header.Get("Authorization") != "",
		})
		reg.mu.Unlock()
		app.ServeHTTP(w, r)
	})
	var server *httptest.Server
	if opts.tls {
		server = httptest.NewTLSServer(handler)
		reg.CAPath = filepath.Join(t.TempDir(), "registry-ca.pem")
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
		if err := os.WriteFile(reg.CAPath, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		server = httptest.NewServer(handler)
	}
	t.Cleanup(func() {
		server.Close()
		_ = app.Shutdown()
		cancel()
	})
	reg.URL = server.URL
	reg.transport = server.Client().Transport
	reg.Host = strings.TrimPrefix(strings.TrimPrefix(server.URL, "http://"), "https://")
	return reg
}

// Requests returns the requests received so far.
func (r *testRegistry) Requests() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRequest(nil), r.requests...)
}

// Reset forgets the recorded requests (e.g. those of the test's own push).
func (r *testRegistry) Reset() {
	r.mu.Lock()
	r.requests = nil
	r.mu.Unlock()
}

// requireRequest fails the test unless a recorded request matches method and has a URI starting with
// uriPrefix and containing every one of contains; it returns the first match.
func (r *testRegistry) requireRequest(t *testing.T, method, uriPrefix string, contains ...string) recordedRequest {
	t.Helper()
	requests := r.Requests()
	for _, req := range requests {
		if req.Method != method || !strings.HasPrefix(req.URI, uriPrefix) {
			continue
		}
		matched := true
		for _, c := range contains {
			matched = matched && strings.Contains(req.URI, c)
		}
		if matched {
			return req
		}
	}
	t.Fatalf("registry got no %s %s...%q; it got:\n%s", method, uriPrefix, contains, formatRequests(requests))
	return recordedRequest{}
}

func formatRequests(requests []recordedRequest) string {
	var b strings.Builder
	for _, req := range requests {
		fmt.Fprintf(&b, "  %s %s (auth=%t, UA %q)\n", req.Method, req.URI, req.Authorized, req.UserAgent)
	}
	return b.String()
}

// pushHelloIndex pushes, like Docker Hub's images, a manifest list holding one small image for this
// machine's platform to repo:tag and returns the list's digest.
func pushHelloIndex(t *testing.T, reg *testRegistry, repo string, remoteOpts ...remote.Option) string {
	t.Helper()
	img, err := random.Image(512, 1) // a layer is a tar of one random file
	if err != nil {
		t.Fatal(err)
	}
	configFile, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	configFile = configFile.DeepCopy()
	configFile.OS, configFile.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, configFile); err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.DockerManifestSchema2)
	index := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}},
	}), types.DockerManifestList)

	ref, err := name.ParseReference(reg.Host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, index, remoteOpts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	digest, err := index.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.String()
}
