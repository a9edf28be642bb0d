package e2e

import (
	"context"
	"runtime"
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

// pullMark returns the number of requests Harbor has logged so far; pullSince(m, mark) returns the ones
// logged after it. Pulls in a scenario run one after another, so a mark isolates one pull's requests.
func pullMark(m *mirror) int { return len(requests(m)) }

func pullSince(m *mirror, mark int) []harbor.Request { return requests(m)[mark:] }

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

// pullAssertFetched fails unless Harbor's proxy cache fetched upstreamRef (e.g. "library/hello:latest")
// from its upstream while serving one of reqs: the image was not cached before.
func pullAssertFetched(t *testing.T, reqs []harbor.Request, upstreamRef string) {
	t.Helper()
	for _, r := range reqs {
		if r.FetchedUpstream == upstreamRef {
			return
		}
	}
	t.Errorf("Harbor never fetched %s from upstream; it received:\n%s", upstreamRef, traceOf(reqs))
}

// pullAssertNotFetched fails if Harbor fetched anything from upstream while serving reqs.
func pullAssertNotFetched(t *testing.T, reqs []harbor.Request) {
	t.Helper()
	for _, r := range reqs {
		if r.FetchedUpstream != "" {
			t.Errorf("Harbor fetched %s from upstream, want it served from cache: %s", r.FetchedUpstream, r)
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
// names, any actions) and was granted pull on each: no leaked challenge scope, no doubled prefix.
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
				continue
			}
			granted := false
			for _, a := range s.Granted {
				granted = granted || a == "pull"
			}
			if !granted {
				t.Errorf("token request for %s was not granted pull: %s", s.Name, r)
			}
		}
	}
	if tokens == 0 {
		t.Errorf("no token request with a scope reached Harbor; it received:\n%s", traceOf(reqs))
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
