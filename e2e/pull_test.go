package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/harbormirror/harbormirror/e2e/clients"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// Pull scenarios: real clients pull through Traefik and the plugin from real Harbor's
// proxy-cache projects. Each one fails unless Harbor's nginx log shows the mapped repository
// served through Traefik (and nothing outside the expected projects), the upstream's log shows
// what Harbor fetched, and every digest the client reports is the seeded image's.

// TestDockerdPullThroughMirror: dockerd with the Traefik host as its only registry mirror pulls
// hello (a multi-arch manifest list, never cached before), hello:v1, the other platform of hello,
// single (not cached before), and hello again from Harbor's cache, all from the Docker Hub project. dockerd silently
// falls back to Docker Hub when a mirror fails: its log must show no such attempt.
func TestDockerdPullThroughMirror(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.ClientDockerd)
	m := startMirror(t, mirrorOptions{})
	seedDockerHub(t, m, images.Hello, images.Single)
	pullStoreTag(t, m.DockerHub, "library/hello", "v1", images.Hello)
	platforms := pullHelloPlatforms(t)
	native, other := platforms[pullHostPlatform()], platforms[pullOtherPlatform(t)]
	helloIndex := digestOf(t, images.Hello)

	var d *clients.Dockerd
	pullTimed(t, "dockerd start", func() {
		d = clients.StartDockerd(t, clients.DockerdOptions{Mirrors: []string{"http://" + m.Host}, InsecureRegistries: []string{m.Host}})
	})
	pull := func(args ...string) {
		t.Helper()
		pullTimed(t, "docker pull "+strings.Join(args, " "), func() {
			if out, err := d.Docker(append([]string{"pull"}, args...)...); err != nil {
				t.Fatalf("%v\nHarbor received:\n%s", err, traceOf(requests(m)))
			} else {
				t.Logf("docker pull %s:\n%s", strings.Join(args, " "), out)
			}
		})
	}
	expectImage := func(ref, repoDigest string, img pullImage, arch string) {
		t.Helper()
		if got := d.ImageDigest(ref); got != repoDigest {
			t.Errorf("%s: repository digest %s, want %s", ref, got, repoDigest)
		}
		if got := d.Inspect(ref, "{{.Id}}"); got != img.Config {
			t.Errorf("%s: image ID %s, want the config digest %s", ref, got, img.Config)
		}
		if got := d.Inspect(ref, "{{.Architecture}}"); got != arch {
			t.Errorf("%s: architecture %s, want %s", ref, got, arch)
		}
	}

	// No subtests: the clients' helpers fail the test that started the client.
	nativeArch := strings.TrimPrefix(pullHostPlatform(), "linux/")

	// hello, first pull of a manifest list: fetched from upstream, then the native platform's
	// manifest and every blob through the mirror.
	hello, single := m.HubProject+"/library/hello", m.HubProject+"/library/single"
	mark := pullMark(m)
	pull("hello")
	reqs := pullSince(m, mark)
	pullAssertFetched(t, pullUpstreamSince(m, mark), "library/hello", "latest", native.Manifest)
	pullAssertContent(t, reqs, hello, "manifests", "latest", helloIndex, native.Manifest)
	pullAssertBlobsFetched(t, reqs, hello, native.blobs()...)
	expectImage("hello", helloIndex, native, nativeArch)
	// What dockerd asked Traefik for, before the plugin mapped it.
	pullAssertAccessLog(t, m, `"HEAD /v2/library/hello/manifests/latest HTTP/1.1" 200 `)

	// hello:v1, a second tag of the same list: dockerd resolves the tag on the mirror and finds
	// the list and the image in its own store.
	mark = pullMark(m)
	pull("hello:v1")
	reqs = pullSince(m, mark)
	pullAssertFetched(t, pullUpstreamSince(m, mark), "library/hello", "v1")
	pullAssertContent(t, reqs, hello, "manifests", "v1")
	expectImage("hello:v1", helloIndex, native, nativeArch)

	// The other platform of the list. dockerd keeps a repository digest on one image only, so the
	// native image goes first; then every blob of the other platform comes through the mirror.
	if _, err := d.Docker("rmi", "hello:latest", "hello:v1"); err != nil {
		t.Fatal(err)
	}
	// Harbor cached the list itself on the first pull but only the platform it was asked for:
	// the other one comes from upstream now.
	mark = pullMark(m)
	pull("--platform", pullOtherPlatform(t), "hello")
	reqs = pullSince(m, mark)
	pullAssertFetched(t, pullUpstreamSince(m, mark), "library/hello", other.Manifest)
	pullAssertContent(t, reqs, hello, "manifests", "latest", other.Manifest)
	pullAssertBlobsFetched(t, reqs, hello, other.blobs()...)
	expectImage("hello", helloIndex, other, strings.TrimPrefix(pullOtherPlatform(t), "linux/"))

	// single, not cached yet: fetched from upstream.
	singleFacts := pullSingleFacts(t)
	mark = pullMark(m)
	pull("single")
	reqs = pullSince(m, mark)
	pullAssertFetched(t, pullUpstreamSince(m, mark), "library/single", "latest")
	pullAssertContent(t, reqs, single, "manifests", "latest")
	// The marker layer is shared with hello, which dockerd already has.
	pullAssertBlobsFetched(t, reqs, single, singleFacts.Config, singleFacts.Layers[len(singleFacts.Layers)-1])
	expectImage("single", singleFacts.Manifest, singleFacts, "amd64")

	// hello again, into an empty image store, once Harbor has stored the native image (in the
	// background, after the first pull): all of it from Harbor's cache. (single would not do:
	// Harbor stores a manifest only when it holds every blob, and dockerd skipped the shared one.)
	pullWaitCached(t, m, m.HubProject, "library/hello", native.Manifest)
	if _, err := d.Docker("rmi", "hello", "single"); err != nil {
		t.Fatal(err)
	}
	mark = pullMark(m)
	pull("hello")
	reqs = pullSince(m, mark)
	pullAssertNotFetched(t, pullUpstreamSince(m, mark))
	pullAssertContent(t, reqs, hello, "manifests", "latest", native.Manifest)
	pullAssertBlobsFetched(t, reqs, hello, native.blobs()...)
	expectImage("hello", helloIndex, native, nativeArch)

	reqs = requests(m)
	pullAssertViaTraefik(t, reqs, m)
	assertServed(t, reqs, hello)
	assertServed(t, reqs, single)
	assertConfined(t, reqs, m.HubProject)
	pullAssertTokenScopes(t, reqs, hello, single)

	// dockerd quietly moves on to Docker Hub when a mirror fails: it must never have tried.
	endpoints := pullDockerdEndpoints(d.Logs())
	if len(endpoints) == 0 {
		t.Errorf("dockerd's log names no endpoint it pulled from (debug logging off?)")
	}
	for _, e := range endpoints {
		if e != "http://"+m.Host+"/" {
			t.Errorf("dockerd tried %s, not only the mirror (endpoints %q)", e, endpoints)
		}
	}
	// The check above sees a fallback: an image the mirror lacks (Harbor answers 404) goes on to
	// Docker Hub, which fails offline.
	seen := len(endpoints)
	if out, err := d.Pull("missing"); err == nil {
		t.Errorf("docker pull missing succeeded: %s", out)
	}
	if tried := pullDockerdEndpoints(d.Logs())[seen:]; !slices.Contains(tried, "https://registry-1.docker.io") {
		t.Errorf("after a 404 from the mirror dockerd tried %q, want a fallback to https://registry-1.docker.io; the fallback check is blind", tried)
	}
}

