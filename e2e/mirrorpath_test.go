package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/harbormirror/harbormirror/e2e/clients"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// TestMirrorPath is scenario 6: one registry host serves Harbor itself at its root and, under
// /hub, the Docker Hub proxy-cache project as a Docker Hub mirror ({project: <hub>, mirrorPath: /hub}).
func TestMirrorPath(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{Settings: func(m *mirror) map[string]any {
		return map[string]any{"project": m.HubProject, "mirrorPath": "/hub"}
	}})
	seedDockerHub(t, m, images.Hello)
	t.Run("HarborPassesThrough", func(t *testing.T) { testMirrorPathLeavesHarborAlone(t, m) })
	t.Run("DockerPullUnderPath", func(t *testing.T) { testMirrorPathDockerPull(t, m) })
	t.Run("ContainerdOverridePath", func(t *testing.T) { testMirrorPathContainerd(t, m) })
}

// testMirrorPathContainerd: containerd with the mirror under the path as its docker.io host
// (override_path: the URL names the API root, http://<host>/hub/v2) pulls docker.io/library/hello
// as /hub/v2/library/hello/...?ns=docker.io; it reaches Harbor as <hub>/library/hello, ns gone.
func testMirrorPathContainerd(t *testing.T, m *mirror) {
	clients.Require(t, clients.ClientContainerd)
	hostsDir := t.TempDir()
	clients.WriteHostsToml(t, hostsDir, "docker.io", clients.HostsMirror{URL: "http://" + m.Host + "/hub/v2", OverridePath: true})
	c := clients.StartContainerd(t)
	mark := len(requests(m))
	if _, err := c.Pull("docker.io/library/hello:latest", hostsDir); err != nil {
		t.Fatalf("%v\nHarbor received:\n%s", err, traceOf(requests(m)[mark:]))
	}
	if got, want := c.ImageDigest("docker.io/library/hello:latest"), digestOf(t, images.Hello); got != want {
		t.Errorf("docker.io/library/hello:latest: digest %s, want %s", got, want)
	}
	reqs := requests(m)[mark:]
	hello := m.HubProject + "/library/hello"
	native := pullHelloPlatforms(t)[pullHostPlatform()]
	pullAssertContent(t, reqs, hello, "manifests", "latest", native.Manifest)
	pullAssertBlobsFetched(t, reqs, hello, native.blobs()...)
	pullAssertViaTraefik(t, reqs, m)
	pullAssertNoNS(t, reqs)
	assertConfined(t, reqs, m.HubProject)
	pullAssertTokenScopes(t, reqs, hello)
	pullAssertAccessLog(t, m, `"HEAD /hub/v2/library/hello/manifests/latest?ns=docker.io HTTP/1.1" 200 `)
}

// testMirrorPathLeavesHarborAlone: with a mirror path, everything outside it reaches Harbor as
// sent: a pull of a private project's image with credentials, the token service, Harbor's API
// and paths that merely start with the mirror path's letters.
func testMirrorPathLeavesHarborAlone(t *testing.T, m *mirror) {
	app, err := images.Get(images.Single)
	if err != nil {
		t.Fatal(err)
	}
	appRepo := m.TeamProject + "/app"
	if err := (harborStore{m}).Store(context.Background(), appRepo, "v1", app); err != nil {
		t.Fatal(err)
	}
	mark := len(requests(m))

	// Harbor's own challenge: realm at the host's root, not under /hub.
	resp := mpSend(t, "GET", "http://"+m.Host+"/v2/", nil)
	wantRealm := fmt.Sprintf(`realm="http://%s/service/token"`, m.Host)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Www-Authenticate"), wantRealm) {
		t.Errorf("GET /v2/: %d Www-Authenticate %q, want 401 with %s", resp.StatusCode, resp.Header.Get("Www-Authenticate"), wantRealm)
	}

	// A registry client pulls <team>/app:v1 from the host's root with alice's credentials.
	ref, err := name.ParseReference(m.Host+"/"+appRepo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: m.Alice, Password: m.AlicePassword}))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if err := validate.Image(img); err != nil { // reads every blob and checks its digest
		t.Errorf("pulled %s: %v", ref, err)
	}
	if d, err := img.Digest(); err != nil || d.String() != digestOf(t, images.Single) {
		t.Errorf("pulled %s: digest %v (%v), want %s", ref, d, err, digestOf(t, images.Single))
	}
	reqs := requests(m)[mark:]
	assertServed(t, reqs, appRepo)
	assertConfined(t, reqs, m.TeamProject)
	asked := false
	for _, r := range reqs {
		if r.Repository != "" && !strings.HasPrefix(r.Path, "/v2/"+appRepo+"/") {
			t.Errorf("a request for %s reached Harbor as %s", r.Repository, r.Path)
		}
		for _, s := range r.Scopes {
			asked = asked || (r.Path == "/service/token" && s.Name == appRepo)
		}
	}
	if !asked {
		t.Errorf("no token for %s was asked at /service/token; Harbor received:\n%s", appRepo, traceOf(reqs))
	}

	// Harbor's API, UI and look-alike paths arrive exactly as sent (whatever Harbor answers;
	// what matters is the path it saw).
	for _, target := range []string{
		"/api/v2.0/projects?page=1&page_size=10",
		"/api/v2.0/projects/" + m.TeamProject + "/repositories/app/artifacts",
		"/api/v2.0/systeminfo",
		"/c/login",
		"/hub",
		"/hubble/v2/library/hello/manifests/latest",
		"/v2/_catalog",
		"/service/token?service=harbor-registry&scope=repository%3A" + m.TeamProject + "%2Fapp%3Apull",
	} {
		mark := len(requests(m))
		mpSend(t, "GET", "http://"+m.Host+target, nil)
		reqs := requests(m)[mark:]
		if len(reqs) != 1 {
			t.Errorf("GET %s: Harbor received %d requests:\n%s", target, len(reqs), traceOf(reqs))
		} else if got := reqs[0].Path + mpQueryOf(reqs[0].RawQuery); got != target {
			t.Errorf("GET %s reached Harbor as %s", target, got)
		}
	}
}

