package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// The registry runs in a child process of its own (this binary again, with roleEnv set), so that
// it can be pinned to the servers' core while the load generators run on the other one.
const (
	roleEnv         = "LOADBENCH_ROLE"          // "registry": serve the registry (see registryMain)
	registryArgsEnv = "LOADBENCH_REGISTRY_ARGS" // its registryArgs, as JSON
)

// Repositories of the Harbor project every front end serves; clients of the mirrors name them
// without the project.
const (
	project      = "hub"
	manifestRepo = "library/hello"  // a small single-arch image: manifest and token workloads
	smallRepo    = "library/blob1m" // one layer of registryArgs.SmallBlob bytes
	largeRepo    = "library/blob256m"
	pullRepo     = "library/pull10" // ten layers, for the pull wall time
	pullLayers   = 10
)

// registryArgs is what the registry child builds and where it listens.
type registryArgs struct {
	Listen    string `json:"listen"`
	SmallBlob int64  `json:"small_blob"` // bytes of the file in the small blob's tar
	LargeBlob int64  `json:"large_blob"`
	PullTotal int64  `json:"pull_total"` // bytes over the pull image's ten layers (1:2:4:...:512)
}

// registryInfo is the registry child's one line of output once it serves.
type registryInfo struct {
	URL        string     `json:"url"`
	Host       string     `json:"host"`
	SmallBlob  blobInfo   `json:"small_blob"`
	LargeBlob  blobInfo   `json:"large_blob"`
	PullLayers []blobInfo `json:"pull_layers"`
	PullConfig blobInfo   `json:"pull_config"`
	Manifest   blobInfo   `json:"manifest"` // the manifest of manifestRepo:latest
	Error      string     `json:"error,omitempty"`
}

type blobInfo struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// registryMain is the registry child: the e2e fake Harbor with one public project "hub" holding
// the benchmark images, until SIGTERM (or the SIGKILL startProcess asks for when loadbench
// dies). The project is public, not a proxy cache, so that every request is served from local
// storage and costs the same whichever front end sends it.
func registryMain() {
	var args registryArgs
	info, srv, err := func() (registryInfo, *harbor.Server, error) {
		if err := json.Unmarshal([]byte(os.Getenv(registryArgsEnv)), &args); err != nil {
			return registryInfo{}, nil, fmt.Errorf("%s: %w", registryArgsEnv, err)
		}
		return startRegistry(args)
	}()
	if err != nil {
		info.Error = err.Error()
	}
	line, _ := json.Marshal(info)
	fmt.Printf("%s\n", line)
	if err != nil {
		os.Exit(1)
	}
	defer srv.Close()

	// The fake keeps every request in a log for tests; a benchmark sends millions.
	go func() {
		for range time.Tick(time.Second) {
			srv.ResetLog()
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}

func startRegistry(args registryArgs) (registryInfo, *harbor.Server, error) {
	ctx := context.Background()
	srv, err := harbor.Start(harbor.Options{
		Addr:     args.Listen,
		Projects: []harbor.Project{{Name: project, Public: true}},
	})
	if err != nil {
		return registryInfo{}, nil, err
	}
	info := registryInfo{URL: srv.URL, Host: srv.Host}
	fail := func(err error) (registryInfo, *harbor.Server, error) {
		_ = srv.Close()
		return info, nil, err
	}

	hello, err := images.Get(images.Single)
	if err != nil {
		return fail(err)
	}
	if err := srv.Store(ctx, project+"/"+manifestRepo, "latest", hello); err != nil {
		return fail(err)
	}
	raw, err := hello.RawManifest()
	if err != nil {
		return fail(err)
	}
	info.Manifest = blobInfo{Digest: sha256Digest(raw), Size: int64(len(raw))}

	store := func(repo string, sizes ...int64) ([]blobInfo, blobInfo, error) {
		layers := make([]v1.Layer, len(sizes))
		infos := make([]blobInfo, len(sizes))
		for i, size := range sizes {
			b, err := tarLayer(repo+"/"+strconv.Itoa(i), size)
			if err != nil {
				return nil, blobInfo{}, err
			}
			layers[i] = static.NewLayer(b, types.OCIUncompressedLayer)
			infos[i] = blobInfo{Digest: sha256Digest(b), Size: int64(len(b))}
		}
		img, err := benchImage(layers)
		if err != nil {
			return nil, blobInfo{}, err
		}
		if err := srv.Store(ctx, project+"/"+repo, "latest", img); err != nil {
			return nil, blobInfo{}, fmt.Errorf("store %s: %w", repo, err)
		}
		config, err := img.RawConfigFile()
		if err != nil {
			return nil, blobInfo{}, err
		}
		return infos, blobInfo{Digest: sha256Digest(config), Size: int64(len(config))}, nil
	}
	small, _, err := store(smallRepo, args.SmallBlob)
	if err != nil {
		return fail(err)
	}
	large, _, err := store(largeRepo, args.LargeBlob)
	if err != nil {
		return fail(err)
	}
	info.SmallBlob, info.LargeBlob = small[0], large[0]
	if info.PullLayers, info.PullConfig, err = store(pullRepo, pullLayerSizes(args.PullTotal)...); err != nil {
		return fail(err)
	}
	srv.ResetLog()
	return info, srv, nil
}

// pullLayerSizes splits total over the ten layers of the pull image as 1:2:4:...:512, the mix
// of small and large layers of a typical image (64 MiB: 64 KiB up to 32 MiB).
func pullLayerSizes(total int64) []int64 {
	sizes := make([]int64, pullLayers)
	unit := total / (1<<pullLayers - 1)
	for i := range sizes {
		sizes[i] = max(unit<<i, 1)
	}
	return sizes
}

// benchImage is an OCI linux/amd64 image of layers.
func benchImage(layers []v1.Layer) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	config, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	config = config.DeepCopy()
	config.OS, config.Architecture = "linux", "amd64"
	config.Created = v1.Time{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	return mutate.ConfigFile(img, config)
}

// tarLayer is an uncompressed tar of one file of size pseudo-random bytes that depend only on
// name (the layer's digest is the same on every run), so that its digest is also its diff ID.
func tarLayer(name string, size int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(size) + 4096)
	tw := tar.NewWriter(&buf)
	header := &tar.Header{Name: "data/" + name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg,
		ModTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Format: tar.FormatPAX}
	if err := tw.WriteHeader(header); err != nil {
		return nil, err
	}
	src := bufio.NewReaderSize(rand.NewChaCha8(sha256.Sum256([]byte(name))), 1<<20)
	if _, err := io.CopyN(tw, src, size); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha256Digest(b []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}
