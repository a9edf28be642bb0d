// Package pullload pulls images through a registry front end many times, concurrently or at a
// steady rate, verifies every digest of every pull against the image that was stored, and samples
// a process's memory and goroutines meanwhile. e2e/cmd/soak (make load, make soak) and the e2e
// smoke test TestSoakConcurrentPulls share it.
package pullload

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// MultiLayerSizes are the sizes of the files of the ten layers of MultiLayer: 3.75 MiB of
// incompressible content, stored uncompressed in gzip, so each blob is a little larger.
var MultiLayerSizes = []int{16 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20, 512 << 10, 256 << 10, 64 << 10}

// MultiLayer is a linux/amd64 Docker image of len(sizes) layers, layer i holding one file of
// sizes[i] pseudo-random bytes. The content depends only on seed and sizes, so the digests are
// the same on every run.
func MultiLayer(seed string, sizes []int) (v1.Image, error) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	layers := make([]v1.Layer, 0, len(sizes))
	for i, n := range sizes {
		content := make([]byte, n)
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
		_, _ = rand.NewChaCha8(sum).Read(content)
		l, err := storedLayer(fmt.Sprintf("data/layer%02d.bin", i), content, created)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	config, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	config = config.DeepCopy()
	config.OS, config.Architecture = "linux", "amd64"
	config.Created = v1.Time{Time: created}
	config.Config.Cmd = []string{"/bin/true"}
	return mutate.ConfigFile(img, config)
}

// storedLayer is a gzip (level 0, no timestamp) of a tar of one file: stable bytes, cheap to build.
func storedLayer(path string, content []byte, modTime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	header := &tar.Header{Name: path, Mode: 0o644, Size: int64(len(content)), ModTime: modTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(header); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
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

// Blob is one content-addressed blob of an image.
type Blob struct {
	Digest v1.Hash
	Size   int64
}

// Expected is what a pull of an image must deliver, taken from the image that was stored.
type Expected struct {
	Manifest v1.Hash
	Config   v1.Hash
	Layers   []Blob
}

// Digests is the number of digests one pull verifies: the manifest, the config and each layer.
func (e Expected) Digests() int { return 2 + len(e.Layers) }

// Bytes is the size of the layers, what one pull downloads apart from manifest and config.
func (e Expected) Bytes() int64 {
	var n int64
	for _, l := range e.Layers {
		n += l.Size
	}
	return n
}

// ExpectedOf computes the digests of img.
func ExpectedOf(img v1.Image) (Expected, error) {
	var e Expected
	var err error
	if e.Manifest, err = img.Digest(); err != nil {
		return e, err
	}
	if e.Config, err = img.ConfigName(); err != nil {
		return e, err
	}
	layers, err := img.Layers()
	if err != nil {
		return e, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return e, err
		}
		size, err := l.Size()
		if err != nil {
			return e, err
		}
		e.Layers = append(e.Layers, Blob{Digest: d, Size: size})
	}
	return e, nil
}
