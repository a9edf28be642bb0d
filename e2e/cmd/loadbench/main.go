// Command loadbench measures harbormirror against plain Traefik, against the floors of any Yaegi
// plugin, and against the nginx rewrite recipe (issues #5 and #14). Against one
// Harbor-compatible registry on loopback (the e2e fake Harbor, in a child process) it alternates
// six front ends in rounds:
//
//   - the registry directly;
//   - Traefik v3.6.12 with only its replacePathRegex middleware mapping /v2/ paths (the baseline);
//   - the baseline with an empty Yaegi plugin (it calls next), and with the same plugin wrapping
//     the ResponseWriter with one interpreted method: what no plugin, and no response-rewriting
//     plugin, can cost less than;
//   - Traefik v3.6.12 with harbormirror (project hub);
//   - nginx (Debian) with the three-map recipe.
//
// The servers (registry and front end) are pinned to one core and the load generators (wrk,
// vegeta, go-containerregistry) to the other. It writes a markdown report and a JSON file of every
// sample; see bench/README.md. Run it with `make loadbench`.
//
//	loadbench -traefik BIN [-rounds 5] [-duration 5s] [-quick] [-out DIR] [-profile]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/prometheus/procfs"

	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
)

type options struct {
	traefik, nginx, wrk, repo string
	rounds                    int
	duration                  time.Duration
	quick, profile, keep      bool
	out, profileDir           string
	profileWorkloads          string
	profileDuration           time.Duration
	pulls                     int
	maxRequests               int
	smallBlob, largeBlob      int64
	pullTotal                 int64
	serverCPUs, clientCPUs    string
	only                      string // comma-separated workload keys (default all)
	render                    string // a run's JSON file to write the report from
}

func main() {
	if os.Getenv(roleEnv) == "registry" {
		registryMain()
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(2)
	}
	if o.render != "" {
		if err := renderOnly(o); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := pinSelf(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
	if _, err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.traefik, "traefik", os.Getenv("HARBORMIRROR_TRAEFIK"), "Traefik v3.6.12 binary (make loadbench passes scripts/build-traefik's)")
	fs.StringVar(&o.repo, "repo", "", "the plugin's repository (default: found above the working directory)")
	fs.StringVar(&o.nginx, "nginx", "nginx", "nginx binary")
	fs.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; each runs every workload through every front end once")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each load run (wrk takes whole seconds)")
	fs.BoolVar(&o.quick, "quick", false, "smoke mode: 1 round of 1 s runs, 1 pull, no warm-up; results go to bench/out unless -out")
	fs.StringVar(&o.out, "out", "", "directory for the report (default: bench/results of the repository; bench/out with -quick)")
	fs.BoolVar(&o.profile, "profile", true, "after the rounds, CPU and allocation profiles of both Traefiks under the manifest HEAD load (default off with -quick)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "where the .pprof files go (default: bench/out of the repository)")
	fs.StringVar(&o.profileWorkloads, "profile-workloads", "head32,challenge32", "comma-separated workloads to profile under (not pull)")
	fs.DurationVar(&o.profileDuration, "profile-duration", 8*time.Second, "length of each profiled load run (the profile covers all but its first second)")
	fs.IntVar(&o.pulls, "pulls", 3, "pulls per round and front end (the median counts)")
	fs.IntVar(&o.maxRequests, "requests", 0, "stop each load run after this many responses per connection (smoke tests); 0: run for -duration")
	size := func(p *int64, name string, def int64, usage string) {
		*p = def
		fs.Func(name, usage+" (default "+units.BytesSize(float64(def))+")", func(s string) (err error) {
			if *p, err = units.RAMInBytes(s); err == nil && *p <= 0 {
				err = fmt.Errorf("size %q: want e.g. 1MiB, 256MiB, 64KiB", s)
			}
			return err
		})
	}
	size(&o.smallBlob, "small-blob", 1<<20, "size of the small blob's file")
	size(&o.largeBlob, "large-blob", 256<<20, "size of the large blob's file")
	size(&o.pullTotal, "pull-size", 64<<20, "total size of the pull image's ten layers")
	fs.StringVar(&o.serverCPUs, "server-cpus", "0", "taskset CPU list of the registry and the front ends (empty: no pinning)")
	fs.StringVar(&o.clientCPUs, "client-cpus", "1", "taskset CPU list of loadbench itself (vegeta, the pulls) and wrk (empty: no pinning)")
	fs.StringVar(&o.only, "only", "", "comma-separated workloads to run (head1,head32,get32,token32,challenge32,blob1m,blob256m,pull); default all")
	keep := fs.Bool("keep", false, "keep the work directory (configurations, logs)")
	fs.StringVar(&o.render, "render", "", "only write the report again from a run's JSON file, into -out")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.keep = *keep
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["pulls"] {
			o.pulls = 1
		}
		if !set["profile"] {
			o.profile = false
		}
	}
	if o.rounds < 1 || o.pulls < 1 || o.duration < time.Second && o.maxRequests == 0 {
		return nil, errors.New("-rounds and -pulls must be ≥ 1 and -duration ≥ 1s (or use -requests)")
	}
	for _, k := range strings.Split(o.profileWorkloads, ",") {
		if k == "pull" || !slices.ContainsFunc(workloads(o), func(w workload) bool { return w.Key == k }) {
			return nil, fmt.Errorf("-profile-workloads: no load workload %q", k)
		}
	}
	if o.only != "" {
		for _, k := range strings.Split(o.only, ",") {
			if !slices.ContainsFunc(workloads(o), func(w workload) bool { return w.Key == k }) {
				return nil, fmt.Errorf("-only: no workload %q", k)
			}
		}
	}
	if o.serverCPUs == o.clientCPUs && o.serverCPUs != "" {
		return nil, errors.New("-server-cpus and -client-cpus must differ")
	}
	return o, nil
}

