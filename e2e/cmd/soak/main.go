// Command soak runs go-containerregistry pulls through Traefik v3.6.12 with harbormirror (loaded
// from this repository's sources, as e2e/cmd/demo does) in front of the e2e fake Harbor, whose
// "hub" proxy-cache project fills itself from a fake Docker Hub, all on loopback. Every pull reads
// the manifest, the config and every layer in full and checks each digest against the stored
// image. Meanwhile it samples Traefik's resident memory (/proc/<pid>/status) and goroutines
// (api.debug's /debug/pprof/goroutine). It writes a markdown report to
// <out>/<mode>-latest.md and prints it. Benchmarks, not assertions: the figures are reported;
// the exit status is 1 only if a pull failed or a digest did not match.
//
// Modes:
//
//	load  -pulls 200 concurrent pulls of a 10-layer image (plus -large pulls of the e2e Large
//	      image, 50 MiB), all started at once            (make load)
//	soak  a steady -rate of pulls per minute for -duration, sampling every -sample,
//	      and whether memory and goroutines grow        (make soak)
//
// Usage:
//
//	soak -mode load|soak -traefik BIN [-repo DIR] [-out DIR] [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/internal/pullload"
	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
)

const project = "hub"

type options struct {
	mode, traefik, repo, out, invokedAs string
	keep                                bool

	// load
	pulls, concurrency, large int
	loadSample                time.Duration
	timeout                   time.Duration

	// soak
	duration, sample, warmup time.Duration
	rate                     float64
	maxInFlight              int

	// both
	settle time.Duration
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "soak: some pulls failed or did not verify; see the report")
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.mode, "mode", "load", "load (concurrent pulls) or soak (a steady rate for -duration)")
	fs.StringVar(&o.traefik, "traefik", os.Getenv("HARBORMIRROR_TRAEFIK"), "Traefik v3.6.12 binary (make load/soak pass scripts/build-traefik's)")
	fs.StringVar(&o.repo, "repo", "", "the plugin's repository (default: found above the working directory)")
	fs.StringVar(&o.out, "out", "", "directory for <mode>-latest.md (default: bench/soak of the repository)")
	fs.StringVar(&o.invokedAs, "invoked-as", "", "how the run was started, for the report (the Makefile passes \"make load\")")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, Traefik's logs and access log)")
	fs.IntVar(&o.pulls, "pulls", 200, "load: pulls in all")
	fs.IntVar(&o.concurrency, "concurrency", 0, "load: pulls at once (default: -pulls, all started together)")
	fs.IntVar(&o.large, "large", 0, "load: how many of the pulls pull the e2e Large image (50 MiB layer) instead")
	fs.DurationVar(&o.loadSample, "load-sample", 200*time.Millisecond, "load: sampling interval during the pulls")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "load: bound on the whole run of pulls; soak: on each pull")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "soak: how long pulls are started")
	fs.Float64Var(&o.rate, "rate", 60, "soak: pulls started per minute, evenly spaced")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 16, "soak: pulls running at once at most; a pull due beyond it is skipped and reported")
	fs.DurationVar(&o.sample, "sample", 10*time.Second, "soak: sampling interval")
	fs.DurationVar(&o.warmup, "warmup", time.Minute, "soak: samples of the first -warmup are left out of the growth comparison")
	fs.DurationVar(&o.settle, "settle", 95*time.Second, "after the pulls: wait this long for the last sample, past Traefik's 90 s idle timeout of backend connections")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case o.mode != "load" && o.mode != "soak":
		return nil, fmt.Errorf("-mode %q: want load or soak", o.mode)
	case o.traefik == "":
		return nil, errors.New("no Traefik binary: pass -traefik (make load/soak build or reuse the cached one)")
	case o.pulls < 1 || o.large < 0 || o.large > o.pulls:
		return nil, fmt.Errorf("-pulls %d -large %d: want 1 <= pulls and 0 <= large <= pulls", o.pulls, o.large)
	case o.rate <= 0 || o.duration <= 0 || o.sample <= 0:
		return nil, errors.New("-rate, -duration and -sample must be positive")
	}
	if o.concurrency <= 0 || o.concurrency > o.pulls {
		o.concurrency = o.pulls
	}
	if o.repo == "" {
		var err error
		if o.repo, err = traefikproc.FindRepo(); err != nil {
			return nil, err
		}
	}
	if o.out == "" {
		o.out = filepath.Join(o.repo, "bench", "soak")
	}
	return o, nil
}

