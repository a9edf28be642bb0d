package e2e

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// pullImage is what a pull of one platform image must deliver: its manifest digest, its config
// digest (dockerd's image ID) and its layers.
type pullImage struct {
	Manifest string
	Config   string
	Layers   []string
}

// blobs are the config and layer digests, every blob a full pull of the image fetches.
func (f pullImage) blobs() []string { return append([]string{f.Config}, f.Layers...) }

func pullFactsOf(t *testing.T, img v1.Image) pullImage {
	t.Helper()
	manifest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	config, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	f := pullImage{Manifest: manifest.String(), Config: config.String()}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		f.Layers = append(f.Layers, d.String())
	}
	return f
}

// pullSingleFacts are the facts of images.Single.
func pullSingleFacts(t *testing.T) pullImage {
	t.Helper()
	a, err := images.Get(images.Single)
	if err != nil {
		t.Fatal(err)
	}
	return pullFactsOf(t, a.(v1.Image))
}

// pullHelloPlatforms maps "os/arch" to the facts of each image of the images.Hello manifest list.
func pullHelloPlatforms(t *testing.T) map[string]pullImage {
	t.Helper()
	a, err := images.Get(images.Hello)
	if err != nil {
		t.Fatal(err)
	}
	index := a.(v1.ImageIndex)
	im, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]pullImage{}
	for _, desc := range im.Manifests {
		img, err := index.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[desc.Platform.OS+"/"+desc.Platform.Architecture] = pullFactsOf(t, img)
	}
	if len(out) < 2 {
		t.Fatalf("images.Hello has %d platforms, want a multi-arch manifest list", len(out))
	}
	return out
}

// pullHostPlatform is the platform clients pick from a manifest list on this machine.
func pullHostPlatform() string { return "linux/" + runtime.GOARCH }

// pullOtherPlatform is a platform of images.Hello that is not this machine's.
func pullOtherPlatform(t *testing.T) string {
	t.Helper()
	for p := range pullHelloPlatforms(t) {
		if p != pullHostPlatform() {
			return p
		}
	}
	t.Fatal("images.Hello has no platform other than " + pullHostPlatform())
	return ""
}

