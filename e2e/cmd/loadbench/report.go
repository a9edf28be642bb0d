package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/prometheus/procfs"

	"github.com/harbormirror/harbormirror/e2e/internal/readme"
)

// results is everything a run measured, as written to the JSON file.
type results struct {
	Machine        machine                        `json:"machine"`
	Options        map[string]string              `json:"options"`
	Started        time.Time                      `json:"started"`
	Elapsed        time.Duration                  `json:"elapsed_ns"`
	LoadStart      string                         `json:"load_average_start"`
	LoadEnd        string                         `json:"load_average_end"`
	Registry       registryInfo                   `json:"registry"`
	Frontends      []frontendInfo                 `json:"frontends"`
	Workloads      []workloadInfo                 `json:"workloads"`
	Samples        map[string]map[string][]sample `json:"samples"` // workload → front end → one per round
	Memory         map[string][]memory            `json:"memory"`  // front end → after start, at the end
	RegistryMemory memory                         `json:"registry_memory"`
	Profiles       []profileSummary               `json:"profiles,omitempty"`
	Notes          []string                       `json:"notes,omitempty"`

	workloads []workload
}

type machine struct {
	CPU     string  `json:"cpu"`
	Cores   int     `json:"cores"`
	MemGiB  float64 `json:"mem_gib"`
	OS      string  `json:"os"`
	Kernel  string  `json:"kernel"`
	Go      string  `json:"go"`
	Traefik string  `json:"traefik"`
	Nginx   string  `json:"nginx"`
	Wrk     string  `json:"wrk"`
	Host    string  `json:"host"`
}

type frontendInfo struct {
	Key       string `json:"key"`
	Title     string `json:"title"`
	Challenge string `json:"challenge"` // the 401's Www-Authenticate as its clients see it
}

type workloadInfo struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	Kind  string `json:"kind"`
	Conns int    `json:"conns,omitempty"`
	Small bool   `json:"small,omitempty"`
	Blob  bool   `json:"blob,omitempty"`
}

type profileSummary struct {
	Frontend     string      `json:"frontend"`
	Workload     string      `json:"workload"`
	Load         string      `json:"load"`
	Requests     int64       `json:"requests"`
	Stem         string      `json:"stem"` // the files: <stem>-cpu.pprof, -allocs-before.pprof, -allocs-after.pprof
	Bytes        int64       `json:"bytes"`
	RunSecs      float64     `json:"run_s"`
	ProfileSecs  float64     `json:"profile_s"`
	Attribution  attribution `json:"attribution"`
	CPU          string      `json:"cpu_top"`
	Allocs       string      `json:"alloc_space_top"`
	AllocObjects string      `json:"alloc_objects_top"`
}

func newResults(o *options, ws []workload) *results {
	r := &results{
		Machine:   describeMachine(o),
		Samples:   map[string]map[string][]sample{},
		Memory:    map[string][]memory{},
		workloads: ws,
		Options: map[string]string{
			"rounds": strconv.Itoa(o.rounds), "duration": o.duration.String(), "quick": strconv.FormatBool(o.quick),
			"pulls": strconv.Itoa(o.pulls), "small-blob": units.BytesSize(float64(o.smallBlob)), "large-blob": units.BytesSize(float64(o.largeBlob)),
			"pull-size": units.BytesSize(float64(o.pullTotal)), "server-cpus": o.serverCPUs, "client-cpus": o.clientCPUs,
			"requests": strconv.Itoa(o.maxRequests), "profile": strconv.FormatBool(o.profile),
		},
	}
	for _, w := range ws {
		r.Workloads = append(r.Workloads, workloadInfo{Key: w.Key, Title: w.Title, Kind: w.Kind, Conns: w.Conns, Small: w.Small, Blob: w.Blob})
	}
	return r
}

func (r *results) add(w, fe string, s sample) {
	if r.Samples[w] == nil {
		r.Samples[w] = map[string][]sample{}
	}
	r.Samples[w][fe] = append(r.Samples[w][fe], s)
}