// result is everything the report shows.
type result struct {
	o                   *options
	started, ended      time.Time
	loadStart, loadEnd  string
	machine             pullload.Machine
	traefikBin          string
	targets             []pullload.Target
	targetNames         []string
	warmups             []pullload.Pull
	pulls               []pullload.Pull
	summary             pullload.Summary
	requests            pullload.RequestStats
	harbor              harborSummary
	accessLines         int
	points              []pullload.Sample // idle, before, after, ... (labelled)
	series              []pullload.Sample // during the pulls
	warmEnd             time.Time         // soak: samples from here on count for the trend
	traefikAlive        error
	interrupted         bool
	runStart, runEnd    time.Time // the pulls (after the warm-up)
	soakOpts            pullload.SteadyOptions
	workDir             string
	goroutineProfileURL string
}

func run(o *options) (bool, error) {
	r := &result{o: o, started: time.Now(), loadStart: pullload.LoadAverage(), machine: pullload.ThisMachine(), traefikBin: o.traefik}
	fmt.Fprintf(os.Stderr, "soak: %s mode; load average %s\n", o.mode, r.loadStart)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "harbormirror-soak-")
	if err != nil {
		return false, err
	}
	r.workDir = work
	defer func() {
		if o.keep {
			fmt.Fprintf(os.Stderr, "soak: work directory kept: %s\n", work)
		} else {
			_ = os.RemoveAll(work)
		}
	}()

	// The upstream: a fake Docker Hub holding the images; Harbor: a public proxy-cache project
	// of it; Traefik with the plugin in front of Harbor.
	hub, err := harbor.StartDockerHub()
	if err != nil {
		return false, fmt.Errorf("start the fake Docker Hub: %w", err)
	}
	defer hub.Close()
	multi, err := pullload.MultiLayer("harbormirror-soak", pullload.MultiLayerSizes)
	if err != nil {
		return false, err
	}
	if err := addTarget(ctx, r, hub, "library/soak", multi); err != nil {
		return false, err
	}
	if o.mode == "load" && o.large > 0 {
		a, err := images.Get(images.Large)
		if err != nil {
			return false, err
		}
		if err := addTarget(ctx, r, hub, "library/large", a.(v1.Image)); err != nil {
			return false, err
		}
	}
	h, err := harbor.Start(harbor.Options{Projects: []harbor.Project{{Name: project, Public: true, ProxyCacheOf: hub.URL}}})
	if err != nil {
		return false, fmt.Errorf("start the fake Harbor: %w", err)
	}
	defer h.Close()
	tr, err := startTraefik(o.traefik, o.repo, work, project, h.URL)
	if err != nil {
		return false, err
	}
	defer tr.Stop()
	for i := range r.targets {
		r.targets[i].Ref = tr.webAddr + "/" + r.targetNames[i] + ":latest"
	}
	r.goroutineProfileURL = tr.APIURL + "/debug/pprof/goroutine?debug=1"
	sampler := pullload.NewSampler(tr.Pid(), r.goroutineProfileURL)
	idle := sampler.Take("Traefik started, idle")
	if idle.Goroutines < 0 {
		return false, fmt.Errorf("no goroutine count from %s (api.debug)", r.goroutineProfileURL)
	}
	r.points = append(r.points, idle)

	// Warm-up: one pull of each image fills Harbor's proxy cache and is verified like the others.
	client := pullload.NewClient(max(o.concurrency, o.maxInFlight, 16))
	for _, t := range r.targets {
		p := client.Pull(ctx, t)
		r.warmups = append(r.warmups, p)
		if p.Err != nil {
			return false, fmt.Errorf("warm-up: %w", p.Err)
		}
		fmt.Fprintf(os.Stderr, "soak: warm-up pull of %s (fills Harbor's proxy cache): %v, %d digests verified\n", t.Ref, p.Duration.Round(time.Millisecond), p.Verified)
	}
	client.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	h.ResetLog()
	r.points = append(r.points, sampler.Take("before the pulls (warm-up done, client connections closed)"))

	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	r.runStart = time.Now()
	switch o.mode {
	case "load":
		done := make(chan struct{})
		go func() { sampler.Run(sctx, o.loadSample); close(done) }()
		fmt.Fprintf(os.Stderr, "soak: %d pulls, %d at once ...\n", o.pulls, o.concurrency)
		lctx, cancel := context.WithTimeout(ctx, o.timeout)
		r.pulls = pullload.Concurrent(lctx, client, o.pulls, o.concurrency, func(i int) pullload.Target { return r.targets[loadTarget(o, i)] })
		cancel()
		stopSampling()
		<-done
	case "soak":
		r.warmEnd = r.runStart.Add(o.warmup)
		r.soakOpts = pullload.SteadyOptions{PerMinute: o.rate, Duration: o.duration, MaxInFlight: o.maxInFlight, Timeout: o.timeout}
		done := make(chan struct{})
		go func() { sampler.Run(sctx, o.sample); close(done) }()
		go progress(sctx, sampler, o.duration)
		fmt.Fprintf(os.Stderr, "soak: %.0f pulls/min for %v, sampling every %v ...\n", o.rate, o.duration, o.sample)
		r.pulls = pullload.Steady(ctx, client, r.soakOpts, func(int) pullload.Target { return r.targets[0] })
		stopSampling()
		<-done
	}
	r.runEnd = time.Now()
	r.interrupted = ctx.Err() != nil
	r.series = sampler.Series()
	r.summary = pullload.Summarize(r.pulls)
	r.requests = client.Requests()
	r.points = append(r.points, sampler.Take("right after the last pull"))
	client.CloseIdleConnections()
	if !r.interrupted {
		sleep(ctx, 5*time.Second)
		r.points = append(r.points, sampler.Take("+5 s, client connections closed"))
		fmt.Fprintf(os.Stderr, "soak: pulls done; waiting %v for Traefik's idle backend connections to expire ...\n", o.settle)
		sleep(ctx, o.settle-5*time.Second)
		label := fmt.Sprintf("+%v", o.settle)
		if o.settle > 90*time.Second {
			label += ", past Traefik's 90 s idle timeout of backend connections"
		}
		r.points = append(r.points, sampler.Take(label))
	}
	r.traefikAlive = tr.Alive()
	r.harbor = summarizeHarbor(h.Requests(), tr.webAddr)
	r.accessLines = tr.accessLogLines()
	r.ended = time.Now()
	r.loadEnd = pullload.LoadAverage()

	report := render(r)
	fmt.Print(report)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return false, err
	}
	path := filepath.Join(o.out, o.mode+"-latest.md")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		return false, err
	}
	fmt.Fprintf(os.Stderr, "soak: report written to %s\n", path)
	ok := r.summary.Errors == 0 && r.summary.Completed == r.summary.Pulls && r.summary.Pulls > 0 &&
		r.requests.Failed == 0 && r.requests.Unexpected == 0 && r.traefikAlive == nil && !r.interrupted
	return ok, nil
}