// pullDockerdEndpoints lists the endpoints dockerd tried, in order, from its debug log lines
// "Trying to pull <name> from <endpoint> v2".
func pullDockerdEndpoints(log string) []string {
	var endpoints []string
	for _, line := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(line, "Trying to pull ")
		if !ok {
			continue
		}
		_, rest, _ = strings.Cut(rest, " from ")
		endpoint, _, _ := strings.Cut(rest, " ")
		endpoints = append(endpoints, endpoint)
	}
	return endpoints
}

// TestContainerdPullRoutesNamespaces: containerd with the Traefik host as the mirror of both
// docker.io and ghcr.io (no override_path) pulls docker.io/library/hello:latest from project hub
// and ghcr.io/owner/single:latest from project ghcr, routed by the ?ns= containerd adds. The ns
// parameter must not reach Harbor, and no token request may carry a leaked or doubled scope.
func TestContainerdPullRoutesNamespaces(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.ClientContainerd)
	m := startMirror(t, mirrorOptions{})
	seedDockerHub(t, m, images.Hello)
	if err := images.Seed(t.Context(), m.GHCR, "owner", images.Single); err != nil {
		t.Fatalf("seed ghcr: %v", err)
	}
	hostsDir := t.TempDir()
	for _, upstream := range []string{"docker.io", "ghcr.io"} {
		clients.WriteHostsToml(t, hostsDir, upstream, clients.HostsMirror{URL: "http://" + m.Host})
	}

	var c *clients.Containerd
	pullTimed(t, "containerd start", func() { c = clients.StartContainerd(t) })
	pull := func(ref string) {
		t.Helper()
		pullTimed(t, "ctr image pull "+ref, func() {
			if out, err := c.Pull(ref, hostsDir); err != nil {
				t.Fatalf("%v\nHarbor received:\n%s", err, traceOf(requests(m)))
			} else {
				t.Logf("ctr image pull %s:\n%s", ref, out)
			}
		})
	}

	// No subtests: the clients' helpers fail the test that started the client.

	// docker.io → the Docker Hub project.
	hello, single := m.HubProject+"/library/hello", m.GHCRProject+"/owner/single"
	native := pullHelloPlatforms(t)[pullHostPlatform()]
	mark := pullMark(m)
	pull("docker.io/library/hello:latest")
	reqs := pullSince(m, mark)
	pullAssertFetched(t, pullUpstreamSince(m, mark), "library/hello", "latest")
	pullAssertContent(t, reqs, hello, "manifests", "latest", digestOf(t, images.Hello), native.Manifest)
	pullAssertBlobsFetched(t, reqs, hello, native.blobs()...)
	assertConfined(t, reqs, m.HubProject)
	pullAssertTokenScopes(t, reqs, hello)
	if got, want := c.ImageDigest("docker.io/library/hello:latest"), digestOf(t, images.Hello); got != want {
		t.Errorf("docker.io/library/hello:latest: digest %s, want %s", got, want)
	}
	// What containerd asked Traefik for, before the plugin mapped it.
	pullAssertAccessLog(t, m, `"HEAD /v2/library/hello/manifests/latest?ns=docker.io HTTP/1.1" 200 `)

	// ghcr.io → the ghcr.io project, on the same mirror host.
	singleFacts := pullSingleFacts(t)
	mark = pullMark(m)
	pull("ghcr.io/owner/single:latest")
	reqs = pullSince(m, mark)
	pullAssertFetched(t, upstreamSince(m.GHCR, mark.ghcr), "owner/single", "latest")
	pullAssertContent(t, reqs, single, "manifests", "latest")
	// The marker layer is shared with hello, which containerd's content store already holds.
	pullAssertBlobsFetched(t, reqs, single, singleFacts.Config, singleFacts.Layers[len(singleFacts.Layers)-1])
	assertConfined(t, reqs, m.GHCRProject)
	pullAssertTokenScopes(t, reqs, single)
	if got := c.ImageDigest("ghcr.io/owner/single:latest"); got != singleFacts.Manifest {
		t.Errorf("ghcr.io/owner/single:latest: digest %s, want %s", got, singleFacts.Manifest)
	}
	pullAssertAccessLog(t, m, `"HEAD /v2/owner/single/manifests/latest?ns=ghcr.io HTTP/1.1" 200 `)

	reqs = requests(m)
	pullAssertViaTraefik(t, reqs, m)
	assertServed(t, reqs, hello)
	assertServed(t, reqs, single)
	assertConfined(t, reqs, m.HubProject, m.GHCRProject)
	pullAssertNoNS(t, reqs)
	if len(m.GHCR.Requests()) == 0 {
		t.Errorf("the fake ghcr.io was never asked: project ghcr did not serve the ghcr.io pull")
	}
}

