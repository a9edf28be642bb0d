package harbor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

const (
	adminPassword = "Harbor12345"
	alicePassword = "alice-secret"
)

var (
	admin = &authn.Basic{Username: "admin", Password: adminPassword}
	alice = &authn.Basic{Username: "alice", Password: alicePassword}
)

// startHarbor runs a fake Harbor with a public "library", a private "team"
// (alice), a private "secret" (nobody), and "hub", a proxy-cache of a fake
// Docker Hub holding library/hello; library holds library/hello too.
func startHarbor(t *testing.T, configure func(*harbor.Options)) (*harbor.Server, *harbor.Hub) {
	t.Helper()
	hub, err := harbor.StartDockerHub()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	opts := harbor.Options{
		Projects: []harbor.Project{
			{Name: "library", Public: true},
			{Name: "team", Members: []string{"alice"}},
			{Name: "secret"},
			{Name: "hub", Public: true, ProxyCacheOf: hub.URL},
		},
		Users: map[string]string{"alice": alicePassword},
	}
	if configure != nil {
		configure(&opts)
	}
	srv, err := harbor.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx := context.Background()
	if err := images.Seed(ctx, hub, "library", images.Hello); err != nil {
		t.Fatal(err)
	}
	if err := images.Seed(ctx, srv, "library", images.Hello); err != nil {
		t.Fatal(err)
	}
	return srv, hub
}

func reference(t *testing.T, srv *harbor.Server, repoAndTag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(srv.Host+"/"+repoAndTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// pullAll fetches a manifest and, for the linux/amd64 image it resolves to, every blob.
func pullAll(t *testing.T, ref name.Reference, auth authn.Authenticator) (v1.Hash, error) {
	t.Helper()
	desc, err := remote.Get(ref, remote.WithAuth(auth))
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := desc.Image() // picks linux/amd64 from an index
	if err != nil {
		return v1.Hash{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, layer := range layers {
		rc, err := layer.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return v1.Hash{}, err
		}
	}
	return desc.Digest, nil
}

func statusOf(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

// repositoryRequests are the logged /v2/<name>/... requests.
func repositoryRequests(requests []harbor.Request) []harbor.Request {
	var out []harbor.Request
	for _, r := range requests {
		if r.Repository != "" {
			out = append(out, r)
		}
	}
	return out
}

func assertAllInProject(t *testing.T, requests []harbor.Request, project string) {
	t.Helper()
	repo := repositoryRequests(requests)
	if len(repo) == 0 {
		t.Fatalf("no repository request logged: %v", requests)
	}
	for _, r := range repo {
		if r.Project != project {
			t.Errorf("request reached project %q, want only %q: %v", r.Project, project, r)
		}
	}
}

// send makes a request with an optional Authorization header and returns the response, body read.
func send(t *testing.T, method, rawURL, authorization string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// fetchToken asks the token service for scopes (each a scope parameter) as user, "" for anonymous.
func fetchToken(t *testing.T, srv *harbor.Server, user *authn.Basic, scopes ...string) tokenResponse {
	t.Helper()
	query := url.Values{"service": {"harbor-registry"}, "scope": scopes}
	authorization := ""
	if user != nil {
		authorization = "Basic " + basic(user.Username, user.Password)
	}
	resp, body := send(t, http.MethodGet, srv.URL+"/service/token?"+query.Encode(), authorization, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok tokenResponse
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claimedAccess decodes, without verifying, a token's access claim.
func claimedAccess(t *testing.T, token string) []tokenAccess {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Access []tokenAccess `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Access
}

// basic is the credential of a Basic Authorization header.
func basic(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}
