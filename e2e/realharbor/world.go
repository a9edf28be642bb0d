package realharbor

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harbor"
)

// World is one test's own part of the shared Harbor: its own upstream registries (playing
// Docker Hub and ghcr.io), registry endpoints for them, the proxy-cache projects Hub and GHCR
// on them (public) and a private project Team that alice maintains, all named with a suffix
// no other world of the stack has. Tests running in parallel thus never see each other's
// projects or upstream requests. Nothing is deleted at the end (the stack is thrown away).
type World struct {
	Harbor *Harbor
	// DockerHub and GHCR are this world's upstreams; their logs show what Harbor fetched.
	DockerHub, GHCR *harbor.Hub
	// Project names, e.g. hub-3, ghcr-3, team-3.
	HubProject, GHCRProject, TeamProject string
	// TestID is the value of TestHeader the test's Traefik must set, by which Requests picks
	// the test's requests out of nginx's log.
	TestID string
}

var worldCount atomic.Int64

// NewWorld creates a world for t in the shared Harbor; its upstreams stop when t ends.
func NewWorld(t testing.TB) *World {
	t.Helper()
	h := Shared(t)
	n := worldCount.Add(1)
	w := &World{
		Harbor:      h,
		HubProject:  fmt.Sprintf("hub-%d", n),
		GHCRProject: fmt.Sprintf("ghcr-%d", n),
		TeamProject: fmt.Sprintf("team-%d", n),
		TestID:      fmt.Sprintf("%s#%d", t.Name(), n),
	}
	var err error
	if w.DockerHub, err = harbor.StartDockerHub(); err != nil {
		t.Fatalf("realharbor: upstream: %v", err)
	}
	t.Cleanup(func() { _ = w.DockerHub.Close() })
	if w.GHCR, err = harbor.StartDockerHub(); err != nil {
		t.Fatalf("realharbor: upstream: %v", err)
	}
	t.Cleanup(func() { _ = w.GHCR.Close() })
	if err := h.createProjects(w.HubProject, w.GHCRProject, w.TeamProject, w.DockerHub.URL, w.GHCR.URL); err != nil {
		t.Fatalf("realharbor: world %d: %v", n, err)
	}
	return w
}

// Requests returns what Harbor's nginx received with this world's TestID, as harbor.Request
// records.
func (w *World) Requests() ([]harbor.Request, error) { return w.Harbor.Requests(w.TestID) }

// WaitRequests is Harbor.WaitRequests for this world's TestID.
func (w *World) WaitRequests(done func([]harbor.Request) bool, timeout time.Duration) ([]harbor.Request, error) {
	return w.Harbor.WaitRequests(w.TestID, done, timeout)
}
