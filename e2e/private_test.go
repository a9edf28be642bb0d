package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/harbormirror/harbormirror/e2e/clients"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// Scenario 4: a mirror host that serves the private project (team-<n> on real Harbor) as its root. Anonymous clients
// get a usable challenge in the mirror's own names and a token without access; alice's
// credentials work with docker login, skopeo and go-containerregistry.

// teamSettings serves the private project team as the registry root, names taken as they are.
func teamSettings(m *mirror) map[string]any {
	return map[string]any{"project": m.TeamProject, "libraryPrefix": false}
}

// teamAlice is the team member's credential for go-containerregistry.
func teamAlice(m *mirror) authn.Authenticator {
	return &authn.Basic{Username: m.Alice, Password: m.AlicePassword}
}

// teamAliceCreds is the same credential for skopeo's --src-creds / --dest-creds / --creds.
func teamAliceCreds(m *mirror) string { return m.Alice + ":" + m.AlicePassword }

// teamStore stores a standard image in the private project as <team>/<repo>:<tag>, past
// Traefik (no request of it shows in the world's requests).
func teamStore(t *testing.T, m *mirror, repo, tag, image string) {
	t.Helper()
	a, err := images.Get(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := (harborStore{m}).Store(context.Background(), m.TeamProject+"/"+repo, tag, a); err != nil {
		t.Fatalf("store %s/%s:%s: %v", m.TeamProject, repo, tag, err)
	}
}

// teamTimed logs how long the test took, for the run-time report.
func teamTimed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() { t.Logf("scenario run time: %v", time.Since(start).Round(time.Millisecond)) })
}

// TestPrivateAnonymousRefused: an anonymous GET of team/app through the mirror gets a Bearer
// challenge whose realm is the mirror's token path and whose scope names the repository as the
// client does (app, not team/app); the token that realm hands out anonymously grants nothing,
// and go-containerregistry's pull ends in a clean UNAUTHORIZED/DENIED registry error.
func TestPrivateAnonymousRefused(t *testing.T) {
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{Settings: teamSettings})
	teamStore(t, m, "app", "v1", images.Hello)

	// The challenge, as a client sees it.
	resp := teamMustDo(t, http.DefaultClient, http.MethodGet, "http://"+m.Host+"/v2/app/manifests/v1", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET /v2/app/manifests/v1: %s, want 401", resp.Status)
	}
	header := resp.Header.Get("Www-Authenticate")
	scheme, params := teamChallenge(header)
	wantParams := map[string]string{
		"realm":   "http://" + m.Host + "/service/token",
		"service": "harbor-registry",
		"scope":   "repository:app:pull",
	}
	if scheme != "bearer" || !teamMapsEqual(params, wantParams) {
		t.Fatalf("Www-Authenticate %q:\n got %s %v\nwant bearer %v", header, scheme, params, wantParams)
	}
	if strings.Contains(header, "team") {
		t.Errorf("challenge leaks the project: %q", header)
	}

	// Following it anonymously: a token, but one that grants nothing.
	tok := teamFetchToken(t, http.DefaultClient, params, "")
	for _, a := range tok.Access {
		if len(a.Actions) != 0 {
			t.Errorf("anonymous token grants %s:%s %v", a.Type, a.Name, a.Actions)
		}
	}
	resp = teamMustDo(t, http.DefaultClient, http.MethodGet, "http://"+m.Host+"/v2/app/manifests/v1", nil,
		map[string]string{"Authorization": "Bearer " + tok.Token})
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /v2/app/manifests/v1 with the anonymous token: %s, want 401 or 403", resp.Status)
	}

	// A real client: go-containerregistry fails with a registry error, nothing else.
	ref, err := name.ParseReference(m.Host+"/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Get(ref)
	var terr *transport.Error
	switch {
	case err == nil:
		t.Fatal("anonymous pull of the private project succeeded")
	case !errors.As(err, &terr):
		t.Fatalf("anonymous pull failed without a registry error (%T): %v", err, err)
	case terr.StatusCode != http.StatusUnauthorized && terr.StatusCode != http.StatusForbidden:
		t.Errorf("anonymous pull: status %d, want 401 or 403: %v", terr.StatusCode, err)
	case len(terr.Errors) == 0 || (terr.Errors[0].Code != transport.UnauthorizedErrorCode && terr.Errors[0].Code != transport.DeniedErrorCode):
		t.Errorf("anonymous pull: errors %+v, want UNAUTHORIZED or DENIED", terr.Errors)
	}
	t.Logf("anonymous pull error, as ggcr reports it: %v", err)

	// Harbor's side: every request in the project, every token request mapped to <team>/app
	// (the token above granted nothing), and never a 2xx on the repository.
	app := m.TeamProject + "/app"
	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	tokens := 0
	for _, r := range reqs {
		if r.Path == "/service/token" {
			tokens++
			for _, s := range r.Scopes {
				if s.Type != "repository" || s.Name != app {
					t.Errorf("anonymous token request: scope %+v, want repository %s: %s", s, app, r)
				}
			}
			continue
		}
		if r.Repository != "" && r.Repository != app {
			t.Errorf("request reached repository %q: %s", r.Repository, r)
		}
		if r.Repository != "" && r.Status < 300 {
			t.Errorf("Harbor served the private repository anonymously: %s", r)
		}
	}
	if tokens < 2 {
		t.Errorf("Harbor saw %d token requests, want at least 2 (by hand and ggcr):\n%s", tokens, traceOf(reqs))
	}
	teamSawRequest(t, reqs, "GET", "/v2/"+app+"/manifests/v1", http.StatusUnauthorized)
}

