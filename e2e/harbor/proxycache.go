package harbor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// serveProxyCache applies a proxy-cache project's rules to an authorized
// request: Docker Hub's implicit "library/" as a 301, no pushes, and a fill
// from upstream of a manifest or blob not cached yet. It reports whether the
// registry should serve the request next.
func (s *Server) serveProxyCache(w http.ResponseWriter, r *http.Request, project Project, route repositoryRoute, entry *Request) bool {
	upstreamName := strings.TrimPrefix(route.name, project.Name+"/")
	isRead := r.Method == http.MethodGet || r.Method == http.MethodHead
	isContent := route.kind == "manifests" || route.kind == "blobs"
	switch {
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		writeHarborError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
			"can not push artifact to a proxy project: "+project.Name)
		return false
	case !isRead || !isContent:
		return true
	case !strings.Contains(upstreamName, "/"):
		// Harbor ≥ 2.7 redirects Docker Hub's one-component names to library/, relative, query kept.
		location := fmt.Sprintf("/v2/%s/library/%s/%s/%s", project.Name, upstreamName, route.kind, route.ref)
		if r.URL.RawQuery != "" {
			location += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusMovedPermanently)
		return false
	}
	fetched, err := s.fillFromUpstream(r.Context(), project, route, upstreamName)
	if err != nil {
		writeHarborError(w, http.StatusInternalServerError, "UNKNOWN", "proxy-cache fetch: "+err.Error())
		return false
	}
	entry.FetchedUpstream = fetched
	return true
}

// fillFromUpstream copies the manifest (with all it references) or blob a
// request asks for from the upstream registry into the project, unless it is
// cached already. It returns what it fetched, empty when nothing; what the
// upstream lacks, or an invalid reference, is left for the registry to answer.
func (s *Server) fillFromUpstream(ctx context.Context, project Project, route repositoryRoute, upstreamName string) (string, error) {
	upstream, err := url.Parse(project.ProxyCacheOf)
	if err != nil {
		return "", err
	}
	cached := func() (bool, error) {
		if route.kind == "blobs" {
			dgst, err := digest.Parse(route.ref)
			if err != nil {
				return true, nil // nothing to fetch for an invalid digest
			}
			return s.reg.hasBlob(ctx, route.name, dgst)
		}
		return s.reg.hasManifest(ctx, route.name, route.ref)
	}
	// Checked before and after taking the lock: cached content, the common
	// case, is served without waiting for another request's fill.
	if ok, err := cached(); ok || err != nil {
		return "", err
	}
	s.fillMu.Lock()
	defer s.fillMu.Unlock()
	if ok, err := cached(); ok || err != nil {
		return "", err
	}

	separator := ":"
	if _, err := digest.Parse(route.ref); err == nil {
		separator = "@"
	}
	ref, err := name.ParseReference(upstream.Host+"/"+upstreamName+separator+route.ref, name.Insecure)
	if err != nil {
		return "", nil
	}
	if route.kind == "blobs" {
		err = s.fetchBlob(ctx, route.name, ref.(name.Digest))
	} else {
		err = s.fetchManifest(ctx, route.name, ref)
	}
	if err != nil {
		return "", ignoreNotFound(err)
	}
	return upstreamName + separator + route.ref, nil
}

func (s *Server) fetchManifest(ctx context.Context, repoName string, ref name.Reference) error {
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	var artifact Artifact
	if desc.MediaType.IsIndex() {
		artifact, err = desc.ImageIndex()
	} else {
		artifact, err = desc.Image()
	}
	if err != nil {
		return err
	}
	tag := ""
	if tagged, ok := ref.(name.Tag); ok {
		tag = tagged.TagStr()
	}
	return s.reg.store(ctx, repoName, tag, artifact)
}

func (s *Server) fetchBlob(ctx context.Context, repoName string, ref name.Digest) error {
	layer, err := remote.Layer(ref, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	repo, err := s.reg.repository(ctx, repoName)
	if err != nil {
		return err
	}
	// remote.Layer is lazy: a blob the upstream lacks fails here.
	return storeBlob(ctx, repo, digest.Digest(ref.DigestStr()), layer.Compressed)
}

// ignoreNotFound drops the upstream's 404, which the registry then answers itself.
func ignoreNotFound(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}
