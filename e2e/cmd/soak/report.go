package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/harbormirror/harbormirror/e2e/internal/pullload"
)

// render writes the markdown report.
func render(r *result) string {
	var b strings.Builder
	o, s := r.o, r.summary
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	if o.mode == "load" {
		w("# harbormirror load: %d pulls, %d at once\n\n", o.pulls, o.concurrency)
	} else {
		w("# harbormirror soak: %.0f pulls/min for %v\n\n", o.rate, o.duration)
	}
	w("Started %s, took %v (pulls: %v). **%d of %d pulls completed, %d errors, %d digests verified.**\n\n",
		r.started.UTC().Format("2006-01-02 15:04:05 UTC"), r.ended.Sub(r.started).Round(time.Second),
		r.runEnd.Sub(r.runStart).Round(100*time.Millisecond), s.Completed, s.Pulls, s.Errors, s.Verified)
	if r.interrupted {
		w("**Interrupted** before the end: the figures cover the pulls until then.\n\n")
	}
	if r.traefikAlive != nil {
		w("**Traefik exited during the run**: %v\n\n", r.traefikAlive)
	}
	w("Command:\n\n```sh\n")
	if o.invokedAs != "" {
		w("%s\n# which ran:\n", o.invokedAs)
	}
	w("%s\n```\n\n", commandLine())

	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPU | %s |\n| cores | %d |\n| memory | %.1f GiB |\n| kernel | %s |\n| Go | %s |\n",
		r.machine.CPU, r.machine.Cores, float64(r.machine.MemoryB)/(1<<30), r.machine.Kernel, r.machine.Go)
	w("| Traefik | v3.6.12 (`%s`), harbormirror from this repository as a local plugin (Yaegi); log INFO, JSON access log to a file, `api.debug` |\n", r.traefikBin)
	w("| load average (1, 5, 15 min) | at start %s; at end %s |\n\n", r.loadStart, r.loadEnd)
	w("Everything runs on this machine without CPU pinning: Traefik, the fake Harbor and the fake Docker Hub " +
		"(distribution v3 on the local filesystem, in this command's process) and the pulling clients share the cores. " +
		"A load average above zero at the start is other work on the machine.\n\n")

	w("## Workload\n\n")
	for i, t := range r.targets {
		w("- `%s`: %d layers, %s of layers (%d digests per pull: manifest, config, layers), manifest %s\n",
			r.targetNames[i], len(t.Want.Layers), mib(t.Want.Bytes()), t.Want.Digests(), short(t.Want.Manifest.String()))
	}
	w("- Harbor project `%s`: a public proxy-cache project of the fake Docker Hub; the plugin's setting is `project: %s`.\n", project, project)
	w("- Each pull is go-containerregistry `remote.Image` on `<traefik>/library/...:latest`, anonymous " +
		"(the `/v2/` ping answered 401, a token from Harbor's token service through the plugin, the manifest), then the config " +
		"and every layer read in full over one shared HTTP client (connections reused between pulls). " +
		"The sha256 of the manifest and config bytes and of every layer's content, and every layer's size, are compared " +
		"with the image that was stored. go-containerregistry's retries are off: a failed request fails its pull.\n")
	for _, p := range r.warmups {
		w("- Warm-up before the measured pulls: one pull of `%s` (fills Harbor's proxy cache from the fake Docker Hub): %v, %d digests verified.\n",
			p.Target, p.Duration.Round(time.Millisecond), p.Verified)
	}
	if o.mode == "load" {
		if o.large > 0 {
			w("- %d pulls: %d of `library/large`, spread evenly, the rest of `library/soak`; ", o.pulls, o.large)
		} else {
			w("- %d pulls of `library/soak`; ", o.pulls)
		}
		if o.concurrency == o.pulls {
			w("all started at once (after a barrier).\n")
		} else {
			w("%d at a time.\n", o.concurrency)
		}
	} else {
		w("- One pull of `library/soak` started every %v (%.0f per minute) for %v; at most %d in flight (a pull due beyond that is skipped and counted); each bounded by %v.\n",
			(time.Duration(float64(time.Minute) / o.rate)).Round(time.Millisecond), o.rate, o.duration, o.maxInFlight, o.timeout)
	}
	w("\n## Pulls\n\n| | |\n|---|---|\n")
	w("| pulls started | %d |\n| completed, every digest verified | %d |\n| errors | %d |\n", s.Pulls, s.Completed, s.Errors)
	if o.mode == "soak" {
		w("| skipped (too many in flight) | %d |\n", s.Skipped)
	}
	w("| digests verified | %d |\n", s.Verified)
	w("| layer bytes read | %s |\n", mib(s.Bytes))
	w("| wall time, first start to last end | %v |\n", s.Wall.Round(time.Millisecond))
	w("| pull time min / median / p90 / p99 / max | %v / %v / %v / %v / %v |\n",
		ms(s.Min), ms(s.Median), ms(s.P90), ms(s.P99), ms(s.Max))
	if s.Wall > 0 {
		w("| layer throughput | %.1f MiB/s, %.1f pulls/s |\n", float64(s.Bytes)/(1<<20)/s.Wall.Seconds(), float64(s.Completed)/s.Wall.Seconds())
	}
	rq := r.requests
	w("| client HTTP requests (warm-up included) | %d: %s; transport errors %d; unexpected statuses %d (not counted: %d `https://` pings, go-containerregistry's first try for a registry named insecure, which fails on the plain-HTTP entrypoint before the `http://` one) |\n",
		rq.Requests, statuses(rq.ByStatus), rq.Failed, rq.Unexpected, rq.HTTPSPings)
	hs := r.harbor
	w("| Harbor received (after the warm-up) | %d requests: %s; %d token requests, %d manifest and %d blob GETs answered 200; proxy-cache fills %d |\n",
		hs.Requests, statusesInt(hs.ByStatus), hs.Tokens, hs.ManifestGets, hs.BlobGets, hs.Fetched)
	w("| … not through Traefik / outside project `%s` | %d / %d |\n", project, hs.NotViaTraefik, hs.OutsideProject)
	w("| Traefik access log lines (warm-up included) | %d |\n\n", r.accessLines)
	if len(s.FirstErrors) > 0 || len(hs.Examples) > 0 {
		w("First errors:\n\n```\n")
		for _, e := range append(append([]string{}, s.FirstErrors...), hs.Examples...) {
			w("%s\n", e)
		}
		w("```\n\n")
	}

	w("## Traefik process\n\n")
	w("VmRSS and VmHWM (peak resident set since start) from `/proc/<pid>/status`; goroutines from `/debug/pprof/goroutine?debug=1` " +
		"on the API entrypoint; fds are Traefik's open file descriptors (mostly sockets); CPU is user+system time since Traefik started. " +
		"Go's HTTP server and client hold one goroutine per client connection and two per backend connection, so goroutines follow open " +
		"connections: Traefik keeps idle connections to Harbor for 90 s.\n\n")
	w("| when | VmRSS | VmHWM | goroutines | fds | threads | CPU |\n|---|---:|---:|---:|---:|---:|---:|\n")
	var during []pullload.Sample
	during = append(during, r.series...)
	for i, p := range r.points {
		w("| %s | %s | %s | %d | %d | %d | %v |\n", p.Label, mib(p.RSS), mib(p.HWM), p.Goroutines, p.FDs, p.Threads, p.CPU.Round(10*time.Millisecond))
		if i == 1 && len(during) > 0 { // after "before"
			maxRSS := slices.MaxFunc(during, func(a, b pullload.Sample) int { return int(a.RSS - b.RSS) })
			maxG := slices.MaxFunc(during, func(a, b pullload.Sample) int { return a.Goroutines - b.Goroutines })
			w("| during: highest VmRSS of %d samples (%s in) | **%s** | %s | %d | %d | %d | %v |\n", len(during), maxRSS.Time.Sub(r.runStart).Round(100*time.Millisecond),
				mib(maxRSS.RSS), mib(maxRSS.HWM), maxRSS.Goroutines, maxRSS.FDs, maxRSS.Threads, maxRSS.CPU.Round(10*time.Millisecond))
			w("| during: most goroutines (%s in) | %s | %s | **%d** | %d | %d | %v |\n", maxG.Time.Sub(r.runStart).Round(100*time.Millisecond),
				mib(maxG.RSS), mib(maxG.HWM), maxG.Goroutines, maxG.FDs, maxG.Threads, maxG.CPU.Round(10*time.Millisecond))
		}
	}
	if len(r.points) >= 3 {
		before, after := r.points[1], r.points[2]
		busy := r.runEnd.Sub(r.runStart)
		cpu := after.CPU - before.CPU
		w("\nPeak resident set (VmHWM) at the end: **%s**. Traefik used %v of CPU during the %v of pulls (%.0f%% of one core).\n",
			mib(r.points[len(r.points)-1].HWM), cpu.Round(10*time.Millisecond), busy.Round(100*time.Millisecond), 100*cpu.Seconds()/busy.Seconds())
	}

	if o.mode == "soak" {
		renderTrend(&b, r)
	}
	return b.String()
}