// TestPrivateDockerLoginPull: dockerd refuses the private image anonymously, then
// `docker login <mirror>` as alice and `docker pull <mirror>/app:v1` gets it through the
// mapping, with the manifest list and image digests as stored.
//
// The mirror host is Traefik's TLS entrypoint: for a registry host (not a registry-mirrors
// entry) dockerd tries https first, and Traefik answers TLS on its plain-HTTP entrypoint too
// (default certificate, no router: 404), after which dockerd's pull refuses to fall back to
// http ("Skipping non-TLS endpoint ... for host/port that appears to use TLS").
func TestPrivateDockerLoginPull(t *testing.T) {
	clients.Require(t, clients.ClientDockerd)
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{Settings: teamSettings, TLS: true})
	teamStore(t, m, "app", "v1", images.Hello)
	d := clients.StartDockerd(t, clients.DockerdOptions{CACerts: []string{m.CA.CAFile}})
	ref := m.TLSHost + "/app:v1"

	if out, err := d.Pull(ref); err == nil {
		t.Fatalf("anonymous docker pull of the private project succeeded:\n%s", out)
	} else if !strings.Contains(err.Error(), "denied") && !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("anonymous docker pull failed, but not as denied/unauthorized: %v", err)
	}
	anonymous := len(requests(m))

	if err := d.Login(m.TLSHost, m.Alice, m.AlicePassword); err != nil {
		t.Fatalf("docker login %s: %v", m.TLSHost, err)
	}
	if out, err := d.Pull(ref); err != nil {
		t.Fatalf("docker pull %s after login: %v\n%s", ref, err, out)
	}
	if got, want := d.ImageDigest(ref), digestOf(t, images.Hello); got != want {
		t.Errorf("docker pull %s: repository digest %s, want %s", ref, got, want)
	}
	if got, want := d.Inspect(ref, "{{.Id}}"), teamPlatformConfig(t, images.Hello, "amd64"); got != want {
		t.Errorf("docker pull %s: image ID %s, want the linux/amd64 config %s", ref, got, want)
	}

	app := m.TeamProject + "/app"
	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	assertServed(t, reqs, app)
	for _, r := range reqs[:anonymous] {
		if r.Repository != "" && r.Status < 300 {
			t.Errorf("Harbor served the private repository to anonymous dockerd: %s", r)
		}
	}
	// After login, dockerd sends alice's credentials to the token service, and the scope it asks
	// for in the mirror's names reaches Harbor as <team>/app; the pull's 200s show it granted.
	asAlice := false
	for _, r := range reqs[anonymous:] {
		for _, s := range r.Scopes {
			if s.Name == app && r.AuthScheme == "Basic" {
				asAlice = true
			}
		}
		if r.Repository != "" && r.Repository != app {
			t.Errorf("request reached repository %q: %s", r.Repository, r)
		}
	}
	if !asAlice {
		t.Errorf("no token request as alice for %s:\n%s", app, traceOf(reqs))
	}
	teamSawRequest(t, reqs, "GET", "/v2/"+app+"/manifests/"+digestOf(t, images.Hello), http.StatusOK)
}