func (r *results) finish() {
	for _, w := range r.workloads {
		for fe, ss := range r.Samples[w.Key] {
			for i, s := range ss {
				if s.Problem != "" {
					r.Notes = append(r.Notes, fmt.Sprintf("%s via %s, round %d: %s", w.Key, fe, i+1, s.Problem))
				}
			}
		}
	}
}

// readResults loads a run's JSON file, to write its report again (-render).
func readResults(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &results{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, w := range r.Workloads {
		r.workloads = append(r.workloads, workload{Key: w.Key, Title: w.Title, Kind: w.Kind, Conns: w.Conns, Small: w.Small, Blob: w.Blob})
	}
	return r, nil
}

// ---- statistics ----

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stat is a median with its spread over the rounds.
type stat struct{ Median, Min, Max float64 }

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	return stat{median(xs), slices.Min(xs), slices.Max(xs)}
}

// metric is the figure a workload is judged by: req/s, MB/s for blobs, or the pull's wall time
// (lower is better).
func metricOf(w workload) (name string, value func(sample) float64, higherBetter bool) {
	switch {
	case w.Kind == kindPull:
		return "wall time, s", func(s sample) float64 { return s.Seconds }, false
	case w.Blob:
		return "MB/s", func(s sample) float64 { return s.MBPerSec }, true
	}
	return "req/s", func(s sample) float64 { return s.ReqPerSec }, true
}

func (r *results) values(w workload, fe string, f func(sample) float64) []float64 {
	var out []float64
	for _, s := range r.Samples[w.Key][fe] {
		out = append(out, f(s))
	}
	return out
}

// ratio is front end a's performance over b's: medians, and the spread of the per-round ratios
// (within a round the two ran back to back). Above 1 means a did better, for times too.
func (r *results) ratio(w workload, a, b string) stat {
	_, f, higher := metricOf(w)
	va, vb := r.values(w, a, f), r.values(w, b, f)
	if len(va) == 0 || len(vb) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	div := func(x, y float64) float64 {
		if higher {
			return x / y
		}
		return y / x
	}
	var per []float64
	for i := range min(len(va), len(vb)) {
		per = append(per, div(va[i], vb[i]))
	}
	s := statOf(per)
	s.Median = div(median(va), median(vb))
	return s
}

// ---- writing ----

func (r *results) stem() string {
	return r.Started.Format("2006-01-02") + "-" + r.Machine.slug()
}

func (m machine) slug() string {
	s := strings.ToLower(m.CPU)
	s = regexp.MustCompile(`\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core`).ReplaceAllString(s, " ")
	s = strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(s, "-"), "-")
	if s == "" {
		s = "unknown-cpu"
	}
	return fmt.Sprintf("%s-%dcpu", s, m.Cores)
}

// write writes <stem>.md and .json into dir, and the report again as latest.md.
func (r *results) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	stem := r.stem()
	md := r.markdown()
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	var paths []string
	for name, data := range map[string][]byte{stem + ".md": md, stem + ".json": js, "latest.md": md} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths, nil
}

// column is a front end's column heading: the Traefik front ends with a plugin read as
// additions to Traefik alone.
var column = map[string]string{feDirect: "registry directly", feTraefik: "Traefik alone", feEmpty: "+ empty plugin",
	feWrapper: "+ one-method wrapper", fePlugin: "+ harbormirror", feNginx: "nginx recipe"}

func (r *results) frontendTitle(key string) string {
	for _, fe := range r.Frontends {
		if fe.Key == key {
			return fe.Title
		}
	}
	return key
}

// cpuPer is the median over the rounds of the CPU time front end fe (or, for the registry
// directly, the registry) used per unit of w's work.
func (r *results) cpuPer(w workload, fe string) float64 {
	_, per := cpuUnit(w)
	return median(r.values(w, fe, func(s sample) float64 {
		if fe == feDirect {
			return s.RegistryCPU / per(s)
		}
		return s.FrontendCPU / per(s)
	}))
}

