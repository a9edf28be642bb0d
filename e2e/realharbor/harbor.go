// Package realharbor runs a real Harbor v2.15.2 on loopback for end-to-end tests: PostgreSQL,
// Redis, Harbor's registry, core, jobservice and Harbor's own nginx in front (rendered from
// Harbor's template), as processes with their state in a temp dir, configured through Harbor's
// API with two local upstream registries (playing Docker Hub and ghcr.io), the proxy-cache
// projects hub and ghcr, a private project team and a user alice who maintains it.
//
// One stack serves a whole test binary (Shared starts it on first use, ~25 s); the binary's
// TestMain calls StopShared. Tests tell their own requests apart in nginx's access log by the
// header TestHeader, which each test's Traefik sets (see Requests).
//
// The binaries come from scripts/build-harbor (cached; ~20 min cold on 2 cores), which Shared
// runs when the build is missing.
package realharbor

import (
	"errors"
	"fmt"
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
			began := time.Now()
			shared, err = start(build, t.Logf)
			if err == nil {
				t.Logf("realharbor: Harbor up in %v at %s (state in %s)", time.Since(began).Round(100*time.Millisecond), shared.URL, shared.Dir)
			}
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

// Stop stops every process (nginx first, PostgreSQL last) and the upstreams, and removes Dir
// unless HARBORMIRROR_KEEP_HARBOR is set.
func (h *Harbor) Stop() {
	procs := h.processes()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	for _, hub := range []*harbor.Hub{h.DockerHub, h.GHCR} {
		if hub != nil {
			_ = hub.Close()
		}
	}
	if os.Getenv("HARBORMIRROR_KEEP_HARBOR") == "" {
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

// Build returns scripts/build-harbor's output dir, running the script first when the build is
// missing or incomplete (progress goes to the test log; the script's lock keeps concurrent
// test binaries from building twice). HARBORMIRROR_HARBOR_BUILD names a build dir to use
// instead.
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
	script := filepath.Join(harness.RepoRoot(t), "scripts", "build-harbor")
	out, err := exec.Command(script, "--print-path").Output()
	if err != nil {
		return "", fmt.Errorf("%s --print-path: %w", script, err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
			if dl, ok := d.Deadline(); ok && time.Until(dl) < 40*time.Minute {
				return "", fmt.Errorf("Harbor is not built yet (%s) and a cold build takes ~20 min: run %s first, or go test -timeout 60m", dir, script)
			}
		}
		t.Logf("realharbor: building Harbor with %s (~20 min cold)", script)
		start := time.Now()
		if dir, err = harness.RunBuildScript(t, script); err != nil {
			return "", err
		}
		t.Logf("realharbor: Harbor built in %v: %s", time.Since(start).Round(time.Second), dir)
	}
	buildDir = dir
	return dir, nil
}

// start brings the whole stack up and configures it; on error everything started is stopped.
func start(build string, logf func(string, ...any)) (h *Harbor, err error) {
	dir, err := os.MkdirTemp("", "realharbor-")
	if err != nil {
		return nil, err
	}
	// PostgreSQL and nginx's workers run as other users: they must reach their dirs inside.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	h = &Harbor{Build: build, Dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, h.LogTails(25))
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
	h.URL = "http://" + h.Host
	h.CoreURL = fmt.Sprintf("http://127.0.0.1:%d", p.core)

	secrets, err := newSecrets(dir)
	if err != nil {
		return h, err
	}
	// The three stores have no dependency on each other: start them together.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, f := range []func() error{
		func() error { return h.startPostgres(p) },
		func() error { return h.startRedis(p) },
		func() error { return h.startRegistry(p, secrets) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return h, err
	}
	logf("realharbor: PostgreSQL, Redis and the registry are up; starting core (it runs its migrations)")
	if err := h.startCore(p, secrets); err != nil {
		return h, err
	}
	if err := h.startJobservice(p, secrets); err != nil {
		return h, err
	}
	if err := h.startNginx(p); err != nil {
		return h, err
	}
	if err := h.configure(); err != nil {
		return h, fmt.Errorf("configure Harbor through its API: %w", err)
	}
	return h, nil
}

// stackPorts are the loopback ports of one stack.
type stackPorts struct {
	postgres, redis, registry, registryDebug, core, jobservice, nginx int
}