// TestPodmanPullThroughMirror: podman with the Traefik host as a [[registry.mirror]] of docker.io
// pulls docker.io/library/hello and then the short name hello, both from project hub.
func TestPodmanPullThroughMirror(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.ClientPodman)
	m := startMirror(t, mirrorOptions{})
	seedDockerHub(t, m, images.Hello)
	helloIndex := digestOf(t, images.Hello)
	native := pullHelloPlatforms(t)[pullHostPlatform()]

	p := clients.NewPodman(t)
	clients.WriteRegistriesConf(t, p.RegistriesConf, "docker.io", m.Host, true)

	mark := pullMark(m)
	pullTimed(t, "podman pull docker.io/library/hello", func() {
		if out, err := p.Pull("docker.io/library/hello"); err != nil {
			t.Fatalf("%v\nHarbor received:\n%s", err, traceOf(requests(m)))
		} else {
			t.Logf("podman pull docker.io/library/hello:\n%s", out)
		}
	})
	reqs := pullSince(m, mark)
	pullAssertFetched(t, pullUpstreamSince(m, mark), "library/hello", "latest")
	pullAssertContent(t, reqs, m.HubProject+"/library/hello", "manifests", native.Manifest)
	pullAssertBlobsFetched(t, reqs, m.HubProject+"/library/hello", native.blobs()...)
	if got := p.ImageDigest("docker.io/library/hello:latest"); got != helloIndex {
		t.Errorf("docker.io/library/hello: digest %s, want %s", got, helloIndex)
	}
	if got := pullPodmanImageID(t, p, "docker.io/library/hello:latest"); got != native.Config {
		t.Errorf("docker.io/library/hello: image ID %s, want the config digest %s", got, native.Config)
	}

	// The short name resolves through unqualified-search-registries to docker.io, so to the mirror,
	// and once Harbor has stored the image (in the background, after the pull) from its cache.
	pullWaitCached(t, m, m.HubProject, "library/hello", native.Manifest)
	if _, err := p.Command("rmi", "--all", "--force"); err != nil {
		t.Fatal(err)
	}
	mark = pullMark(m)
	pullTimed(t, "podman pull hello", func() {
		if out, err := p.Pull("hello"); err != nil {
			t.Fatalf("%v\nHarbor received:\n%s", err, traceOf(requests(m)))
		} else {
			t.Logf("podman pull hello:\n%s", out)
		}
	})
	reqs = pullSince(m, mark)
	pullAssertNotFetched(t, pullUpstreamSince(m, mark))
	pullAssertContent(t, reqs, m.HubProject+"/library/hello", "manifests", native.Manifest)
	pullAssertBlobsFetched(t, reqs, m.HubProject+"/library/hello", native.blobs()...)
	if got := p.ImageDigest("hello"); got != helloIndex {
		t.Errorf("hello: digest %s, want %s", got, helloIndex)
	}
	pullAssertAccessLog(t, m, `/v2/library/hello/manifests/`, `HTTP/1.1" 200 `)

	reqs = requests(m)
	pullAssertViaTraefik(t, reqs, m)
	assertServed(t, reqs, m.HubProject+"/library/hello")
	assertConfined(t, reqs, m.HubProject)
	pullAssertTokenScopes(t, reqs, m.HubProject+"/library/hello")
}

