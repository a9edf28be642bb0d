package e2e

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestGGCRPullThroughMirror: go-containerregistry pulls a one-component and a namespaced name
// through Traefik and the plugin; the proxy-cache project fetches both from Docker Hub.
func TestGGCRPullThroughMirror(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{})
	seedDockerHub(t, m, "hello", "single")
	for _, ref := range []string{m.Host + "/hello:latest", m.Host + "/library/single:latest"} {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(r)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		want := digestOf(t, map[bool]string{true: "hello", false: "single"}[ref == m.Host+"/hello:latest"])
		if desc.Digest.String() != want {
			t.Errorf("%s: digest %s, want %s", ref, desc.Digest, want)
		}
	}
	reqs := requests(m)
	assertServed(t, reqs, m.HubProject+"/library/hello")
	assertServed(t, reqs, m.HubProject+"/library/single")
	assertConfined(t, reqs, m.HubProject)
	upstream := m.DockerHub.Requests()
	pullAssertFetched(t, upstream, "library/hello", "latest")
	pullAssertFetched(t, upstream, "library/single", "latest")
}