// pinSelf re-executes loadbench under taskset on the load generator's core, so that it and
// everything it runs in-process (vegeta's HEAD loads, the pulls) stay off the servers' core.
func pinSelf(o *options) error {
	if o.clientCPUs == "" || os.Getenv("LOADBENCH_PINNED") != "" {
		return nil
	}
	if runtime.NumCPU() < 2 {
		fmt.Fprintln(os.Stderr, "loadbench: fewer than 2 CPUs: no pinning; servers and load generators share the CPU")
		o.serverCPUs, o.clientCPUs = "", ""
		return nil
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("taskset (util-linux) is needed to pin servers and load generators: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{"taskset", "-c", o.clientCPUs, self}, os.Args[1:]...)
	return syscall.Exec(taskset, argv, append(os.Environ(), "LOADBENCH_PINNED=1"))
}

// bench is one run.
type bench struct {
	o         *options
	work      string
	info      registryInfo
	registry  *process
	frontends []*frontend
	workloads []workload
	results   *results

	mu      sync.Mutex // the processes, for a stop on a signal
	stopped bool
}

func run(o *options) (*results, error) {
	if err := resolve(o); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep {
			fmt.Fprintf(os.Stderr, "work directory kept: %s\n", work)
		} else {
			_ = os.RemoveAll(work)
		}
	}()
	b := &bench{o: o, work: work}
	for _, w := range workloads(o) {
		if o.only == "" || slices.Contains(strings.Split(o.only, ","), w.Key) {
			b.workloads = append(b.workloads, w)
		}
	}
	b.results = newResults(o, b.workloads)
	defer b.stop()
	// Ctrl-C or SIGTERM: stop the servers (nginx's worker would outlive a killed master).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if s, ok := <-sig; ok {
			logf("%v: stopping the servers", s)
			b.stop()
			os.Exit(130)
		}
	}()
	if err := b.start(); err != nil {
		return nil, err
	}
	if err := b.measure(); err != nil {
		return nil, err
	}
	if o.profile {
		if err := b.profileTraefik(); err != nil {
			fmt.Fprintf(os.Stderr, "loadbench: profile: %v\n", err)
			b.results.Notes = append(b.results.Notes, "profile failed: "+err.Error())
		}
	}
	for _, fe := range b.frontends {
		if fe.proc != nil {
			if m, err := fe.proc.memory(); err == nil {
				b.results.Memory[fe.Key] = append(b.results.Memory[fe.Key], m)
			}
		}
	}
	if m, err := b.registry.memory(); err == nil {
		b.results.RegistryMemory = m
	}
	b.stop()
	b.results.finish()
	return b.results, publish(b.results, o)
}