// pullPodmanImageID is podman's image ID, the config digest without its algorithm, as sha256:<hex>.
func pullPodmanImageID(t *testing.T, p *clients.Podman, ref string) string {
	t.Helper()
	out, err := p.Command("image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + strings.TrimSpace(out)
}

// TestSkopeoCopyThroughMirror: skopeo copies <mirror>/library/single:latest to a dir: and inspects
// the one-component <mirror>/hello; every file it wrote must hash to its name and the manifest to
// the seeded image's digest.
func TestSkopeoCopyThroughMirror(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.ClientSkopeo)
	m := startMirror(t, mirrorOptions{})
	seedDockerHub(t, m, images.Hello, images.Single)
	single := pullSingleFacts(t)

	dir := filepath.Join(t.TempDir(), "single")
	pullTimed(t, "skopeo copy", func() {
		if out, err := clients.SkopeoCopy(t, "docker://"+m.Host+"/library/single:latest", "dir:"+dir); err != nil {
			t.Fatalf("%v\nHarbor received:\n%s", err, traceOf(requests(m)))
		} else {
			t.Logf("skopeo copy:\n%s", out)
		}
	})
	if got := pullSHA256File(t, filepath.Join(dir, "manifest.json")); got != single.Manifest {
		t.Errorf("copied manifest.json hashes to %s, want %s", got, single.Manifest)
	}
	for _, blob := range single.blobs() {
		if got := pullSHA256File(t, filepath.Join(dir, strings.TrimPrefix(blob, "sha256:"))); got != blob {
			t.Errorf("copied blob %s hashes to %s", blob, got)
		}
	}
	reqs := requests(m)
	pullAssertFetched(t, m.DockerHub.Requests(), "library/single", "latest")
	pullAssertBlobsFetched(t, reqs, m.HubProject+"/library/single", single.blobs()...)

	var got string
	pullTimed(t, "skopeo inspect", func() { got = clients.SkopeoInspectDigest(t, "docker://"+m.Host+"/hello:latest") })
	if want := digestOf(t, images.Hello); got != want {
		t.Errorf("skopeo inspect %s/hello: digest %s, want %s", m.Host, got, want)
	}

	reqs = requests(m)
	pullAssertViaTraefik(t, reqs, m)
	assertServed(t, reqs, m.HubProject+"/library/single")
	assertServed(t, reqs, m.HubProject+"/library/hello")
	assertConfined(t, reqs, m.HubProject)
	pullAssertTokenScopes(t, reqs, m.HubProject+"/library/single", m.HubProject+"/library/hello")
}