// TestPrivateSkopeoCopyWithCreds: skopeo copies the private image anonymously not at all, and
// with alice's --src-creds completely (--all: the list and both platforms), every file in the
// dir: copy matching its digest and the set of blobs matching the image as built.
func TestPrivateSkopeoCopyWithCreds(t *testing.T) {
	clients.Require(t, clients.ClientSkopeo)
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{Settings: teamSettings})
	teamStore(t, m, "app", "v1", images.Hello)
	src := "docker://" + m.Host + "/app:v1"

	if out, err := clients.SkopeoCopy(t, src, "dir:"+t.TempDir()); err == nil {
		t.Fatalf("anonymous skopeo copy of the private project succeeded:\n%s", out)
	} else if !strings.Contains(out, "unauthorized") && !strings.Contains(out, "denied") {
		t.Errorf("anonymous skopeo copy failed, but not as unauthorized/denied:\n%s", out)
	} else {
		t.Logf("anonymous skopeo copy: %s", strings.TrimSpace(out))
	}
	anonymous := len(requests(m))

	dir := t.TempDir()
	if out, err := clients.SkopeoCopy(t, src, "dir:"+dir, "--all", "--src-creds", teamAliceCreds(m)); err != nil {
		t.Fatalf("skopeo copy with credentials: %v\n%s", err, out)
	}
	if got, want := teamFileDigest(t, filepath.Join(dir, "manifest.json")), digestOf(t, images.Hello); got != want {
		t.Errorf("copied manifest list: digest %s, want %s", got, want)
	}
	teamAssertDirBlobs(t, dir, images.Hello)
	if got, want := clients.SkopeoInspectDigest(t, src, "--creds", teamAliceCreds(m)), digestOf(t, images.Hello); got != want {
		t.Errorf("skopeo inspect %s: digest %s, want %s", src, got, want)
	}

	app := m.TeamProject + "/app"
	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	assertServed(t, reqs, app)
	for _, r := range reqs[:anonymous] {
		if r.Repository != "" && r.Status < 300 {
			t.Errorf("Harbor served the private repository to anonymous skopeo: %s", r)
		}
	}
	for _, r := range reqs[anonymous:] {
		if r.Repository != "" && r.Repository != app {
			t.Errorf("request reached repository %q: %s", r.Repository, r)
		}
		if r.Path == "/service/token" && r.AuthScheme != "Basic" {
			t.Errorf("skopeo with credentials asked for a token without them: %s", r)
		}
		for _, s := range r.Scopes {
			if s.Type != "repository" || s.Name != app {
				t.Errorf("skopeo with credentials asked for %s:%s: %s", s.Type, s.Name, r)
			}
		}
	}
}

// --- helpers shared by the private and push scenarios ---