// testMirrorPathDockerPull replays the requests of `docker pull hello` by a Docker Engine >= 25
// whose daemon.json has "registry-mirrors": ["http://<host>/hub"]. Docker >= 25 sends
// <path>/v2/<name>/... for a mirror URL with a path. Debian 12's dockerd (20.10) refuses such a
// mirror at start-up ("invalid mirror: path, query, or fragment at end of the URI") and no
// newer Docker is available here, so the requests are sent with net/http, in Docker's order:
// ping, token from the challenge's realm, manifest by tag (HEAD), manifest list and platform
// manifest by digest (GET), then the blobs.
func testMirrorPathDockerPull(t *testing.T, m *mirror) {
	hello := m.HubProject + "/library/hello"
	mark := len(requests(m))
	base := "http://" + m.Host + "/hub"
	type sent struct{ method, path string }
	var client []sent
	do := func(method, path, token string, accept ...string) *mpResponse {
		t.Helper()
		h := http.Header{"User-Agent": {"docker/25.0.5 go/go1.21.8 git-commit/e63daec kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/25.0.5 \\(linux\\))"}}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		for _, a := range accept {
			h.Add("Accept", a)
		}
		client = append(client, sent{method, path})
		return mpSend(t, method, base+path, h)
	}
	manifestTypes := []string{
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.oci.image.manifest.v1+json",
	}

	// 1. Ping: the challenge must send Docker to the token service under /hub.
	resp := do("GET", "/v2/", "")
	challenge := resp.Header.Get("Www-Authenticate")
	realm, service := mpChallengeParam(challenge, "realm"), mpChallengeParam(challenge, "service")
	if resp.StatusCode != http.StatusUnauthorized || realm != "http://"+m.Host+"/hub/service/token" || service != "harbor-registry" {
		t.Fatalf("GET /hub/v2/: %d, Www-Authenticate %q; want 401, realm http://%s/hub/service/token, service harbor-registry",
			resp.StatusCode, challenge, m.Host)
	}

	// 2. Token: Docker asks the realm for its own scope (url.Values order: scope, service).
	tokenURL, err := url.Parse(realm)
	if err != nil {
		t.Fatal(err)
	}
	tokenURL.RawQuery = url.Values{"scope": {"repository:library/hello:pull"}, "service": {service}}.Encode()
	resp = do("GET", strings.TrimPrefix(tokenURL.RequestURI(), "/hub"), "")
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(resp.body, &tok) != nil || tok.Token == "" {
		t.Fatalf("GET %s: %d %s", tokenURL, resp.StatusCode, resp.body)
	}

	// 3. Manifest by tag: HEAD for the digest.
	resp = do("HEAD", "/v2/library/hello/manifests/latest", tok.Token, manifestTypes...)
	listDigest := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || listDigest != digestOf(t, images.Hello) {
		t.Fatalf("HEAD /hub/v2/library/hello/manifests/latest: %d, digest %q, want 200 and %s", resp.StatusCode, listDigest, digestOf(t, images.Hello))
	}

	// 4. The manifest list by digest, then the linux/amd64 manifest by digest.
	var list struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	resp = do("GET", "/v2/library/hello/manifests/"+listDigest, tok.Token, manifestTypes...)
	mpVerify(t, resp, listDigest)
	if err := json.Unmarshal(resp.body, &list); err != nil {
		t.Fatalf("manifest list: %v", err)
	}
	var platformDigest string
	for _, d := range list.Manifests {
		if d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			platformDigest = d.Digest
		}
	}
	if platformDigest == "" {
		t.Fatalf("no linux/amd64 manifest in %s", resp.body)
	}
	var manifest struct {
		Config struct {
			Digest string `json:"digest"`
			Size   int    `json:"size"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
			Size   int    `json:"size"`
		} `json:"layers"`
	}
	resp = do("GET", "/v2/library/hello/manifests/"+platformDigest, tok.Token, manifestTypes...)
	mpVerify(t, resp, platformDigest)
	if err := json.Unmarshal(resp.body, &manifest); err != nil {
		t.Fatalf("platform manifest: %v", err)
	}

	// 5. The config and layer blobs.
	blobs := append([]struct {
		Digest string `json:"digest"`
		Size   int    `json:"size"`
	}{manifest.Config}, manifest.Layers...)
	for _, b := range blobs {
		resp = do("GET", "/v2/library/hello/blobs/"+b.Digest, tok.Token)
		mpVerify(t, resp, b.Digest)
		if len(resp.body) != b.Size {
			t.Errorf("blob %s: %d bytes, manifest says %d", b.Digest, len(resp.body), b.Size)
		}
	}

	// Harbor received the same requests in the same order, each mapped onto <hub>/library/hello.
	reqs := requests(m)[mark:]
	if len(reqs) != len(client) {
		t.Fatalf("sent %d requests, Harbor received %d:\n%s", len(client), len(reqs), traceOf(reqs))
	}
	for i, c := range client {
		r := reqs[i]
		want := c.path
		switch {
		case strings.HasPrefix(c.path, "/v2/library/"):
			want = "/v2/" + m.HubProject + "/" + strings.TrimPrefix(c.path, "/v2/")
			if r.Repository != hello {
				t.Errorf("%s /hub%s reached repository %q, want %s", c.method, c.path, r.Repository, hello)
			}
		case strings.HasPrefix(c.path, "/service/token"):
			want = "/service/token"
			if len(r.Scopes) != 1 || r.Scopes[0].Name != hello || !slices.Equal(r.Scopes[0].Actions, []string{"pull"}) {
				t.Errorf("token request reached Harbor with scopes %+v, want %s pull: %s", r.Scopes, hello, r)
			}
		}
		if r.Method != c.method || r.Path != want {
			t.Errorf("client sent %s /hub%s; Harbor received %s %s, want %s %s", c.method, c.path, r.Method, r.Path, c.method, want)
		}
		if r.Host != m.Host {
			t.Errorf("%s reached Harbor with Host %q, want the client's %q", r.Path, r.Host, m.Host)
		}
	}
	assertServed(t, reqs, hello)
	assertConfined(t, reqs, m.HubProject)
	pullAssertFetched(t, m.DockerHub.Requests(), "library/hello", "latest")
	t.Logf("Harbor received:\n%s", traceOf(reqs))

	// An anonymous repository request under /hub: the challenge sends the client to /hub's
	// token service, with the scope in the client's names.
	mark = len(requests(m))
	resp = mpSend(t, "HEAD", base+"/v2/library/hello/manifests/latest", nil)
	challenge = resp.Header.Get("Www-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || mpChallengeParam(challenge, "realm") != "http://"+m.Host+"/hub/service/token" ||
		mpChallengeParam(challenge, "scope") != "repository:library/hello:pull" {
		t.Errorf("anonymous HEAD /hub/v2/library/hello/manifests/latest: %d, Www-Authenticate %q", resp.StatusCode, challenge)
	}
	if reqs := requests(m)[mark:]; len(reqs) != 1 || reqs[0].Path != "/v2/"+hello+"/manifests/latest" {
		t.Errorf("anonymous HEAD: Harbor received:\n%s", traceOf(reqs))
	}
}

// mpResponse is an answered request with its body read.
type mpResponse struct {
	*http.Response
	body []byte
}

var mpClient = &http.Client{
	Timeout:       30 * time.Second,
	Transport:     &http.Transport{Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// mpSend does one request without following redirects and reads the whole body.
func mpSend(t *testing.T, method, rawURL string, h http.Header) *mpResponse {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h != nil {
		req.Header = h
	}
	resp, err := mpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, rawURL, err)
	}
	return &mpResponse{resp, body}
}

// mpVerify fails unless the response is a 200 whose body hashes to digest (and says so).
func mpVerify(t *testing.T, resp *mpResponse, digest string) {
	t.Helper()
	sum := sha256.Sum256(resp.body)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if resp.StatusCode != http.StatusOK || got != digest {
		t.Fatalf("%s %s: %d, %d bytes hashing to %s, want 200 and %s", resp.Request.Method, resp.Request.URL.Path,
			resp.StatusCode, len(resp.body), got, digest)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != digest {
		t.Errorf("%s: Docker-Content-Digest %s, want %s", resp.Request.URL.Path, h, digest)
	}
}

// mpChallengeParam returns a parameter of a Bearer challenge, e.g. realm.
func mpChallengeParam(challenge, key string) string {
	_, params, _ := strings.Cut(challenge, " ")
	for params != "" {
		var k, v string
		k, params, _ = strings.Cut(params, "=")
		k = strings.TrimSpace(k)
		if strings.HasPrefix(params, `"`) {
			v, params, _ = strings.Cut(params[1:], `"`)
			params = strings.TrimPrefix(params, ",")
		} else {
			v, params, _ = strings.Cut(params, ",")
		}
		if k == key {
			return v
		}
	}
	return ""
}

func mpQueryOf(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	return "?" + rawQuery
}
