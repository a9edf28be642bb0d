package images

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestHelloIsMultiArch(t *testing.T) {
	a, err := Get(Hello)
	if err != nil {
		t.Fatal(err)
	}
	index, err := a.(v1.ImageIndex).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range index.Manifests {
		platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	if len(platforms) != 2 || platforms[0] != "linux/amd64" || platforms[1] != "linux/arm64" {
		t.Errorf("platforms %v", platforms)
	}
}

func TestLargeHasABigLayer(t *testing.T) {
	a, err := Get(Large)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := a.(v1.Image).Layers()
	if err != nil {
		t.Fatal(err)
	}
	var biggest int64
	for _, layer := range layers {
		size, err := layer.Size()
		if err != nil {
			t.Fatal(err)
		}
		biggest = max(biggest, size)
	}
	if len(layers) < 3 || biggest < LargeLayerBytes {
		t.Errorf("%d layers, biggest %d bytes", len(layers), biggest)
	}
}

func TestDigestsAreStable(t *testing.T) {
	digest := func() v1.Hash {
		img, err := helloImage(Single, amd64)
		if err != nil {
			t.Fatal(err)
		}
		h, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if first, second := digest(), digest(); first != second {
		t.Errorf("two builds: %s and %s", first, second)
	}
	if first, again := seededBytes("x", 32), seededBytes("x", 32); string(first) != string(again) || string(seededBytes("x", 64)) == string(seededBytes("y", 64)) {
		t.Error("seeded content is not a function of its seed")
	}
}