// teamMustDo sends one request and returns the response with its body read into a fresh reader.
func teamMustDo(t *testing.T, c *http.Client, method, rawURL string, body []byte, header map[string]string) *http.Response {
	t.Helper()
	resp, err := teamDo(c, method, rawURL, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func teamDo(c *http.Client, method, rawURL string, body []byte, header map[string]string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the body: %w", method, rawURL, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

func teamBody(resp *http.Response) string {
	data, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return string(data)
}

var teamChallengeParam = regexp.MustCompile(`([A-Za-z_]+)="([^"]*)"`)

// teamChallenge splits a Www-Authenticate value into its (lowercased) scheme and parameters.
func teamChallenge(header string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	params := map[string]string{}
	for _, m := range teamChallengeParam.FindAllStringSubmatch(rest, -1) {
		params[strings.ToLower(m[1])] = m[2]
	}
	return strings.ToLower(scheme), params
}

func teamMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// teamToken is a token service answer with its access claims decoded.
type teamToken struct {
	Token  string
	Access []struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
}

// teamFetchToken follows a Bearer challenge's realm with its service and scope, with Basic
// credentials "user:password" unless creds is empty.
func teamFetchToken(t *testing.T, c *http.Client, challenge map[string]string, creds string) teamToken {
	t.Helper()
	q := url.Values{"service": {challenge["service"]}}
	if s := challenge["scope"]; s != "" {
		q.Set("scope", s)
	}
	header := map[string]string{}
	if creds != "" {
		header["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(creds))
	}
	resp := teamMustDo(t, c, http.MethodGet, challenge["realm"]+"?"+q.Encode(), nil, header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s?%s: %s: %s", challenge["realm"], q.Encode(), resp.Status, teamBody(resp))
	}
	var answer struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("token answer: %v", err)
	}
	tok := teamToken{Token: answer.Token}
	if tok.Token == "" {
		tok.Token = answer.AccessToken
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	if err := json.Unmarshal(payload, &tok); err != nil {
		t.Fatalf("token claims: %v", err)
	}
	return tok
}

// teamSawRequest fails unless Harbor answered method path with status at least once.
func teamSawRequest(t *testing.T, reqs []harbor.Request, method, path string, status int) {
	t.Helper()
	for _, r := range reqs {
		if r.Method == method && r.Path == path && r.Status == status {
			return
		}
	}
	t.Errorf("Harbor never answered %s %s with %d; it received:\n%s", method, path, status, traceOf(reqs))
}

func teamFileDigest(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// teamBlobsOf lists every digest a standard image is made of (manifests, configs, layers), sorted.
func teamBlobsOf(t *testing.T, image string) []string {
	t.Helper()
	a, err := images.Get(image)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	addImage := func(img v1.Image) {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		set[d.String()] = true
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		set[cfg.String()] = true
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			set[ld.String()] = true
		}
	}
	switch a := a.(type) {
	case v1.ImageIndex:
		index, err := a.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, child := range index.Manifests {
			img, err := a.Image(child.Digest)
			if err != nil {
				t.Fatal(err)
			}
			addImage(img)
		}
	case v1.Image:
		addImage(a)
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// teamPlatformConfig is the config digest (docker's image ID) of a standard index's image for arch.
func teamPlatformConfig(t *testing.T, image, arch string) string {
	t.Helper()
	a, err := images.Get(image)
	if err != nil {
		t.Fatal(err)
	}
	index, ok := a.(v1.ImageIndex)
	if !ok {
		t.Fatalf("%s is not an index", image)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, child := range manifest.Manifests {
		if child.Platform != nil && child.Platform.Architecture == arch {
			img, err := index.Image(child.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			return cfg.String()
		}
	}
	t.Fatalf("%s has no %s image", image, arch)
	return ""
}

// teamAssertDirBlobs checks a skopeo dir: copy of a multi-platform image: every blob file's content
// matches its name, and the blobs are exactly the image's manifests, configs and layers.
func teamAssertDirBlobs(t *testing.T, dir, image string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		name := e.Name()
		if len(name) != 64 && !strings.HasSuffix(name, ".manifest.json") {
			continue // version, manifest.json
		}
		// Blobs are named <hex>, per-platform manifests <hex>.manifest.json.
		sum := teamFileDigest(t, filepath.Join(dir, name))
		want := "sha256:" + strings.TrimSuffix(name, ".manifest.json")
		if sum != want {
			t.Errorf("%s: content digest %s", name, sum)
		}
		got = append(got, want)
	}
	sort.Strings(got)
	want := teamBlobsOf(t, image)
	if !slices.Equal(got, want) {
		t.Errorf("dir copy holds %v,\nwant %v", got, want)
	}
}
