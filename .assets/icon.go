//go:build ignore

// The plugin's icon for Traefik's Plugin Catalog (.traefik.yml iconPath): a stack of containers
// above a waterline and its reflection below, a Harbor mirrored. Regenerate with
// `go run .assets/icon.go` from the repository root.
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
)

const size = 256

func main() {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	navy := color.NRGBA{0x1d, 0x35, 0x57, 0xff}
	water := color.NRGBA{0x45, 0x7b, 0x9d, 0xff}
	// A rounded square of navy, the lower half water.
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if inRoundedSquare(x, y, 28) {
				c := navy
				if y >= 140 {
					c = water
				}
				img.Set(x, y, c)
			}
		}
	}
	boxes := []struct {
		x, y int
		c    color.NRGBA
	}{
		{52, 104, color.NRGBA{0xe6, 0x39, 0x46, 0xff}}, {104, 104, color.NRGBA{0xf1, 0xfa, 0xee, 0xff}}, {156, 104, color.NRGBA{0xa8, 0xda, 0xdc, 0xff}},
		{78, 68, color.NRGBA{0xa8, 0xda, 0xdc, 0xff}}, {130, 68, color.NRGBA{0xe6, 0x39, 0x46, 0xff}},
		{104, 32, color.NRGBA{0xf1, 0xfa, 0xee, 0xff}},
	}
	const w, h = 48, 32
	for _, b := range boxes {
		fill(img, b.x, b.y, w, h, b.c)
		// The reflection: mirrored about the waterline at y=140, faded into the water.
		faded := blend(b.c, water, 0.45)
		fill(img, b.x, 2*140-b.y-h, w, h, faded)
	}
	// The waterline.
	fill(img, 24, 138, size-48, 4, color.NRGBA{0xf1, 0xfa, 0xee, 0xff})
	f, err := os.Create(".assets/icon.png")
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

func inRoundedSquare(x, y, r int) bool {
	cx, cy := clamp(x, r, size-1-r), clamp(y, r, size-1-r)
	dx, dy := x-cx, y-cy
	return dx*dx+dy*dy <= r*r
}

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// fill paints a container: a box with vertical ribs.
func fill(img *image.NRGBA, x0, y0, w, h int, c color.NRGBA) {
	rib := blend(c, color.NRGBA{0, 0, 0, 0xff}, 0.18)
	for y := y0 + 2; y < y0+h-2; y++ {
		for x := x0 + 2; x < x0+w-2; x++ {
			p := c
			if (x-x0)%8 == 5 && h > 8 {
				p = rib
			}
			img.Set(x, y, p)
		}
	}
}

func blend(a, b color.NRGBA, t float64) color.NRGBA {
	mix := func(p, q uint8) uint8 { return uint8(float64(p)*(1-t) + float64(q)*t) }
	return color.NRGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 0xff}
}