// renderTrend adds the soak's growth comparison and every sample.
func renderTrend(b *strings.Builder, r *result) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	series := r.series
	rss := pullload.TrendOf(series, r.warmEnd, func(s pullload.Sample) float64 { return float64(s.RSS) / (1 << 20) })
	gor := pullload.TrendOf(series, r.warmEnd, func(s pullload.Sample) float64 { return float64(s.Goroutines) })
	thr := pullload.TrendOf(series, r.warmEnd, func(s pullload.Sample) float64 { return float64(s.Threads) })
	fds := pullload.TrendOf(series, r.warmEnd, func(s pullload.Sample) float64 { return float64(s.FDs) })
	w("\n## Growth\n\n")
	w("%d samples, one every %v. The first %v is warm-up; of the %d samples after it, the mean of the first quarter is compared with the mean of the last quarter. Reported, not asserted.\n\n",
		len(series), r.o.sample, r.o.warmup, rss.Samples)
	w("| | first | last | max | mean, first quarter | mean, last quarter | change |\n|---|---:|---:|---:|---:|---:|---:|\n")
	w("| VmRSS (MiB) | %.1f | %.1f | %.1f | %.1f | %.1f | %+.1f%% |\n", rss.First, rss.Last, rss.Max, rss.FirstQ, rss.LastQ, 100*rss.Change)
	w("| goroutines | %.0f | %.0f | %.0f | %.1f | %.1f | %+.1f%% |\n", gor.First, gor.Last, gor.Max, gor.FirstQ, gor.LastQ, 100*gor.Change)
	w("| open fds | %.0f | %.0f | %.0f | %.1f | %.1f | %+.1f%% |\n", fds.First, fds.Last, fds.Max, fds.FirstQ, fds.LastQ, 100*fds.Change)
	w("| threads | %.0f | %.0f | %.0f | %.1f | %.1f | %+.1f%% |\n\n", thr.First, thr.Last, thr.Max, thr.FirstQ, thr.LastQ, 100*thr.Change)
	w("<details><summary>Every sample</summary>\n\n| t | VmRSS | VmHWM | goroutines | fds | threads | CPU |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range series {
		w("| %v | %s | %s | %d | %d | %d | %v |\n", s.Time.Sub(r.runStart).Round(time.Second), mib(s.RSS), mib(s.HWM), s.Goroutines, s.FDs, s.Threads, s.CPU.Round(10*time.Millisecond))
	}
	w("\n</details>\n")
}

// commandLine is this command's argv, the binary relative to the working directory when under it.
func commandLine() string {
	args := append([]string{}, os.Args...)
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, args[0]); err == nil && !strings.HasPrefix(rel, "..") {
			args[0] = rel
		}
	}
	for i, a := range args {
		if strings.ContainsAny(a, " \"'$") {
			args[i] = fmt.Sprintf("%q", a)
		}
	}
	return strings.Join(args, " ")
}

func statuses(m map[int]int64) string {
	conv := map[int]int{}
	for k, v := range m {
		conv[k] = int(v)
	}
	return statusesInt(conv)
}

func statusesInt(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %d", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19] + "…"
	}
	return digest
}
