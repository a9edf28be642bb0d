package harbor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// Artifact is what can be stored in a registry: a go-containerregistry v1.Image or v1.ImageIndex.
type Artifact interface {
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}

// registry is a distribution registry on the filesystem.
// The App serves the HTTP API; ns is a second view of the same storage that lets
// the fake write images directly (seeding, proxy-cache fills) without HTTP.
type registry struct {
	app *handlers.App
	ns  distribution.Namespace
}

var quietLogsOnce sync.Once

// newRegistry starts a distribution App storing under dir. authConfig may be
// nil (no auth); relativeURLs is distribution's http.relativeurls.
func newRegistry(dir string, authConfig configuration.Auth, relativeURLs bool) (*registry, error) {
	// distribution logs every request through the global logrus logger; the
	// fake keeps its own request log, so the registry's would only be noise.
	quietLogsOnce.Do(func() { logrus.SetOutput(io.Discard) })

	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": dir},
		// The purger would outlive the App in a long test process.
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
	}
	cfg.Auth = authConfig
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.HTTP.RelativeURLs = relativeURLs

	ctx := context.Background()
	app := handlers.NewApp(ctx, cfg)
	driver := filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 100})
	ns, err := storage.NewRegistry(ctx, driver)
	if err != nil {
		_ = app.Shutdown()
		return nil, err
	}
	return &registry{app: app, ns: ns}, nil
}

func (reg *registry) close() error { return reg.app.Shutdown() }

func (reg *registry) repository(ctx context.Context, name string) (distribution.Repository, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, err
	}
	return reg.ns.Repository(ctx, named)
}

// hasManifest tells whether repo holds the manifest tagged or with digest ref.
func (reg *registry) hasManifest(ctx context.Context, repoName, ref string) (bool, error) {
	repo, err := reg.repository(ctx, repoName)
	if err != nil {
		return false, err
	}
	if dgst, err := digest.Parse(ref); err == nil {
		manifests, err := repo.Manifests(ctx)
		if err != nil {
			return false, err
		}
		return manifests.Exists(ctx, dgst)
	}
	_, err = repo.Tags(ctx).Get(ctx, ref)
	if errors.As(err, new(distribution.ErrTagUnknown)) {
		return false, nil
	}
	return err == nil, err
}

func (reg *registry) hasBlob(ctx context.Context, repoName string, dgst digest.Digest) (bool, error) {
	repo, err := reg.repository(ctx, repoName)
	if err != nil {
		return false, err
	}
	_, err = repo.Blobs(ctx).Stat(ctx, dgst)
	if errors.Is(err, distribution.ErrBlobUnknown) {
		return false, nil
	}
	return err == nil, err
}

// store writes an image or index (with everything it references) into repoName,
// tagged with tag unless tag is empty.
func (reg *registry) store(ctx context.Context, repoName, tag string, a Artifact) error {
	repo, err := reg.repository(ctx, repoName)
	if err != nil {
		return err
	}
	return storeArtifact(ctx, repo, tag, a)
}

func storeArtifact(ctx context.Context, repo distribution.Repository, tag string, a Artifact) error {
	switch a := a.(type) {
	case v1.ImageIndex:
		index, err := a.IndexManifest()
		if err != nil {
			return err
		}
		for _, child := range index.Manifests {
			var err error
			switch {
			case child.MediaType.IsIndex():
				var sub v1.ImageIndex
				if sub, err = a.ImageIndex(child.Digest); err == nil {
					err = storeArtifact(ctx, repo, "", sub)
				}
			case child.MediaType.IsImage():
				var img v1.Image
				if img, err = a.Image(child.Digest); err == nil {
					err = storeArtifact(ctx, repo, "", img)
				}
			}
			if err != nil {
				return fmt.Errorf("index child %s: %w", child.Digest, err)
			}
		}
	case v1.Image:
		if err := storeImageBlobs(ctx, repo, a); err != nil {
			return err
		}
	default:
		return fmt.Errorf("cannot store %T: neither a v1.Image nor a v1.ImageIndex", a)
	}

	mediaType, err := a.MediaType()
	if err != nil {
		return err
	}
	raw, err := a.RawManifest()
	if err != nil {
		return err
	}
	manifest, desc, err := distribution.UnmarshalManifest(string(mediaType), raw)
	if err != nil {
		return err
	}
	manifests, err := repo.Manifests(ctx)
	if err != nil {
		return err
	}
	if _, err := manifests.Put(ctx, manifest); err != nil {
		return err
	}
	if tag == "" {
		return nil
	}
	return repo.Tags(ctx).Tag(ctx, tag, desc)
}

func storeImageBlobs(ctx context.Context, repo distribution.Repository, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, layer := range layers {
		dgst, err := layer.Digest()
		if err != nil {
			return err
		}
		if err := storeBlob(ctx, repo, digest.Digest(dgst.String()), layer.Compressed); err != nil {
			return fmt.Errorf("layer %s: %w", dgst, err)
		}
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	return storeBlob(ctx, repo, digest.Digest(configName.String()), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(config)), nil
	})
}

// storeBlob copies a blob into repo unless the repository already links it.
func storeBlob(ctx context.Context, repo distribution.Repository, dgst digest.Digest, open func() (io.ReadCloser, error)) error {
	blobs := repo.Blobs(ctx)
	if _, err := blobs.Stat(ctx, dgst); err == nil {
		return nil
	}
	content, err := open()
	if err != nil {
		return err
	}
	defer content.Close()
	writer, err := blobs.Create(ctx)
	if err != nil {
		return err
	}
	if _, err := io.Copy(writer, content); err != nil {
		_ = writer.Cancel(ctx)
		return err
	}
	// Commit verifies the content against dgst.
	_, err = writer.Commit(ctx, distribution.Descriptor{Digest: dgst})
	return err
}

// repositoryNames lists every repository, sorted.
func (reg *registry) repositoryNames(ctx context.Context) ([]string, error) {
	var names []string
	err := reg.ns.(distribution.RepositoryEnumerator).Enumerate(ctx, func(name string) error {
		names = append(names, name)
		return nil
	})
	// Storage without any repository has no repositories directory yet.
	if errors.As(err, new(storagedriver.PathNotFoundError)) {
		err = nil
	}
	slices.Sort(names)
	return names, err
}

// serveCatalog answers /v2/_catalog with Harbor's pagination: n and last,
// and a relative Link to the next page when more remain.
func serveCatalog(w http.ResponseWriter, r *http.Request, names []string) {
	query := r.URL.Query()
	if last := query.Get("last"); last != "" {
		i, _ := slices.BinarySearch(names, last)
		for i < len(names) && names[i] <= last {
			i++
		}
		names = names[i:]
	}
	if n, err := strconv.Atoi(query.Get("n")); err == nil && n >= 0 && n < len(names) {
		names = names[:n]
		if n > 0 {
			next := url.Values{"last": {names[n-1]}, "n": {strconv.Itoa(n)}}
			w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?%s>; rel="next"`, next.Encode()))
		}
	}
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"repositories": names})
}

// serveAPIBase answers /v2/ as distribution does once access is granted.
func serveAPIBase(w http.ResponseWriter) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	writeJSON(w, http.StatusOK, struct{}{})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// listen binds addr (127.0.0.1:0 when empty) and serves handler in the background.
func listen(addr string, handler http.Handler) (*http.Server, net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	server := &http.Server{Handler: handler}
	go func() { _ = server.Serve(listener) }()
	return server, listener, nil
}
