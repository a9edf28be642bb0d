package e2e

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// TestMain stops the real Harbor that the tests of this binary shared, if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	realharbor.StopShared()
	os.Exit(code)
}

// TestRealHarborPullThroughMirror: go-containerregistry pulls an image of Docker Hub through
// Traefik + the plugin (the world's hub project at the root) from a real Harbor v2.15.2 behind
// its own nginx. Harbor must have served it from that proxy-cache project (nginx's log),
// fetched it from the world's upstream (its log), and stored it in the project (Harbor's API).
func TestRealHarborPullThroughMirror(t *testing.T) {
	m := startMirror(t, mirrorOptions{})
	const repo = "library/realharbor-smoke"
	img := testImage(t, images.Single)
	if err := m.DockerHub.Store(context.Background(), repo, "latest", img); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(m.Host+"/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	// A whole pull, config included: Harbor stores a proxied manifest only once it holds every
	// blob the manifest references (it checks every 20 s, and fetches missing ones after 200 s).
	if _, err := pulled.RawConfigFile(); err != nil {
		t.Fatalf("config of %s: %v", ref, err)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc) // the layer reader verifies its digest at EOF
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("layer of %s: %v", ref, err)
		}
	}
	want := digestOf(t, images.Single)
	got, err := pulled.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("pulled %s, want %s", got, want)
	}

	hub := m.HubProject
	reqs := requests(m)
	assertServed(t, reqs, hub+"/"+repo)
	assertConfined(t, reqs, hub)
	servedManifest := false
	for _, r := range reqs {
		if r.Method == "GET" && r.Path == "/v2/"+hub+"/"+repo+"/manifests/latest" && r.Status == 200 {
			servedManifest = true
		}
	}
	if !servedManifest {
		t.Errorf("nginx never served GET /v2/%s/%s/manifests/latest with 200; it received:\n%s", hub, repo, traceOf(reqs))
	}
	fetched := false
	for _, r := range m.DockerHub.Requests() {
		if r.Repository == repo && r.Status == 200 && strings.Contains(r.Path, "/manifests/") {
			fetched = true
		}
	}
	if !fetched {
		t.Errorf("Harbor never fetched %s's manifest from its Docker Hub upstream", repo)
	}
	if _, err := m.World.Harbor.WaitArtifact(hub, repo, want, 2*time.Minute); err != nil {
		t.Error(err)
	}
}
