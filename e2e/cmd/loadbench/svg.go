package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// svg draws one small bar chart per workload (each with its own scale): the median of every
// front end as a bar, the spread over the rounds as a whisker.
func (r *results) svg() []byte {
	const (
		cols             = 4
		panelW, panelH   = 250, 230
		marginX, headerH = 20, 110
		plotTop, plotBot = 46, 40 // inside a panel: title above, labels below
	)
	colors := map[string]string{feDirect: "#9e9e9e", feTraefik: "#4e79a7", fePlugin: "#e15759", feNginx: "#59a14f"}
	rows := (len(r.workloads) + cols - 1) / cols
	width := marginX*2 + cols*panelW
	height := headerH + rows*panelH + 30
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="30" font-size="20" font-weight="bold">harbormirror load benchmark, %s</text>`+"\n", marginX, r.Started.Format("2006-01-02"))
	p(`<text x="%d" y="52" font-size="12" fill="#444">%s</text>`+"\n", marginX, html.EscapeString(fmt.Sprintf(
		"%s, %d cores (servers on one, load generator on the other); %s rounds × %s; load average %s → %s",
		r.Machine.CPU, r.Machine.Cores, r.Options["rounds"], r.Options["duration"], r.LoadStart, r.LoadEnd)))
	p(`<text x="%d" y="70" font-size="12" fill="#444">Bars: median over the rounds; whiskers: min–max. Each panel has its own scale.</text>`+"\n", marginX)
	// Legend.
	x := marginX
	for _, k := range feOrder {
		label := r.frontendTitle(k)
		p(`<rect x="%d" y="82" width="12" height="12" fill="%s"/><text x="%d" y="93" font-size="12">%s</text>`+"\n", x, colors[k], x+16, html.EscapeString(label))
		x += 30 + 7*len(label)
	}

	for i, w := range r.workloads {
		px := marginX + (i%cols)*panelW
		py := headerH + (i/cols)*panelH
		name, f, higher := metricOf(w)
		better := "higher is better"
		if !higher {
			better = "lower is better"
		}
		p(`<g transform="translate(%d,%d)">`+"\n", px, py)
		p(`<rect x="4" y="0" width="%d" height="%d" fill="#fafafa" stroke="#dddddd"/>`+"\n", panelW-8, panelH-10)
		p(`<text x="%d" y="18" font-size="13" font-weight="bold" text-anchor="middle">%s</text>`+"\n", panelW/2, html.EscapeString(w.Title))
		p(`<text x="%d" y="34" font-size="11" fill="#555" text-anchor="middle">%s (%s)</text>`+"\n", panelW/2, html.EscapeString(name), better)
		stats := map[string]stat{}
		top := 0.0
		for _, k := range feOrder {
			s := statOf(r.values(w, k, f))
			stats[k] = s
			if !math.IsNaN(s.Max) {
				top = math.Max(top, s.Max)
			}
		}
		if top <= 0 {
			top = 1
		}
		top = niceCeil(top * 1.12)
		plotH := float64(panelH - 10 - plotTop - plotBot)
		base := float64(plotTop) + plotH
		// Grid: 0, half, top.
		for _, g := range []float64{0, top / 2, top} {
			y := base - g/top*plotH
			p(`<line x1="44" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/>`+"\n", y, panelW-12, y)
			p(`<text x="40" y="%.1f" font-size="9" fill="#777" text-anchor="end">%s</text>`+"\n", y+3, axisLabel(g))
		}
		barW := 36.0
		gap := (float64(panelW-12-48) - 4*barW) / 5
		for j, k := range feOrder {
			s := stats[k]
			bx := 48 + gap + float64(j)*(barW+gap)
			if math.IsNaN(s.Median) {
				p(`<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#777">n/a</text>`+"\n", bx+barW/2, base-4)
				continue
			}
			h := s.Median / top * plotH
			p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
				bx, base-h, barW, h, colors[k], html.EscapeString(r.frontendTitle(k)), valueLabel(s.Median, w))
			ymin, ymax := base-s.Min/top*plotH, base-s.Max/top*plotH
			cx := bx + barW/2
			p(`<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#222" stroke-width="1"/>`+"\n",
				cx, ymin, ymax, cx-5, ymin, cx+5, cx-5, ymax, cx+5)
			p(`<text x="%.1f" y="%.1f" font-size="9.5" text-anchor="middle">%s</text>`+"\n", cx, math.Min(ymax, base-h)-4, valueLabel(s.Median, w))
			p(`<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#333">%d</text>`+"\n", cx, base+14, j+1)
		}
		rt := r.ratio(w, fePlugin, feTraefik)
		if !math.IsNaN(rt.Median) {
			p(`<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#333">3/2 = %.2f   3/4 = %.2f</text>`+"\n",
				panelW/2, panelH-22, rt.Median, r.ratio(w, fePlugin, feNginx).Median)
		}
		p("</g>\n")
	}
	p("</svg>\n")
	return b.Bytes()
}

func valueLabel(x float64, w workload) string {
	switch {
	case w.Kind == kindPull && x < 1:
		return strconv.FormatFloat(x*1000, 'f', 0, 64) + " ms"
	case w.Kind == kindPull:
		return strconv.FormatFloat(x, 'f', 2, 64) + " s"
	case x >= 10000:
		return strconv.FormatFloat(x/1000, 'f', 1, 64) + "k"
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func axisLabel(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 1000:
		return strconv.FormatFloat(x/1000, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// niceCeil rounds x up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}