// publish writes the report into o.out and, when that is the repository's bench/results, the
// README's section; it prints the section.
func publish(r *results, o *options) error {
	paths, err := r.write(o.out)
	if err != nil {
		return err
	}
	if o.out == filepath.Join(o.repo, "bench", "results") {
		readme := filepath.Join(o.repo, "README.md")
		if err := updateReadme(readme, r.readmeSection("bench/results")); err != nil {
			return err
		}
		paths = append(paths, readme)
	}
	fmt.Fprintf(os.Stderr, "\n%s\nwrote %s\n", r.readmeSection(o.out), strings.Join(paths, ", "))
	return nil
}

// renderOnly writes the report of an earlier run again from its JSON file.
func renderOnly(o *options) error {
	r, err := readResults(o.render)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Dir(o.render)
	}
	if o.out, err = filepath.Abs(o.out); err != nil {
		return err
	}
	if o.repo == "" {
		o.repo, _ = traefikproc.FindRepo() // none: no README to update
	}
	for i := range r.Profiles {
		if _, err := os.Stat(r.Profiles[i].Stem + "-cpu.pprof"); err == nil {
			r.Profiles[i].read()
		}
	}
	return publish(r, o)
}

// resolve finds the tools and the repository and fills the defaults that depend on them.
func resolve(o *options) error {
	var missing []string
	for _, p := range []*string{&o.nginx, &o.wrk} {
		path, err := exec.LookPath(*p)
		if err != nil {
			missing = append(missing, *p)
			continue
		}
		*p = path
	}
	if o.serverCPUs != "" || o.clientCPUs != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			missing = append(missing, "taskset")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run scripts/install-test-deps (Debian packages wrk, nginx-light)", strings.Join(missing, ", "))
	}
	if o.traefik == "" {
		return errors.New("no Traefik binary: pass -traefik (make loadbench passes scripts/build-traefik's)")
	}
	if _, err := os.Stat(o.traefik); err != nil {
		return fmt.Errorf("-traefik: %w", err)
	}
	if o.repo == "" {
		var err error
		if o.repo, err = traefikproc.FindRepo(); err != nil {
			return err
		}
	}
	if o.out == "" {
		o.out = filepath.Join(o.repo, "bench", "results")
		if o.quick {
			o.out = filepath.Join(o.repo, "bench", "out")
		}
	}
	if o.profileDir == "" {
		o.profileDir = filepath.Join(o.repo, "bench", "out")
	}
	return nil
}

// start runs the registry and the front ends and checks each of them.
func (b *bench) start() error {
	o := b.o
	b.results.LoadStart = loadAverage()
	b.results.Started = time.Now()
	logf("machine: %s, %d CPUs; servers on CPU %s, load generators on CPU %s; load average %s",
		b.results.Machine.CPU, b.results.Machine.Cores, orNone(o.serverCPUs), orNone(o.clientCPUs), b.results.LoadStart)
	logf("estimated time: %s", b.estimate().Round(time.Second))

	t0 := time.Now()
	registry, info, err := startRegistryProcess(o, b.work)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.registry, b.info = registry, info
	b.mu.Unlock()
	b.results.Registry = b.info
	logf("registry on %s (images stored in %v)", b.info.URL, time.Since(t0).Round(100*time.Millisecond))

	direct := &frontend{Key: feDirect, Title: "registry directly", Addr: b.info.Host,
		RepoPrefix: project + "/", ScopePrefix: project + "/"}
	for _, key := range feOrder {
		var fe *frontend
		var err error
		switch key {
		case feDirect:
			fe = direct
		case feNginx:
			fe, err = startNginx(o, b.work, b.info.Host)
		default:
			fe, err = startTraefik(o, b.work, key, b.info.URL)
		}
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.frontends = append(b.frontends, fe)
		if b.stopped && fe.proc != nil {
			fe.proc.stop()
		}
		b.mu.Unlock()
	}
	for _, fe := range b.frontends {
		if err := b.preflight(fe); err != nil {
			return fmt.Errorf("preflight: %w", err)
		}
		b.results.Frontends = append(b.results.Frontends, frontendInfo{Key: fe.Key, Title: fe.Title, Challenge: fe.Challenge})
		if fe.proc != nil {
			m, _ := fe.proc.memory()
			b.results.Memory[fe.Key] = append(b.results.Memory[fe.Key], m)
		}
		logf("%-50s %s: token, manifest, challenge, blobs and pull checked", fe.Title, fe.Addr)
	}
	return nil
}