// floorsTable is each workload's CPU per unit of work of Traefik alone, and what each Yaegi
// front end adds to it; then harbormirror's cost above each floor.
func (r *results) floorsTable(p func(string, ...any)) {
	p("| workload | unit | Traefik alone | empty plugin − Traefik | one-method wrapper − Traefik | harbormirror − Traefik | harbormirror − empty plugin | harbormirror − wrapper |\n|---|---|---|---|---|---|---|---|\n")
	for _, w := range r.workloads {
		if w.Kind == kindPull {
			continue // a few pulls' CPU time is within /proc's 10 ms resolution
		}
		unit, _ := cpuUnit(w)
		t, e, wr, h := r.cpuPer(w, feTraefik), r.cpuPer(w, feEmpty), r.cpuPer(w, feWrapper), r.cpuPer(w, fePlugin)
		p("| %s | %s | %s | %s | %s | **%s** | %s | **%s** |\n", w.Title, unit, fmtCPU(t), fmtCPU(e-t), fmtCPU(wr-t), fmtCPU(h-t), fmtCPU(h-e), fmtCPU(h-wr))
	}
}

func (r *results) markdown() []byte {
	var b bytes.Buffer
	m := r.Machine
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# harbormirror load benchmark, %s\n\n", r.Started.Format("2006-01-02"))
	p("Generated by `make loadbench` (e2e/cmd/loadbench; see bench/README.md). Do not edit.\n\n")
	if r.smoke() {
		p("**Smoke run** (-quick or -requests): one short round; the figures show that every path works, and little more.\n\n")
	}
	p("| machine | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d (servers pinned to CPU %s, load generators to CPU %s) |\n", m.CPU, m.Cores, orNone(r.Options["server-cpus"]), orNone(r.Options["client-cpus"]))
	p("| memory | %.1f GiB |\n| OS | %s, kernel %s |\n", m.MemGiB, m.OS, m.Kernel)
	p("| Go | %s |\n| Traefik | %s |\n| nginx | %s |\n| load generators | %s; vegeta v12.13.0 (in loadbench); go-containerregistry |\n", m.Go, m.Traefik, m.Nginx, m.Wrk)
	p("| load average (1/5/15 min) | %s at start, %s at end |\n", r.LoadStart, r.LoadEnd)
	p("| run | %s rounds × %s per load run, %s pulls per round; started %s, took %s |\n\n",
		r.Options["rounds"], r.Options["duration"], r.Options["pulls"], r.Started.UTC().Format("15:04 MST"), r.Elapsed.Round(time.Second))
	if ld := loadFloat(r.LoadStart); ld > float64(m.Cores)/2 {
		p("The machine was busy with other work (load average %s at start on %d cores): absolute figures are low and noisy; "+
			"the ratios compare front ends measured back to back within each round.\n\n", r.LoadStart, m.Cores)
	}

	p("Front ends, all on the same registry (the e2e fake Harbor: distribution v3 with Harbor's token service, project `hub`), " +
		"with the 401 challenge as their clients see it. The empty plugin and the wrapper are yaegitest/testdata/floorplugins, " +
		"the plugin of the Go benchmarks BenchmarkYaegiEmptyPlugin and BenchmarkYaegiEmptyWrapper, in front of Traefik alone's replacePathRegex.\n\n")
	for _, fe := range r.Frontends {
		p("- **%s**: `%s`\n", fe.Title, fe.Challenge)
	}

	p("\n## Throughput and latency\n\nEach cell: median over the rounds [min–max]. Ratios: of the medians (above 1: harbormirror did better; " +
		"for the pull, the inverse of the time ratio), with the range of the per-round ratios.\n\n")
	p("| workload | metric |")
	for _, k := range feOrder {
		p(" %s |", column[k])
	}
	p(" harbormirror ÷ Traefik | harbormirror ÷ nginx |\n|---|---|%s\n", strings.Repeat("---|", len(feOrder)+2))
	for _, w := range r.workloads {
		name, f, _ := metricOf(w)
		tool := map[string]string{kindVegeta: "vegeta", kindWrk: "wrk", kindPull: "go-containerregistry"}[w.Kind]
		p("| %s <sub>%s</sub> | %s |", w.Title, tool, name)
		for _, k := range feOrder {
			p(" %s |", fmtStat(statOf(r.values(w, k, f)), w))
		}
		p(" %s | %s |\n", fmtRatio(r.ratio(w, fePlugin, feTraefik)), fmtRatio(r.ratio(w, fePlugin, feNginx)))
		if w.Kind == kindPull {
			continue
		}
		p("| | p50 / p99, ms |")
		for _, k := range feOrder {
			p50 := median(r.values(w, k, func(s sample) float64 { return s.P50ms }))
			p99 := median(r.values(w, k, func(s sample) float64 { return s.P99ms }))
			p(" %s / %s |", fmtMS(p50), fmtMS(p99))
		}
		p(" | |\n")
	}

	p("\n## CPU time of the servers\n\n")
	p("CPU time (user + system, from /proc/<pid>/stat) the front end's processes used during each run, divided by the work done " +
		"(the registry's own for \"registry directly\"): less sensitive to other load on the machine than throughput. Median over the rounds.\n\n")
	p("| workload | unit |")
	for _, k := range feOrder {
		p(" %s |", column[k])
	}
	p("\n|---|---|%s\n", strings.Repeat("---|", len(feOrder)))
	for _, w := range r.workloads {
		unit, _ := cpuUnit(w)
		p("| %s | %s |", w.Title, unit)
		for _, k := range feOrder {
			p(" %s |", fmtCPU(r.cpuPer(w, k)))
		}
		p("\n")
	}
	p("\n### Against the floors\n\nWhat each Yaegi front end adds to Traefik alone, from the table above: the empty plugin is what any " +
		"Yaegi plugin costs, the one-method wrapper what any plugin that rewrites responses costs; harbormirror's cost above each " +
		"is what its own code adds. The floors keep Traefik alone's replacePathRegex, so each is Traefik alone plus exactly its plugin; " +
		"harbormirror maps the paths itself.\n\n")
	r.floorsTable(p)

	p("\n## Memory of the front end\n\nResident set of the front end's processes (nginx: master and worker), from /proc/<pid>/status. ")
	p("Peak: VmHWM at the end of the run (every workload, the %s blob included); idle: VmRSS after start-up and the checks.\n\n", r.Options["large-blob"])
	p("| |")
	for _, k := range feOrder[1:] {
		p(" %s |", column[k])
	}
	p(" harbormirror − Traefik | harbormirror − empty plugin |\n|---|%s\n", strings.Repeat("---|", len(feOrder)+1))
	mem := r.memMiB
	for _, row := range []struct {
		name string
		peak bool
	}{{"idle RSS, MiB", false}, {"peak RSS (VmHWM), MiB", true}} {
		p("| %s |", row.name)
		for _, k := range feOrder[1:] {
			p(" %.1f |", mem(k, row.peak))
		}
		p(" %+.1f | %+.1f |\n", mem(fePlugin, row.peak)-mem(feTraefik, row.peak), mem(fePlugin, row.peak)-mem(feEmpty, row.peak))
	}
	p("\nThe registry itself peaked at %.1f MiB.\n\n", float64(r.RegistryMemory.HWM)/(1<<20))

	p("## Targets (harbormirror against Traefik alone)\n\n| target | measured | |\n|---|---|---|\n")
	for _, w := range r.workloads {
		goal, ok := targetOf(w)
		if !ok {
			continue
		}
		rt := r.ratio(w, fePlugin, feTraefik)
		p("| %s: harbormirror ÷ Traefik ≥ %.2f | %.3f | %s |\n", w.Title, goal, rt.Median, verdict(rt.Median, goal, true))
	}
	diff := mem(fePlugin, true) - mem(feTraefik, true)
	p("| peak RSS: harbormirror − Traefik ≤ 10 MB | %+.1f MiB (%+.1f MB) | %s |\n\n", diff, diff*(1<<20)/1e6, verdict(diff*(1<<20)/1e6, 10, false))

	p("## Workloads\n\n")
	p("- Servers: the registry and the front end under test share one core (taskset); wrk (one thread), vegeta and the pulls run on the other. " +
		"Each HTTP load is a closed loop: every connection sends its next request when its response has been read.\n")
	p("- Manifest HEAD and GET (`/v2/library/hello/manifests/latest`, %d-byte manifest) with a pull token that each front end's own token mapping issued. "+
		"wrk 4.1 cannot measure HEAD (it waits for the body a HEAD response's Content-Length announces), so vegeta (Go) sends the HEADs; "+
		"the GET with wrk is the same exchange with the body.\n", r.Registry.Manifest.Size)
	p("- Token GET: `/service/token?scope=repository%%3Alibrary%%2Fhello%%3Apull&service=harbor-registry` (Traefik alone and the floors map paths only: their clients ask for `hub/library/hello`). Every token is signed (ES256) by the registry.\n")
	p("- 401 challenge: the manifest GET without a token.\n")
	p("- Blobs: %d and %d bytes (uncompressed tar layers of %s and %s of random data), GET with the token; MB/s = 10^6 bytes of response bodies per second.\n",
		r.Registry.SmallBlob.Size, r.Registry.LargeBlob.Size, r.Options["small-blob"], r.Options["large-blob"])
	var pullBytes int64
	for _, l := range r.Registry.PullLayers {
		pullBytes += l.Size
	}
	p("- Pull: go-containerregistry, fresh connections each time: ping, challenge, token, manifest, config, then ten layers (%.1f MB in all, 1:2:…:512) three at a time, every digest checked; the median of %s pulls per round.\n\n", float64(pullBytes)/1e6, r.Options["pulls"])

	if len(r.Profiles) > 0 {
		p("## Profiles\n\nCPU profiles (Go pprof from Traefik's api.debug, 100 Hz) and the allocations made meanwhile, of Traefik alone and with harbormirror under load after the rounds. " +
			"The .pprof files stay in bench/out (not committed).\n\n")
		p("Where the CPU time goes: each sample goes to the interpreted plugin when a Yaegi frame is closer to the leaf than any of " +
			"Traefik's proxy, transport or connection-writing frames (which Traefik alone runs too); the collector's background work " +
			"is shown apart, since the plugin's allocations drive much of it. µs per request (per MB for blobs).\n\n")
		p("| workload | front end | total | plugin's interpreted code: Yaegi / reflect / allocation / other | GC, background | allocation, elsewhere | syscalls | other Go code |\n|---|---|---|---|---|---|---|---|\n")
		for _, pr := range r.Profiles {
			units := float64(pr.Requests)
			for _, w := range r.workloads {
				if w.Key == pr.Workload && w.Blob {
					units = float64(pr.Bytes) / 1e6
				}
			}
			u := func(sec float64) string { return fmtUS(perUnit(sec, units, pr.ProfileSecs, pr.RunSecs)) }
			at := pr.Attribution
			pp := at.PluginParts
			plugin := "—"
			if at.Buckets[bucketPlugin] > 0 {
				plugin = fmt.Sprintf("**%s**: %s / %s / %s / %s", u(at.Buckets[bucketPlugin]), u(pp["yaegi"]), u(pp["reflect"]), u(pp["allocation"]), u(pp["other"]))
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", pr.Workload, r.frontendTitle(pr.Frontend), u(at.Total), plugin,
				u(at.Buckets[bucketGC]), u(at.Buckets[bucketAlloc]), u(at.Buckets[bucketSyscall]), u(at.Buckets[bucketOtherCode]))
		}
		p("\n")
		for _, pr := range r.Profiles {
			p("### %s under %s\n\n%s\n\nCPU, flat:\n\n```\n%s\n```\n\nAllocated objects during the load:\n\n```\n%s\n```\n\nAllocated bytes during the load:\n\n```\n%s\n```\n\n",
				r.frontendTitle(pr.Frontend), pr.Workload, pr.Load, pr.CPU, pr.AllocObjects, pr.Allocs)
		}
	}
	if len(r.Notes) > 0 {
		p("## Problems seen\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	return b.Bytes()
}

func (r *results) smoke() bool { return r.Options["quick"] == "true" || r.Options["requests"] != "0" }

// cpuUnit is what a workload's CPU time is divided by: requests (µs each), megabytes for
// blobs (µs per MB), pulls (ms each).
func cpuUnit(w workload) (string, func(sample) float64) {
	switch {
	case w.Kind == kindPull:
		return "ms per pull", func(s sample) float64 { return float64(len(s.PullSeconds)) / 1e3 }
	case w.Blob:
		return "µs per MB", func(s sample) float64 { return float64(s.Bytes) / 1e6 / 1e6 }
	}
	return "µs per request", func(s sample) float64 { return float64(s.Requests) / 1e6 }
}

func fmtCPU(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "—"
	case math.Abs(x) >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func verdict(got, goal float64, atLeast bool) string {
	switch {
	case math.IsNaN(got):
		return "not measured"
	case atLeast && got >= goal, !atLeast && got <= goal:
		return "met"
	case atLeast:
		return fmt.Sprintf("**missed** by %.3f (%.1f%% below)", goal-got, (goal-got)/goal*100)
	default:
		return fmt.Sprintf("**missed** by %.1f MB", got-goal)
	}
}

func fmtStat(s stat, w workload) string {
	if math.IsNaN(s.Median) {
		return "—"
	}
	f := func(x float64) string {
		switch {
		case w.Kind == kindPull:
			return strconv.FormatFloat(x, 'f', 3, 64)
		case x >= 100:
			return thousands(int64(math.Round(x)))
		default:
			return strconv.FormatFloat(x, 'f', 1, 64)
		}
	}
	return fmt.Sprintf("**%s** [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func fmtRatio(s stat) string {
	if math.IsNaN(s.Median) {
		return "—"
	}
	return fmt.Sprintf("**%.2f** [%.2f–%.2f]", s.Median, s.Min, s.Max)
}

func fmtMS(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	if x >= 100 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func loadFloat(s string) float64 {
	f, _ := strconv.ParseFloat(strings.Fields(s + " ")[0], 64)
	return f
}

// memMiB is the front end's idle RSS or peak (VmHWM) in MiB.
func (r *results) memMiB(key string, peak bool) float64 {
	ms := r.Memory[key]
	if len(ms) == 0 {
		return math.NaN()
	}
	if peak {
		return float64(ms[len(ms)-1].HWM) / (1 << 20)
	}
	return float64(ms[0].RSS) / (1 << 20)
}

// targetOf is issue #5's goal for harbormirror ÷ Traefik alone of a workload: 0.90 for the small
// requests at 32 connections, 0.97 for blob throughput.
func targetOf(w workload) (float64, bool) {
	switch {
	case w.Blob:
		return 0.97, true
	case w.Small && w.Conns == 32:
		return 0.90, true
	}
	return 0, false
}

// The README shows the latest run between these markers; loadbench rewrites what lies between.
const (
	readmeBegin = "<!-- loadbench:begin (written by make loadbench) -->"
	readmeEnd   = "<!-- loadbench:end -->"
)

// readmeSection is the summary of a run for the README: the machine, the main figures against
// plain Traefik and nginx, the targets, and the CPU per request against the Yaegi floors.
// resultsDir is relative to the README.
func (r *results) readmeSection(resultsDir string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	p("Latest `make loadbench` run, %s: %s, %d cores (servers pinned to one, load generators to the other), %.0f GiB, %s; %s; %s; %s. "+
		"%s rounds × %s; load average %s at start, %s at end. Full report: [%s/latest.md](%s/latest.md).\n\n",
		r.Started.Format("2006-01-02"), m.CPU, m.Cores, m.MemGiB, m.OS, m.Go, "Traefik "+m.Traefik, m.Nginx,
		r.Options["rounds"], r.Options["duration"], r.LoadStart, r.LoadEnd, resultsDir, resultsDir)
	if r.smoke() {
		p("**Smoke run** (-quick or -requests): one short round; the figures show that every path works, and little more.\n\n")
	}
	p("Each cell: median over the rounds [min–max]; the ratios are of the medians (above 1: harbormirror did better).\n\n")
	p("| workload | metric | Traefik alone | Traefik + harbormirror | nginx recipe | harbormirror ÷ Traefik | target | harbormirror ÷ nginx |\n|---|---|---|---|---|---|---|---|\n")
	for _, w := range r.workloads {
		name, f, _ := metricOf(w)
		rt := r.ratio(w, fePlugin, feTraefik)
		target := ""
		if goal, ok := targetOf(w); ok {
			target = fmt.Sprintf("≥ %.2f: %s", goal, strings.SplitN(verdict(rt.Median, goal, true), " ", 2)[0])
		}
		p("| %s | %s | %s | %s | %s | **%.3f** | %s | %.2f |\n", w.Title, name,
			fmtStat(statOf(r.values(w, feTraefik, f)), w), fmtStat(statOf(r.values(w, fePlugin, f)), w), fmtStat(statOf(r.values(w, feNginx, f)), w),
			rt.Median, target, r.ratio(w, fePlugin, feNginx).Median)
	}
	diff := r.memMiB(fePlugin, true) - r.memMiB(feTraefik, true)
	p("| peak RSS (VmHWM) | MiB | %.1f | %.1f | %.1f | %+.1f MiB | ≤ +10 MB: %s | |\n\n",
		r.memMiB(feTraefik, true), r.memMiB(fePlugin, true), r.memMiB(feNginx, true), diff,
		strings.SplitN(verdict(diff*(1<<20)/1e6, 10, false), " ", 2)[0])
	p("CPU time of the front end per unit of work (median over the rounds) against the floors of any Yaegi plugin: an empty plugin " +
		"that calls next, and the same plugin wrapping the ResponseWriter with one interpreted method, each in front of Traefik alone.\n\n")
	r.floorsTable(p)
	return b.String()
}

// updateReadme puts section between the loadbench markers of the README at path.
func updateReadme(path, section string) error {
	return readme.Update(path, readmeBegin, readmeEnd, section)
}

// ---- the machine ----

func describeMachine(o *options) machine {
	m := machine{Go: runtime.Version()}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
			m.CPU, m.Cores = cpus[0].ModelName, len(cpus) // not runtime.NumCPU: taskset narrows it
		}
		if mem, err := fs.Meminfo(); err == nil && mem.MemTotal != nil {
			m.MemGiB = float64(*mem.MemTotal) / (1 << 20) // kB
		}
	}
	m.OS = osRelease()
	m.Kernel = strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	m.Host, _ = os.Hostname()
	if out, err := exec.Command(o.traefik, "version").Output(); err == nil {
		v := regexp.MustCompile(`(?m)^Version:\s*(\S+)`).FindSubmatch(out)
		gv := regexp.MustCompile(`(?m)^Go version:\s*(\S+)`).FindSubmatch(out)
		m.Traefik = "v3.6.12 (scripts/build-traefik"
		if v != nil && gv != nil {
			m.Traefik += fmt.Sprintf("; `traefik version`: %s, built with %s", v[1], gv[1])
		}
		m.Traefik += "), Yaegi v0.16.1"
	}
	if out, err := exec.Command(o.nginx, "-v").CombinedOutput(); err == nil {
		m.Nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	if out, _ := exec.Command(o.wrk, "-v").CombinedOutput(); len(out) > 0 {
		m.Wrk, _, _ = strings.Cut(strings.TrimSpace(string(out)), " Copyright")
	}
	return m
}

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	if m := regexp.MustCompile(`(?m)^PRETTY_NAME="?([^"\n]*)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return runtime.GOOS
}