// addTarget stores img on the fake Docker Hub as name:latest.
func addTarget(ctx context.Context, r *result, hub *harbor.Hub, name string, img v1.Image) error {
	want, err := pullload.ExpectedOf(img)
	if err != nil {
		return err
	}
	if err := hub.Store(ctx, name, "latest", img); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	r.targets = append(r.targets, pullload.Target{Want: want})
	r.targetNames = append(r.targetNames, name)
	return nil
}

// loadTarget is the target index of load pull i: -large of the pulls, spread evenly, pull the
// Large image (target 1), the others the 10-layer image (target 0).
func loadTarget(o *options, i int) int {
	if o.large == 0 {
		return 0
	}
	step := o.pulls / o.large
	if i%step == 0 && i/step < o.large {
		return 1
	}
	return 0
}

// progress prints a line a minute during a soak.
func progress(ctx context.Context, s *pullload.Sampler, total time.Duration) {
	start := time.Now()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			sm := s.Take("")
			fmt.Fprintf(os.Stderr, "soak: %v of %v: Traefik RSS %s, goroutines %d\n",
				time.Since(start).Round(time.Second), total, mib(sm.RSS), sm.Goroutines)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// harborSummary is what Harbor's request log says about the pulls after the warm-up.
type harborSummary struct {
	Requests       int
	NotViaTraefik  int // Host is not the mirror's: did not come through Traefik
	OutsideProject int // a repository request outside project hub
	ByStatus       map[int]int
	BlobGets       int // GET .../blobs/... answered 200
	ManifestGets   int
	Tokens         int
	Fetched        int // proxy-cache fills (none expected after the warm-up)
	Examples       []string
}

func summarizeHarbor(reqs []harbor.Request, host string) harborSummary {
	s := harborSummary{Requests: len(reqs), ByStatus: map[int]int{}}
	for _, r := range reqs {
		s.ByStatus[r.Status]++
		bad := false
		if r.Host != host {
			s.NotViaTraefik++
			bad = true
		}
		if r.Repository != "" && r.Project != project {
			s.OutsideProject++
			bad = true
		}
		if bad && len(s.Examples) < 5 {
			s.Examples = append(s.Examples, r.String())
		}
		if r.FetchedUpstream != "" {
			s.Fetched++
		}
		switch {
		case len(r.Scopes) > 0:
			s.Tokens++
		case r.Method == "GET" && r.Status == 200 && strings.Contains(r.Path, "/blobs/"):
			s.BlobGets++
		case r.Method == "GET" && r.Status == 200 && strings.Contains(r.Path, "/manifests/"):
			s.ManifestGets++
		}
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