// estimate is the expected length of the run.
func (b *bench) estimate() time.Duration {
	per := b.o.duration + 150*time.Millisecond
	if b.o.maxRequests > 0 {
		per = 300 * time.Millisecond
	}
	var loads int
	var pulls bool
	for _, w := range b.workloads {
		if w.Kind == kindPull {
			pulls = true
		} else {
			loads++
		}
	}
	fes := len(feOrder)
	d := time.Duration(b.o.rounds*loads*fes) * per
	if pulls {
		d += time.Duration(b.o.rounds*b.o.pulls*fes) * 400 * time.Millisecond
	}
	if !b.o.quick {
		d += time.Duration(loads*fes) * (time.Second + 150*time.Millisecond) // warm-up
	}
	if b.o.profile {
		d += time.Duration(2*len(strings.Split(b.o.profileWorkloads, ","))) * (max(b.o.profileDuration, 3*time.Second) + time.Second)
	}
	return d + 20*time.Second // start-up
}

// measure runs the warm-up and the rounds. Within a round each workload runs through the
// front ends back to back, starting with a different one each round, so that a change of the
// machine's background load hits all of them alike.
func (b *bench) measure() error {
	if !b.o.quick {
		logf("warm-up: 1 s of each load through each front end")
		for _, w := range b.workloads {
			if w.Kind == kindPull {
				continue
			}
			for _, fe := range b.frontends {
				if _, err := b.run(w, fe, time.Second); err != nil {
					return fmt.Errorf("warm-up %s via %s: %w", w.Key, fe.Key, err)
				}
			}
		}
	}
	for round := range b.o.rounds {
		for _, w := range b.workloads {
			for i := range b.frontends {
				fe := b.frontends[(i+round)%len(b.frontends)]
				s, err := b.run(w, fe, b.o.duration)
				if err != nil {
					return fmt.Errorf("round %d, %s via %s: %w", round+1, w.Key, fe.Key, err)
				}
				for _, p := range b.allProcs() {
					if err := p.alive(); err != nil {
						return fmt.Errorf("round %d, %s via %s: %w", round+1, w.Key, fe.Key, err)
					}
				}
				b.results.add(w.Key, fe.Key, s)
				logf("round %d/%d %-12s %-8s %s", round+1, b.o.rounds, w.Key, fe.Key, s.line(w))
			}
		}
	}
	return nil
}

func (b *bench) allProcs() []*process {
	var procs []*process
	if b.registry != nil {
		procs = append(procs, b.registry)
	}
	for _, fe := range b.frontends {
		if fe.proc != nil {
			procs = append(procs, fe.proc)
		}
	}
	return procs
}

func (b *bench) stop() {
	b.mu.Lock()
	b.stopped = true
	procs := b.allProcs()
	b.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
	if b.results.LoadEnd == "" && !b.results.Started.IsZero() {
		b.results.LoadEnd = loadAverage()
		b.results.Elapsed = time.Since(b.results.Started)
	}
}

