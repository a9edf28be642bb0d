package harbor

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
)

// Hub is a fake Docker Hub: a plain distribution registry without auth, the
// upstream of proxy-cache projects. Its repositories are Docker Hub's names
// (library/hello).
type Hub struct {
	// URL is the base URL, e.g. http://127.0.0.1:41235; Host is its host:port.
	URL  string
	Host string

	dir  string
	reg  *registry
	log  requestLog
	http *http.Server
}

// StartDockerHub runs a fake Docker Hub on 127.0.0.1 until Close.
func StartDockerHub() (*Hub, error) {
	dir, err := os.MkdirTemp("", "fakehub-")
	if err != nil {
		return nil, err
	}
	h := &Hub{dir: dir, log: requestLog{prefix: "hub:"}}
	if h.reg, err = newRegistry(dir, nil, true); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	server, listener, err := listen("", h)
	if err != nil {
		return nil, errors.Join(err, h.reg.close(), os.RemoveAll(dir))
	}
	h.http = server
	h.Host = listener.Addr().String()
	h.URL = "http://" + h.Host
	return h, nil
}

// Close stops the hub and removes its storage.
func (h *Hub) Close() error {
	return errors.Join(h.http.Close(), h.reg.close(), os.RemoveAll(h.dir))
}

// Requests returns every request received since start or the last ResetLog.
func (h *Hub) Requests() []Request { return h.log.snapshot() }

// ResetLog forgets the requests received so far.
func (h *Hub) ResetLog() { h.log.reset() }

// Store writes an image or index straight into storage as <repo>:<tag>
// (e.g. "library/hello", "latest"; an empty tag stores by digest only).
func (h *Hub) Store(ctx context.Context, repo, tag string, a Artifact) error {
	return h.reg.store(ctx, repo, tag, a)
}

func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	recorder := &statusRecorder{ResponseWriter: w}
	entry := newRequestEntry(r)
	if route, ok := parseRepositoryPath(r.URL.Path); ok {
		entry.Repository = route.name
		entry.Project, _, _ = strings.Cut(route.name, "/")
	}
	defer func() {
		entry.Status = recorder.statusCode()
		h.log.add(entry)
	}()
	switch r.URL.Path {
	case "/v2/", "/v2":
		serveAPIBase(recorder)
	case "/v2/_catalog":
		names, err := h.reg.repositoryNames(r.Context())
		if err != nil {
			writeHarborError(recorder, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		serveCatalog(recorder, r, names)
	default:
		h.reg.app.ServeHTTP(recorder, r)
	}
}
