package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/internal/pullload"
)

// soakConcurrency is the smoke test's number of pulls, all started at once; make load runs the
// same code with 200 (e2e/cmd/soak).
const soakConcurrency = 10

// TestSoakConcurrentPulls is the smoke test of the load benchmark: concurrent go-containerregistry
// pulls of a 10-layer image through Traefik and the plugin, each reading every layer in full;
// every digest of every pull must match the stored image and no request may fail.
func TestSoakConcurrentPulls(t *testing.T) {
	m := startFakeMirror(t, mirrorOptions{})
	target := soakSeed(t, m, "library/soak")
	pid := pullload.PIDWithCwd(m.Traefik.Dir, "traefik")
	sampler := pullload.NewSampler(pid, "")
	before := sampler.Take("before")
	mark := pullMark(m)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := pullload.NewClient(soakConcurrency)
	pulls := pullload.Concurrent(ctx, client, soakConcurrency, soakConcurrency, func(int) pullload.Target { return target })
	sum := pullload.Summarize(pulls)
	after := sampler.Take("after")

	if sum.Errors != 0 || sum.Completed != soakConcurrency {
		t.Errorf("%d of %d pulls completed, %d failed: %v", sum.Completed, soakConcurrency, sum.Errors, sum.FirstErrors)
	}
	if want := soakConcurrency * target.Want.Digests(); sum.Verified != want {
		t.Errorf("%d digests verified, want %d (%d pulls x manifest, config and %d layers)", sum.Verified, want, soakConcurrency, len(target.Want.Layers))
	}
	if want := int64(soakConcurrency) * target.Want.Bytes(); sum.Bytes != want {
		t.Errorf("%d layer bytes read, want %d", sum.Bytes, want)
	}
	st := client.Requests()
	if st.Failed != 0 || st.Unexpected != 0 {
		t.Errorf("client requests: %d failed, %d unexpected statuses (by status: %v)", st.Failed, st.Unexpected, st.ByStatus)
	}

	// The content came through Traefik and the plugin, from project hub: every layer of every
	// pull was a GET Harbor answered with 200 (go-containerregistry fetches each blob once per pull).
	reqs := pullSince(m, mark)
	pullAssertViaTraefik(t, reqs, m)
	blobGets := map[string]int{}
	for _, r := range reqs {
		if r.Repository != "" && r.Project != "hub" {
			t.Errorf("request outside project hub: %s", r)
		}
		if r.Method == "GET" && r.Status == 200 && r.Repository == "hub/library/soak" {
			blobGets[r.Path]++
		}
	}
	for _, l := range target.Want.Layers {
		path := "/v2/hub/library/soak/blobs/" + l.Digest.String()
		if blobGets[path] != soakConcurrency {
			t.Errorf("Harbor answered %d GETs of %s with 200, want %d", blobGets[path], path, soakConcurrency)
		}
	}

	t.Logf("%d pulls of %d layers (%s each): %d digests verified; pull time median %v, p99 %v, wall %v; "+
		"%d requests (%v); Traefik pid %d RSS %s -> %s, peak %s",
		sum.Completed, len(target.Want.Layers), soakMiB(target.Want.Bytes()), sum.Verified,
		sum.Median.Round(time.Millisecond), sum.P99.Round(time.Millisecond), sum.Wall.Round(time.Millisecond),
		st.Requests, st.ByStatus, pid, soakMiB(before.RSS), soakMiB(after.RSS), soakMiB(after.HWM))
}

// soakSeed stores the 10-layer load image on the mirror's Docker Hub as repo:latest and returns
// the target to pull through the mirror.
func soakSeed(t *testing.T, m *mirror, repo string) pullload.Target {
	t.Helper()
	img, err := pullload.MultiLayer("harbormirror-soak", pullload.MultiLayerSizes)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pullload.ExpectedOf(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DockerHub.Store(context.Background(), repo, "latest", img); err != nil {
		t.Fatalf("store %s: %v", repo, err)
	}
	return pullload.Target{Ref: m.Host + "/" + repo + ":latest", Want: want}
}

func soakMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