func (s sample) line(w workload) string {
	var out string
	switch {
	case w.Kind == kindPull:
		out = fmt.Sprintf("%.3f s (%.0f MB/s)", s.Seconds, s.MBPerSec)
	case w.Blob:
		out = fmt.Sprintf("%8.1f MB/s %8.1f req/s  p50 %.2f ms  p99 %.2f ms", s.MBPerSec, s.ReqPerSec, s.P50ms, s.P99ms)
	default:
		out = fmt.Sprintf("%8.0f req/s  p50 %.2f ms  p99 %.2f ms", s.ReqPerSec, s.P50ms, s.P99ms)
	}
	if s.Requests > 0 {
		out += fmt.Sprintf("  cpu/req: front end %.0f µs, registry %.0f µs", s.FrontendCPU/float64(s.Requests)*1e6, s.RegistryCPU/float64(s.Requests)*1e6)
		if w.Kind == kindVegeta {
			out += fmt.Sprintf(", vegeta %.0f µs (%.0f%% of its core)", s.LoadCPU/float64(s.Requests)*1e6, s.LoadCPU/s.Seconds*100)
		}
	}
	if s.Problem != "" {
		out += "  PROBLEM: " + s.Problem
	}
	return out
}

// ---- profile ----

// profileTraefik takes a CPU profile of each Traefik (the baseline and the plugin) while each
// of the -profile-workloads runs through it, and the allocations made meanwhile, and keeps
// `go tool pprof -top` of them for the report.
func (b *bench) profileTraefik() error {
	if err := os.MkdirAll(b.o.profileDir, 0o755); err != nil {
		return err
	}
	d := max(b.o.profileDuration, 3*time.Second).Round(time.Second)
	secs := int((d - time.Second) / time.Second)
	for _, key := range strings.Split(b.o.profileWorkloads, ",") {
		var w workload
		for _, x := range workloads(b.o) {
			if x.Key == key {
				w = x
			}
		}
		for _, fe := range b.frontends {
			if fe.Key != feTraefik && fe.Key != fePlugin {
				continue
			}
			logf("profiling %s under %s for %d s", fe.Title, w.Key, secs)
			base := "http://" + fe.apiAddr + "/debug/pprof/"
			stem := filepath.Join(b.o.profileDir, b.results.stem()+"-"+fe.Key+"-"+w.Key)
			if err := fetch(base+"allocs", stem+"-allocs-before.pprof"); err != nil {
				return err
			}
			cpuDone := make(chan error, 1)
			go func() { cpuDone <- fetch(fmt.Sprintf("%sprofile?seconds=%d", base, secs), stem+"-cpu.pprof") }()
			s, err := b.run(w, fe, d)
			if err != nil {
				return err
			}
			if err := <-cpuDone; err != nil {
				return err
			}
			if err := fetch(base+"allocs", stem+"-allocs-after.pprof"); err != nil {
				return err
			}
			name, f, _ := metricOf(w)
			p := profileSummary{Frontend: fe.Key, Workload: w.Key, Stem: stem, Requests: s.Requests, Bytes: s.Bytes,
				RunSecs: s.Seconds, ProfileSecs: float64(secs),
				Load: fmt.Sprintf("%s: %.0f %s during the profile, %d requests", w.Title, f(s), name, s.Requests)}
			p.read()
			b.results.Profiles = append(b.results.Profiles, p)
		}
	}
	return nil
}

// read fills the top lists from the profile files.
func (p *profileSummary) read() {
	cpu, before, after := p.Stem+"-cpu.pprof", p.Stem+"-allocs-before.pprof", p.Stem+"-allocs-after.pprof"
	p.CPU = pprofTop("-top", "-nodecount=25", cpu)
	// The allocs profile is cumulative since start: -base leaves what the load allocated.
	p.Allocs = pprofTop("-top", "-nodecount=20", "-sample_index=alloc_space", "-base", before, after)
	p.AllocObjects = pprofTop("-top", "-nodecount=20", "-sample_index=alloc_objects", "-base", before, after)
	if a, err := attribute(cpu); err == nil {
		p.Attribution = a
	}
}

func fetch(url, path string) error {
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop runs go tool pprof with args and returns its report without the header lines.
func pprofTop(args ...string) string {
	cmd := exec.Command("go", append([]string{"tool", "pprof"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "go tool pprof failed: " + err.Error() + "\n" + out.String()
	}
	return strings.TrimRight(out.String(), "\n")
}

// ---- helpers ----

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func orNone(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}

func loadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "?"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}