func pullSHA256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// TestGGCRImageAndIndexThroughMirror: go-containerregistry reads the one-component <mirror>/single
// as an image and the namespaced <mirror>/library/hello as an index, downloading and verifying every
// manifest and blob (validate re-hashes all of them).
func TestGGCRImageAndIndexThroughMirror(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{})
	seedDockerHub(t, m, images.Hello, images.Single)

	pullTimed(t, "ggcr image "+m.Host+"/single", func() {
		ref, err := name.ParseReference(m.Host+"/single", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("remote.Image(%s): %v\nHarbor received:\n%s", ref, err, traceOf(requests(m)))
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate %s: %v", ref, err)
		}
		if got, want := pullFactsOf(t, img), pullSingleFacts(t); got.Manifest != want.Manifest || got.Config != want.Config {
			t.Errorf("%s: manifest %s config %s, want %s %s", ref, got.Manifest, got.Config, want.Manifest, want.Config)
		}
	})
	reqs := requests(m)
	pullAssertFetched(t, m.DockerHub.Requests(), "library/single", "latest")
	pullAssertBlobsFetched(t, reqs, m.HubProject+"/library/single", pullSingleFacts(t).blobs()...)

	pullTimed(t, "ggcr index "+m.Host+"/library/hello", func() {
		ref, err := name.ParseReference(m.Host+"/library/hello", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		index, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("remote.Index(%s): %v\nHarbor received:\n%s", ref, err, traceOf(requests(m)))
		}
		if err := validate.Index(index); err != nil {
			t.Errorf("validate %s: %v", ref, err)
		}
		if got, err := index.Digest(); err != nil || got.String() != digestOf(t, images.Hello) {
			t.Errorf("%s: digest %v (%v), want %s", ref, got, err, digestOf(t, images.Hello))
		}
	})
	reqs = requests(m)
	pullAssertFetched(t, m.DockerHub.Requests(), "library/hello", "latest")
	for _, img := range pullHelloPlatforms(t) {
		pullAssertContent(t, reqs, m.HubProject+"/library/hello", "manifests", img.Manifest)
		pullAssertBlobsFetched(t, reqs, m.HubProject+"/library/hello", img.blobs()...)
	}

	pullAssertViaTraefik(t, reqs, m)
	assertServed(t, reqs, m.HubProject+"/library/single")
	assertServed(t, reqs, m.HubProject+"/library/hello")
	assertConfined(t, reqs, m.HubProject)
	pullAssertTokenScopes(t, reqs, m.HubProject+"/library/single", m.HubProject+"/library/hello")
}
