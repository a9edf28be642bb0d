// Package realharbor runs a real Harbor v2.15.2 on loopback for end-to-end tests: PostgreSQL,
// Redis, Harbor's registry, core, jobservice and Harbor's own nginx in front (rendered from
// Harbor's template), as processes with their state in a temp dir, configured through Harbor's
// API with two local upstream registries (playing Docker Hub and ghcr.io), the proxy-cache
// projects hub and ghcr, a private project team and a user alice who maintains it.
//
// One stack serves a whole test binary (Shared starts it on first use, ~25 s); the binary's
// TestMain calls StopShared. Tests tell their own requests apart in nginx's access log by the
// header TestHeader, which each test's Traefik sets (see Requests). Commands (e2e/cmd/demo)
// use Start, Stop and CreateWorld, which return errors instead of failing a test.
//
// The binaries come from scripts/build-harbor (cached; ~20 min cold on 2 cores), which Shared
// runs when the build is missing.
package realharbor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/harness"
)

// Credentials of the stack. Harbor requires a password with an upper-case letter, a
// lower-case letter and a digit, hence alice's differs from the fake Harbor's.
const (
	AdminUser     = "admin"
	AdminPassword = "Harbor12345"
	Alice         = "alice"
	AlicePassword = "Wonderland-7"

	// TestHeader is the request header nginx logs for each request; a test's Traefik sets it
	// (headers middleware) so the test can read only its own requests from the shared stack.
	TestHeader = "X-Harbormirror-Test"
)

// Projects of the stack.
const (
	ProjectHub  = "hub"  // public proxy-cache project of DockerHub
	ProjectGHCR = "ghcr" // public proxy-cache project of GHCR
	ProjectTeam = "team" // private project, alice is its maintainer (push, delete)
)

// Harbor is a running real Harbor.
type Harbor struct {
	// URL is Harbor's nginx (what a standard install exposes, and what Traefik points at),
	// e.g. http://127.0.0.1:41234; Host is its host:port.
	URL  string
	Host string
	// CoreURL is harbor_core itself, behind nginx.
	CoreURL string
	// DockerHub and GHCR are the upstream registries of the proxy-cache projects hub and ghcr;
	// their request logs show what Harbor fetched from them.
	DockerHub, GHCR *harbor.Hub
	// Build is the scripts/build-harbor output dir (bin/, runtime/).
	Build string
	// Dir holds every process's state and logs (logs/<name>.log, nginx/requests.json).
	Dir string

	procsMu    sync.Mutex // the stores start in parallel
	procs      []*proc
	requestLog string
	keep       bool
}

var (
	sharedMu  sync.Mutex
	shared    *Harbor
	sharedErr error
)

// Shared returns the test binary's Harbor, starting it on first use. A failure to build or
// start it fails every test that asks (never a skip). When t fails, the tail of Harbor's logs
// is added to its output.
func Shared(t testing.TB) *Harbor {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		build, err := Build(t)
		if err == nil {
			shared, err = Start(context.Background(), Options{Build: build, Logf: t.Logf})
		}
		sharedErr = err
	}
	if sharedErr != nil {
		t.Fatalf("realharbor: %v", sharedErr)
	}
	h := shared
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("realharbor: logs of the shared Harbor (%s):\n%s", h.Dir, h.LogTails(30))
		}
	})
	return h
}

// StopShared stops the shared Harbor if one was started, and removes its state. TestMain
// calls it after m.Run.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// Options are what Start needs.
type Options struct {
	// Build is scripts/build-harbor's output dir (see BuildDir).
	Build string
	// Addr, when set, is the host:port Harbor's nginx listens on; otherwise, like every other
	// process of the stack, it takes a free loopback port.
	Addr string
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
	// Keep leaves Dir in place at Stop, as HARBORMIRROR_KEEP_HARBOR does.
	Keep bool
}

// Start brings a whole stack up, with the default world (the upstreams DockerHub and GHCR, the
// projects hub, ghcr and team, the user alice), and returns it running: the caller must Stop
// it. Cancelling ctx aborts the start-up; whatever was started is stopped and removed.
func Start(ctx context.Context, opts Options) (*Harbor, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Addr != "" {
		// Said up front: a clash on a fixed address is not worth starting again for.
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("Harbor's address %s is not free: %w", opts.Addr, err)
		}
		_ = l.Close()
	}
	began := time.Now()
	var h *Harbor
	var err error
	// A port chosen free can be taken before its process binds it: start again.
	for attempt := 1; attempt <= 3; attempt++ {
		if h, err = start(ctx, opts, logf); err == nil || ctx.Err() != nil ||
			!strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			break
		}
		logf("realharbor: port clash, starting again (%d): %v", attempt, err)
	}
	if err != nil {
		return nil, err
	}
	logf("realharbor: Harbor up in %v at %s (state in %s)", time.Since(began).Round(100*time.Millisecond), h.URL, h.Dir)
	return h, nil
}

// Stop stops every process (nginx first, PostgreSQL last) and the upstreams, and removes Dir
// unless Options.Keep or HARBORMIRROR_KEEP_HARBOR is set.
func (h *Harbor) Stop() {
	procs := h.processes()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	closeHubs(h.DockerHub, h.GHCR)
	if !h.keep && os.Getenv("HARBORMIRROR_KEEP_HARBOR") == "" {
		_ = os.RemoveAll(h.Dir)
	}
}