// pullStoreTag stores a standard image on an upstream registry under repo:tag.
func pullStoreTag(t *testing.T, st images.Storer, repo, tag, image string) {
	t.Helper()
	a, err := images.Get(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Store(context.Background(), repo, tag, a); err != nil {
		t.Fatalf("store %s:%s: %v", repo, tag, err)
	}
}

// pullTimed runs f and logs how long it took, to see where a scenario spends its time.
func pullTimed(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("TIMING %s: %v", what, time.Since(start).Round(time.Millisecond))
}

// pullMarks count the requests Harbor and the upstreams had logged at a moment; pullSince and
// pullUpstreamSince return the ones logged after it. Pulls in a scenario run one after another,
// so a mark isolates one pull's requests.
type pullMarks struct{ harbor, dockerHub, ghcr int }

func pullMark(m *mirror) pullMarks {
	return pullMarks{len(requests(m)), len(m.DockerHub.Requests()), len(m.GHCR.Requests())}
}

func pullSince(m *mirror, mark pullMarks) []harbor.Request { return requests(m)[mark.harbor:] }

// pullUpstreamSince returns what Harbor asked both upstreams (Docker Hub's names and ghcr.io's
// differ) after mark.
func pullUpstreamSince(m *mirror, mark pullMarks) []harbor.Request {
	return append(upstreamSince(m.DockerHub, mark.dockerHub), upstreamSince(m.GHCR, mark.ghcr)...)
}

// pullWaitCached waits until Harbor has stored digest in project's repository repo: a proxy
// cache stores what it served in the background, tens of seconds after the pull.
func pullWaitCached(t *testing.T, m *mirror, project, repo, digest string) {
	t.Helper()
	pullTimed(t, "Harbor caching "+repo+"@"+digest, func() {
		if _, err := m.World.Harbor.WaitArtifact(project, repo, digest, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}

// pullAssertViaTraefik fails unless every request reached Harbor with the mirror's Host header, i.e.
// through Traefik's entrypoint (Traefik passes the client's Host on) and not around it.
func pullAssertViaTraefik(t *testing.T, reqs []harbor.Request, m *mirror) {
	t.Helper()
	if len(reqs) == 0 {
		t.Errorf("Harbor received no request at all")
	}
	for _, r := range reqs {
		if r.Host != m.Host {
			t.Errorf("request did not come through Traefik (Host %q, want %q): %s", r.Host, m.Host, r)
		}
	}
}

// pullAssertFetched fails unless Harbor's proxy cache GOT each manifest repo:ref (e.g.
// "library/hello", "latest") from its upstream, per upstream's log: the image was not cached.
func pullAssertFetched(t *testing.T, upstream []harbor.Request, repo string, refs ...string) {
	t.Helper()
	pullAssertContent(t, upstream, repo, "manifests", refs...)
}

// pullAssertNotFetched fails if Harbor fetched anything from upstream, per upstream's log: a
// proxy cache only pings upstream (GET /v2/) and asks it whether a tag still names the
// manifest it holds (a HEAD on every pull by tag), and serves the rest from its own storage.
func pullAssertNotFetched(t *testing.T, upstream []harbor.Request) {
	t.Helper()
	for _, r := range upstream {
		ping := r.Method == "GET" && r.Path == "/v2/"
		if !ping && (r.Method != "HEAD" || !strings.Contains(r.Path, "/manifests/")) {
			t.Errorf("Harbor fetched from upstream, want it served from its cache: %s", r)
		}
	}
}

// pullAssertContent fails unless Harbor answered a GET or HEAD of each /v2/<repo>/<kind>/<ref> with 200.
func pullAssertContent(t *testing.T, reqs []harbor.Request, repo, kind string, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		path := "/v2/" + repo + "/" + kind + "/" + ref
		found := false
		for _, r := range reqs {
			if r.Path == path && r.Status == 200 && (r.Method == "GET" || r.Method == "HEAD") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("Harbor never served %s; it received:\n%s", path, traceOf(reqs))
		}
	}
}

// pullAssertBlobsFetched fails unless Harbor answered a GET of each blob of repo with 200: the content
// itself came through the mirror.
func pullAssertBlobsFetched(t *testing.T, reqs []harbor.Request, repo string, digests ...string) {
	t.Helper()
	for _, d := range digests {
		path := "/v2/" + repo + "/blobs/" + d
		found := false
		for _, r := range reqs {
			if r.Path == path && r.Method == "GET" && r.Status == 200 {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("Harbor never answered GET %s with 200; it received:\n%s", path, traceOf(reqs))
		}
	}
}

// pullAssertTokenScopes fails unless every token request asked only for the given repositories (exact
// names, any actions) and each was served to a Bearer token: no leaked challenge scope, no doubled
// prefix, and the token granted pull (Harbor serves no repository without).
func pullAssertTokenScopes(t *testing.T, reqs []harbor.Request, repos ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, r := range repos {
		ok[r] = true
	}
	tokens := 0
	for _, r := range reqs {
		if len(r.Scopes) > 0 {
			tokens++
		}
		for _, s := range r.Scopes {
			if s.Type != "repository" || !ok[s.Name] {
				t.Errorf("token request asked for %s:%s:%s, want only repositories %v: %s", s.Type, s.Name, strings.Join(s.Actions, ","), repos, r)
			}
		}
	}
	if tokens == 0 {
		t.Errorf("no token request with a scope reached Harbor; it received:\n%s", traceOf(reqs))
	}
	for _, repo := range repos {
		if !slices.ContainsFunc(reqs, func(r harbor.Request) bool {
			return r.Repository == repo && r.AuthScheme == "Bearer" && r.Status == 200
		}) {
			t.Errorf("Harbor never served %s to a Bearer token; it received:\n%s", repo, traceOf(reqs))
		}
	}
}

// pullAssertNoNS fails if containerd's ns query parameter reached Harbor.
func pullAssertNoNS(t *testing.T, reqs []harbor.Request) {
	t.Helper()
	for _, r := range reqs {
		if strings.Contains(r.RawQuery, "ns=") {
			t.Errorf("containerd's ns= reached Harbor: %s", r)
		}
	}
}

// pullAssertAccessLog fails unless Traefik's access log holds a line containing every one of parts.
func pullAssertAccessLog(t *testing.T, m *mirror, parts ...string) {
	t.Helper()
	// Traefik writes access log lines asynchronously (buffered); give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := m.Traefik.AccessLog()
		for _, line := range strings.Split(log, "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("Traefik's access log has no line with %q; it has:\n%s", parts, log)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
