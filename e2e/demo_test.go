package e2e

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// TestDemoOnce runs the README's first command, make demo, in its -once mode: the demo binary
// (e2e/cmd/demo, built as make demo builds it) starts its own real Harbor v2.15.2, upstream
// registry and Traefik with the plugin on free ports, pulls hello through the mirror, checks
// that the pull went through the plugin to Harbor's hub project and from the upstream, and
// must exit 0. Afterwards its ports must be free again (every process stopped) and the temp
// dir it ran with empty (every temp dir removed).
func TestDemoOnce(t *testing.T) {
	t.Parallel()
	d := prepareDemo(t)
	var out string
	for attempt := 1; ; attempt++ {
		b, err := d.command(t, "-once").CombinedOutput()
		out = string(b)
		if err == nil {
			break
		}
		// A port chosen free can be taken by another test's process before the demo binds it.
		if attempt < 3 && (strings.Contains(out, "is not free") || strings.Contains(out, "address already in use")) {
			t.Logf("demo -once, attempt %d: a port was taken; again with others:\n%s", attempt, harness.Tail(out, 5))
			continue
		}
		t.Fatalf("demo -once: %v\n%s", err, out)
	}
	t.Logf("demo -once:\n%s", out)
	mirror := d.addrs[0]
	for _, want := range []string{
		"Pulled in ",
		"harbor  GET  /v2/" + realharbor.ProjectHub + "/library/hello/manifests/",
		"upstream  GET  /v2/library/hello/manifests/",
		"The pull went through the plugin",
		`"registry-mirrors": ["http://` + mirror + `"]`,
		`[host."http://` + mirror + `"]`,
		`location = "` + mirror + `"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	d.assertCleanedUp(t)
}

// TestDemoInterruptedAtStartUp: a Ctrl-C (SIGINT) while the demo starts Harbor's core stops
// what it started: the demo exits 130, its ports are free and its temp dir is empty.
func TestDemoInterruptedAtStartUp(t *testing.T) {
	t.Parallel()
	d := prepareDemo(t)
	cmd := d.command(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		// Printed once PostgreSQL, Redis and the registry run, as core starts.
		if strings.Contains(sc.Text(), "starting core") {
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("demo after SIGINT at start-up: %v, want exit status 130\n%s%s", err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "starting core") {
		t.Fatalf("the demo never said it was starting core:\n%s%s", out.String(), stderr.String())
	}
	t.Logf("demo, interrupted:\n%s%s", out.String(), stderr.String())
	d.assertCleanedUp(t)
}

// demoRun is what running the demo binary takes: the binary, Traefik, Harbor's build, and the
// temp dir it runs with (TMPDIR), which it must leave empty.
type demoRun struct {
	bin, traefik, build, tmp string
	// addrs are the last command's -listen, -harbor and -api.
	addrs []string
}

func prepareDemo(t *testing.T) *demoRun {
	t.Helper()
	d := &demoRun{traefik: harness.TraefikBinary(t)}
	var err error
	if d.build, err = realharbor.Build(t); err != nil {
		t.Fatal(err)
	}
	d.bin = buildDemo(t)
	// Not t.TempDir: PostgreSQL and nginx's workers run as other users and must reach their
	// dirs inside it, through every parent.
	if d.tmp, err = os.MkdirTemp("", "demo-test-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d.tmp) })
	if err := os.Chmod(d.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// command is the demo on three new free ports with the flags extra.
func (d *demoRun) command(t *testing.T, extra ...string) *exec.Cmd {
	t.Helper()
	ports, err := harness.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	d.addrs = nil
	for _, p := range ports {
		d.addrs = append(d.addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	args := append([]string{"-traefik", d.traefik, "-harbor-build", d.build, "-repo", harness.RepoRoot(t),
		"-listen", d.addrs[0], "-harbor", d.addrs[1], "-api", d.addrs[2]}, extra...)
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append(withoutEnv(os.Environ(), "TMPDIR", "HARBORMIRROR_KEEP_HARBOR"), "TMPDIR="+d.tmp)
	// Should the test binary die, the demo dies with it (and its processes with the demo).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// assertCleanedUp fails unless the last command's ports are free and the temp dir is empty.
func (d *demoRun) assertCleanedUp(t *testing.T) {
	t.Helper()
	for _, addr := range d.addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is still taken after the demo exited: %v", addr, err)
			continue
		}
		_ = l.Close()
	}
	left, err := os.ReadDir(d.tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("the demo left %s in its temp dir", filepath.Join(d.tmp, e.Name()))
	}
}

// buildDemo builds e2e/cmd/demo as make demo does, with the race detector when this test
// binary has it (the build then reuses its compiled packages, and checks the demo for races).
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	build := exec.Command("go", append(args, "./cmd/demo")...)
	build.Dir = filepath.Join(harness.RepoRoot(t), "e2e")
	build.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/demo: %v\n%s", err, out)
	}
	return bin
}

// withoutEnv is env without the variables names.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
