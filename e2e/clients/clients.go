// Package clients runs real registry clients (dockerd + docker CLI, containerd + ctr, podman, skopeo)
// against a registry URL from Go tests.
//
// Every helper keeps its state in t.TempDir() (sockets in a short private directory under os.TempDir(),
// because unix socket paths are limited to 108 bytes), never touches the default sockets or data
// directories, and undoes everything in t.Cleanup. Helpers that prepare a client fail the test with the
// command's output; operations a test may expect to fail (pulls, logins, copies) return the output and an
// error that quotes the command line and its output.
//
// None of these helpers hide a client falling back to the upstream registry: dockerd, containerd and
// podman quietly try Docker Hub when a mirror fails, so a test must check the mirror's own request log.
//
// A few machine-wide paths cannot be moved by any flag in these versions and may appear after a run:
// /run/docker/plugins (empty, dockerd 20.10), /run/containerd/s (shim sockets while a container runs,
// containerd 1.6) and /var/lib/containers/cache (skopeo's blob-info cache as root). skopeo and podman
// also still read the /etc/containers/registries.conf.d drop-ins (short-name aliases).
package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// SkipEnv names the environment variable that lists clients (comma or space separated, e.g.
// "podman,skopeo") whose tests may be skipped instead of failed.
const SkipEnv = "HARBORMIRROR_SKIP_CLIENTS"

// Client names accepted by Require.
const (
	ClientDockerd    = "dockerd"
	ClientContainerd = "containerd"
	ClientPodman     = "podman"
	ClientSkopeo     = "skopeo"
)

// commandTimeout bounds every client command, so a hung pull fails its test instead of the whole run.
const commandTimeout = 5 * time.Minute

// requiredBinaries lists, per client, the programs its helpers execute.
var requiredBinaries = map[string][]string{
	// dockerd runs containers through containerd and runc; the docker CLI drives it.
	ClientDockerd:    {"dockerd", "docker", "containerd", "runc"},
	ClientContainerd: {"containerd", "ctr"},
	ClientPodman:     {"podman"},
	ClientSkopeo:     {"skopeo"},
}

// needsRoot lists the clients whose helpers only work as root here (daemons, mounts, storage).
var needsRoot = map[string]bool{ClientDockerd: true, ClientContainerd: true, ClientPodman: true}

// Require fails the test unless every named client can run on this machine. A client listed in
// HARBORMIRROR_SKIP_CLIENTS is skipped instead, with the reason in the skip message.
func Require(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		problem := checkClient(name)
		if listedIn(os.Getenv(SkipEnv), name) {
			if problem != nil {
				t.Skipf("skipping %s client (listed in %s=%q): %v", name, SkipEnv, os.Getenv(SkipEnv), problem)
			}
			t.Skipf("skipping %s client: listed in %s=%q", name, SkipEnv, os.Getenv(SkipEnv))
		}
		if problem != nil {
			t.Fatalf("%s client cannot run here: %v (install it, e.g. `apt-get install -y --no-install-recommends docker.io containerd podman skopeo`, run as root, or list %q in %s to skip)",
				name, problem, name, SkipEnv)
		}
	}
}

// checkClient reports why the named client cannot run here, or nil.
func checkClient(name string) error {
	bins, known := requiredBinaries[name]
	if !known {
		return fmt.Errorf("unknown client %q (known: dockerd, containerd, podman, skopeo)", name)
	}
	return probeClient(name, bins)
}

func probeClient(name string, bins []string) error {
	if needsRoot[name] && os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (euid is %d)", os.Geteuid())
	}
	for _, bin := range bins {
		path, err := exec.LookPath(bin)
		if err != nil {
			return fmt.Errorf("%s not found in PATH", bin)
		}
		// Asking for the version proves the binary loads (right architecture, libraries present).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("%s --version failed: %v: %s", path, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// listedIn reports whether list (comma or space separated) names client.
func listedIn(list, client string) bool {
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if f == client {
			return true
		}
	}
	return false
}

// CommandError is returned by client operations that failed; its message holds the command line and
// everything the command printed.
type CommandError struct {
	Args   []string
	Err    error
	Output string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v\n%s", strings.Join(e.Args, " "), e.Err, strings.TrimRight(e.Output, "\n"))
}

func (e *CommandError) Unwrap() error { return e.Err }

// runCommand runs bin with args and extra environment (added to the current one) and returns its
// combined output. stdin may be nil.
func runCommand(env []string, stdin []byte, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = clientEnv(env)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", commandTimeout, err)
		}
		return string(out), &CommandError{Args: append([]string{bin}, args...), Err: err, Output: string(out)}
	}
	return string(out), nil
}

// redirectingEnv lists variables that would point a client away from the private daemon, socket or
// configuration a helper gives it; they are removed from every client's and daemon's environment.
var redirectingEnv = []string{
	"CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINER_SSHKEY", // podman --remote
	"DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
	"CONTAINERD_ADDRESS", "CONTAINERD_NAMESPACE", "CONTAINERD_SNAPSHOTTER", // ctr
}

// clientEnv returns the current environment without redirectingEnv, plus extra ("KEY=value", later
// entries win).
func clientEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(redirectingEnv, key) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// writeFile writes a set-up file or fails the test.
func writeFile(t testing.TB, path string, content []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, content, perm); err != nil {
		t.Fatal(err)
	}
}

// mkdirs creates directories or fails the test.
func mkdirs(t testing.TB, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}