// LogTails returns the last n lines of each process's log.
func (h *Harbor) LogTails(n int) string {
	var b strings.Builder
	for _, p := range h.processes() {
		out, _ := os.ReadFile(p.logPath)
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", p.name, p.logPath, harness.Tail(string(out), n))
	}
	return b.String()
}

func (h *Harbor) processes() []*proc {
	h.procsMu.Lock()
	defer h.procsMu.Unlock()
	return append([]*proc(nil), h.procs...)
}

var (
	buildMu  sync.Mutex
	buildDir string
)

// Build is BuildDir for tests: progress goes to the test log, and a cold build that the test
// binary's deadline cannot hold fails at once. HARBORMIRROR_HARBOR_BUILD names a build dir to
// use instead.
func Build(t testing.TB) (string, error) {
	t.Helper()
	if d := os.Getenv("HARBORMIRROR_HARBOR_BUILD"); d != "" {
		return d, nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		return buildDir, nil
	}
	repo := harness.RepoRoot(t)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok && time.Until(dl) < 40*time.Minute {
			if dir, built, err := builtDir(repo); err != nil || !built {
				return "", errors.Join(err, fmt.Errorf("Harbor is not built yet (%s) and a cold build takes ~20 min: run %s first, or go test -timeout 60m", dir, buildScript(repo)))
			}
		}
	}
	dir, err := BuildDir(repo, t.Logf)
	if err != nil {
		return "", err
	}
	buildDir = dir
	return dir, nil
}

// BuildDir returns scripts/build-harbor's output dir in the repository repo, running the script
// first when the build is missing or incomplete (its progress goes to logf, line by line; the
// script's lock keeps concurrent callers from building twice).
func BuildDir(repo string, logf func(format string, args ...any)) (string, error) {
	dir, built, err := builtDir(repo)
	if err != nil || built {
		return dir, err
	}
	script := buildScript(repo)
	logf("realharbor: building Harbor with %s (~20 min cold)", script)
	start := time.Now()
	if dir, err = harness.RunBuildScript(logf, script); err != nil {
		return "", err
	}
	logf("realharbor: Harbor built in %v: %s", time.Since(start).Round(time.Second), dir)
	return dir, nil
}

func buildScript(repo string) string { return filepath.Join(repo, "scripts", "build-harbor") }

// builtDir is where scripts/build-harbor puts its build, and whether a complete one is there.
func builtDir(repo string) (dir string, built bool, err error) {
	script := buildScript(repo)
	out, err := exec.Command(script, "--print-path").Output()
	if err != nil {
		return "", false, fmt.Errorf("%s --print-path: %w", script, err)
	}
	dir = strings.TrimSpace(string(out))
	_, err = os.Stat(filepath.Join(dir, ".complete"))
	return dir, err == nil, nil
}

// start brings the whole stack up and configures it; on error everything started is stopped.
func start(ctx context.Context, opts Options, logf func(string, ...any)) (h *Harbor, err error) {
	dir, err := os.MkdirTemp("", "realharbor-")
	if err != nil {
		return nil, err
	}
	// PostgreSQL and nginx's workers run as other users: they must reach their dirs inside.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	h = &Harbor{Build: opts.Build, Dir: dir, keep: opts.Keep}
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("start-up interrupted: %w", ctx.Err())
			} else {
				err = fmt.Errorf("%w\n%s", err, h.LogTails(25))
			}
			h.Stop()
			h = nil
		}
	}()
	if h.DockerHub, err = harbor.StartDockerHub(); err != nil {
		return h, err
	}
	if h.GHCR, err = harbor.StartDockerHub(); err != nil {
		return h, err
	}
	ports, err := harness.FreePorts(7)
	if err != nil {
		return h, err
	}
	p := stackPorts{postgres: ports[0], redis: ports[1], registry: ports[2], registryDebug: ports[3],
		core: ports[4], jobservice: ports[5], nginx: ports[6]}
	h.Host = fmt.Sprintf("127.0.0.1:%d", p.nginx)
	if opts.Addr != "" {
		h.Host = opts.Addr
	}
	h.URL = "http://" + h.Host
	h.CoreURL = fmt.Sprintf("http://127.0.0.1:%d", p.core)

	secrets, err := newSecrets(dir)
	if err != nil {
		return h, err
	}
	// The three stores have no dependency on each other: start them together.
	logf("realharbor: starting PostgreSQL, Redis and Harbor's registry")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, f := range []func() error{
		func() error { return h.startPostgres(ctx, p) },
		func() error { return h.startRedis(ctx, p) },
		func() error { return h.startRegistry(ctx, p, secrets) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return h, err
	}
	logf("realharbor: PostgreSQL, Redis and the registry are up; starting core (it runs its migrations)")
	if err := h.startCore(ctx, p, secrets); err != nil {
		return h, err
	}
	logf("realharbor: core is up; starting jobservice and nginx")
	if err := h.startJobservice(ctx, p, secrets); err != nil {
		return h, err
	}
	if err := h.startNginx(ctx, p); err != nil {
		return h, err
	}
	logf("realharbor: configuring Harbor through its API (upstream registries, projects, a user)")
	if err := h.configure(); err != nil {
		return h, fmt.Errorf("configure Harbor through its API: %w", err)
	}
	return h, ctx.Err()
}

// stackPorts are the loopback ports of one stack.
type stackPorts struct {
	postgres, redis, registry, registryDebug, core, jobservice, nginx int
}
