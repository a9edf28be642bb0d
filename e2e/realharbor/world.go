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
	w, err := Shared(t).CreateWorld(t.Name())
	if err != nil {
		t.Fatalf("realharbor: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// CreateWorld creates a world in h whose TestID starts with name: its upstreams, their registry
// endpoints and its projects. The caller must Close it.
func (h *Harbor) CreateWorld(name string) (w *World, err error) {
	n := worldCount.Add(1)
	w = &World{
		Harbor:      h,
		HubProject:  fmt.Sprintf("hub-%d", n),
		GHCRProject: fmt.Sprintf("ghcr-%d", n),
		TeamProject: fmt.Sprintf("team-%d", n),
		TestID:      fmt.Sprintf("%s#%d", name, n),
	}
	defer func() {
		if err != nil {
			w.Close()
			w = nil
		}
	}()
	if w.DockerHub, err = harbor.StartDockerHub(); err != nil {
		return w, fmt.Errorf("upstream: %w", err)
	}
	if w.GHCR, err = harbor.StartDockerHub(); err != nil {
		return w, fmt.Errorf("upstream: %w", err)
	}
	if err := h.createProjects(w.HubProject, w.GHCRProject, w.TeamProject, w.DockerHub.URL, w.GHCR.URL); err != nil {
		return w, fmt.Errorf("world %d: %w", n, err)
	}
	return w, nil
}

// Close stops the world's upstreams (its projects stay: the stack is thrown away whole).
func (w *World) Close() { closeHubs(w.DockerHub, w.GHCR) }

// closeHubs closes the upstreams that were started.
func closeHubs(hubs ...*harbor.Hub) {
	for _, hub := range hubs {
		if hub != nil {
			_ = hub.Close()
		}
	}
}

// Requests returns what Harbor's nginx received with this world's TestID, as harbor.Request
// records.
func (w *World) Requests() ([]harbor.Request, error) { return w.Harbor.Requests(w.TestID) }

// WaitRequests is Harbor.WaitRequests for this world's TestID.
func (w *World) WaitRequests(done func([]harbor.Request) bool, timeout time.Duration) ([]harbor.Request, error) {
	return w.Harbor.WaitRequests(w.TestID, done, timeout)
}
