// Package images builds the end-to-end test images with go-containerregistry,
// without Docker Hub: deterministic content, so digests are the same on every
// run with the same Go version, and helpers to put them into registries.
package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/harbormirror/harbormirror/e2e/harbor"
)

// Names of the standard images, as Get and Seed take them.
const (
	// Hello is a Docker manifest list of linux/amd64 and linux/arm64 images.
	Hello = "hello"
	// Single is a single-arch linux/amd64 image.
	Single = "single"
	// Large is a linux/amd64 image of several layers, one LargeLayerBytes of random content.
	Large = "large"
)

// LargeLayerBytes is the size of the big file in the Large image's big layer.
const LargeLayerBytes = 50 << 20

// created is the fixed creation time of every image and file, for stable digests.
var created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// file is one regular file of a layer.
type file struct {
	path    string
	content []byte
}

// markerLayer is the tiny layer every image shares, so that a push of a second
// image meets a blob its registry already has.
var markerLayer = sync.OnceValues(func() (v1.Layer, error) {
	return newLayer(gzip.BestSpeed, file{"etc/harbormirror-e2e", []byte("harbormirror e2e test image\n")})
})

// newLayer gzips a tar of files; the gzip bytes are fixed (no timestamp in the
// header), so the layer digest is stable.
func newLayer(level int, files ...file) (v1.Layer, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		header := &tar.Header{Name: f.path, Mode: 0o644, Size: int64(len(f.content)), ModTime: created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(header); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	compressed := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	})
}

// newImage is a Docker image of the marker layer plus layers, for platform.
func newImage(platform v1.Platform, layers ...v1.Layer) (v1.Image, error) {
	marker, err := markerLayer()
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{marker}, layers...)...)
	if err != nil {
		return nil, err
	}
	config, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	config = config.DeepCopy()
	config.OS, config.Architecture, config.Variant = platform.OS, platform.Architecture, platform.Variant
	config.Created = v1.Time{Time: created}
	config.Config.Cmd = []string{"/hello"}
	return mutate.ConfigFile(img, config)
}

// helloImage is the image for one platform of Hello: a file naming it.
func helloImage(image string, platform v1.Platform) (v1.Image, error) {
	text := fmt.Sprintf("hello from the harbormirror e2e image %q for %s/%s\n", image, platform.OS, platform.Architecture)
	layer, err := newLayer(gzip.BestSpeed, file{"hello.txt", []byte(text)})
	if err != nil {
		return nil, err
	}
	return newImage(platform, layer)
}

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

var hello = sync.OnceValues(func() (v1.ImageIndex, error) {
	index := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	for _, platform := range []v1.Platform{amd64, arm64} {
		img, err := helloImage(Hello, platform)
		if err != nil {
			return nil, err
		}
		index = mutate.AppendManifests(index, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &platform},
		})
	}
	return index, nil
})

var single = sync.OnceValues(func() (v1.Image, error) { return helloImage(Single, amd64) })

var large = sync.OnceValues(func() (v1.Image, error) {
	// Random content does not compress: store it, which is also much faster than deflating it.
	big, err := newLayer(gzip.NoCompression, file{"data/large.bin", seededBytes("large", LargeLayerBytes)})
	if err != nil {
		return nil, err
	}
	small1, err := newLayer(gzip.BestSpeed, file{"data/small1.bin", seededBytes("small1", 64<<10)})
	if err != nil {
		return nil, err
	}
	small2, err := newLayer(gzip.BestSpeed, file{"hello.txt", []byte("hello from the harbormirror e2e image \"large\"\n")})
	if err != nil {
		return nil, err
	}
	return newImage(amd64, small1, big, small2)
})

// seededBytes returns n pseudo-random bytes that depend only on seed.
func seededBytes(seed string, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(sha256.Sum256([]byte(seed))).Read(b)
	return b
}

// Get returns a standard image by name: a v1.ImageIndex for Hello, a v1.Image otherwise.
// Images are built once per process.
func Get(image string) (harbor.Artifact, error) {
	switch image {
	case Hello:
		return hello()
	case Single:
		return single()
	case Large:
		return large()
	}
	return nil, fmt.Errorf("no standard image %q", image)
}

// Storer is a registry that takes images straight into its storage: a *harbor.Server or a *harbor.Hub.
type Storer interface {
	Store(ctx context.Context, repo, tag string, a harbor.Artifact) error
}

// Seed stores each named standard image as <namespace>/<image>:latest,
// e.g. Seed(ctx, hub, "library", Hello) gives library/hello:latest.
func Seed(ctx context.Context, st Storer, namespace string, names ...string) error {
	for _, image := range names {
		a, err := Get(image)
		if err != nil {
			return err
		}
		if err := st.Store(ctx, namespace+"/"+image, "latest", a); err != nil {
			return fmt.Errorf("store %s/%s: %w", namespace, image, err)
		}
	}
	return nil
}

// Push uploads an image or index over the registry API over plain HTTP, e.g.
// to "127.0.0.1:41234/team/app:v1" with harbor's admin credentials
// (auth may be nil for anonymous).
func Push(ctx context.Context, ref string, a harbor.Artifact, auth authn.Authenticator) error {
	parsed, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	return remote.Push(parsed, a, remote.WithContext(ctx), remote.WithAuth(auth))
}
