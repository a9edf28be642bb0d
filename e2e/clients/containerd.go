package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Containerd is a containerd daemon private to one test, driven with ctr.
type Containerd struct {
	Address    string // gRPC unix socket (ctr --address, dockerd --containerd)
	Namespace  string // containerd namespace ctr works in
	Root       string // persistent state: content store, snapshots, metadata
	State      string // runtime state
	ConfigPath string
	LogPath    string

	t      testing.TB
	daemon *daemon
}

// StartContainerd starts a containerd with every path (root, state, gRPC, ttrpc and debug sockets, the
// "opt" plugin directory) private to the test and the CRI plugin disabled, and stops it in t.Cleanup.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	Require(t, ClientContainerd)
	return startContainerd(t, t.TempDir(), shortRunDir(t))
}

// startContainerd starts containerd with persistent state under stateDir and sockets under runDir.
func startContainerd(t testing.TB, stateDir, runDir string) *Containerd {
	t.Helper()
	c := &Containerd{
		Address:    filepath.Join(runDir, "containerd.sock"),
		Namespace:  "default",
		Root:       filepath.Join(stateDir, "containerd", "root"),
		State:      filepath.Join(runDir, "containerd-state"),
		ConfigPath: filepath.Join(stateDir, "containerd", "config.toml"),
		LogPath:    filepath.Join(stateDir, "containerd", "containerd.log"),
		t:          t,
	}
	optDir := filepath.Join(stateDir, "containerd", "opt")
	mkdirs(t, c.Root, c.State, optDir)
	// The opt plugin defaults to /opt/containerd and would create it; tmpmounts are under root.
	config := fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[debug]
  address = %s
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = %s
`, strconv.Quote(c.Root), strconv.Quote(c.State), strconv.Quote(c.Address),
		strconv.Quote(c.Address+".ttrpc"), strconv.Quote(filepath.Join(runDir, "containerd-debug.sock")),
		strconv.Quote(optDir))
	writeFile(t, c.ConfigPath, []byte(config), 0o600)

	// Registered before the daemon starts so that it runs after the daemon has stopped: snapshot and
	// unpack mounts left by a killed containerd would block t.TempDir's removal.
	t.Cleanup(func() { unmountUnder(t, stateDir) })
	c.daemon = startDaemon(t, "containerd", c.LogPath, nil, "containerd", "--config", c.ConfigPath)
	c.daemon.waitReady(t, func() error { return dialUnix(c.Address) })
	// Runs before containerd stops (and after a dockerd using it has stopped).
	t.Cleanup(c.killLeftoverTasks)
	return c
}

// killLeftoverTasks force-deletes every task still running, in every namespace. A container whose
// dockerd was killed keeps running under its shim, which outlives containerd; deleting the task ends
// both.
func (c *Containerd) killLeftoverTasks() {
	namespaces, err := runCommand(nil, nil, "ctr", "--address", c.Address, "namespaces", "ls", "--quiet")
	if err != nil {
		c.t.Errorf("list containerd namespaces: %v", err)
		return
	}
	for _, namespace := range strings.Fields(namespaces) {
		tasks, err := runCommand(nil, nil, "ctr", "--address", c.Address, "--namespace", namespace, "task", "ls", "--quiet")
		if err != nil {
			c.t.Errorf("list containerd tasks: %v", err)
			continue
		}
		for _, task := range strings.Fields(tasks) {
			c.t.Logf("containerd: deleting leftover task %s/%s", namespace, task)
			if _, err := runCommand(nil, nil, "ctr", "--address", c.Address, "--namespace", namespace, "task", "delete", "--force", task); err != nil {
				c.t.Errorf("delete leftover task: %v", err)
			}
		}
	}
}

// Ctr runs `ctr --address <socket> --namespace <ns> args...` and returns its combined output.
func (c *Containerd) Ctr(args ...string) (string, error) {
	return runCommand(nil, nil, "ctr", append([]string{"--address", c.Address, "--namespace", c.Namespace}, args...)...)
}

// Pull runs `ctr image pull --hosts-dir hostsDir extraArgs... ref`. ctr does not normalize names: ref
// must be fully qualified, e.g. "docker.io/library/hello:latest". hostsDir may be empty. containerd
// moves on from a failing mirror (even a 404) to hosts.toml's server, the real registry: a nil error
// does not prove the mirror served the image.
func (c *Containerd) Pull(ref, hostsDir string, extraArgs ...string) (string, error) {
	args := []string{"image", "pull"}
	if hostsDir != "" {
		args = append(args, "--hosts-dir", hostsDir)
	}
	args = append(append(args, extraArgs...), ref)
	return c.Ctr(args...)
}

// ImageDigest returns the digest containerd recorded for ref (the digest of what the tag resolved to,
// i.e. the index for a multi-platform image), failing the test if ref is not in the image store.
func (c *Containerd) ImageDigest(ref string) string {
	c.t.Helper()
	out, err := c.Ctr("image", "ls")
	if err != nil {
		c.t.Fatal(err)
	}
	// Columns: REF TYPE DIGEST SIZE PLATFORMS LABELS.
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[0] == ref {
			return fields[2]
		}
	}
	c.t.Fatalf("image %s not found in containerd; ctr image ls:\n%s", ref, out)
	return ""
}

// Logs returns containerd's log so far.
func (c *Containerd) Logs() string {
	data, err := os.ReadFile(c.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// HostsMirror is one mirror host in a containerd hosts.toml.
type HostsMirror struct {
	// URL of the mirror, e.g. "http://127.0.0.1:22001". containerd appends "/v2/..." to it, unless
	// OverridePath is set, in which case the path must already end in the API root, e.g.
	// "http://127.0.0.1:22001/v2/hub".
	URL string
	// Capabilities default to pull and resolve (a pull-through mirror that may resolve tags).
	Capabilities []string
	// CAPath is a PEM file with the CA that signed the mirror's certificate (optional).
	CAPath       string
	SkipVerify   bool
	OverridePath bool
}

// WriteHostsToml writes dir/<upstream>/hosts.toml sending pulls for upstream (e.g. "docker.io")
// through the given mirrors, with upstream's real registry as the fallback server, and returns the
// file's path. Pass dir to Containerd.Pull as hostsDir.
func WriteHostsToml(t testing.TB, dir, upstream string, mirrors ...HostsMirror) string {
	t.Helper()
	server := "https://" + upstream
	if upstream == "docker.io" {
		// Docker Hub's API is not served on docker.io itself.
		server = "https://registry-1.docker.io"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server = %s\n", strconv.Quote(server))
	for _, m := range mirrors {
		capabilities := m.Capabilities
		if len(capabilities) == 0 {
			capabilities = []string{"pull", "resolve"}
		}
		quoted := make([]string, len(capabilities))
		for i, c := range capabilities {
			quoted[i] = strconv.Quote(c)
		}
		fmt.Fprintf(&b, "\n[host.%s]\n  capabilities = [%s]\n", strconv.Quote(m.URL), strings.Join(quoted, ", "))
		if m.CAPath != "" {
			fmt.Fprintf(&b, "  ca = %s\n", strconv.Quote(m.CAPath))
		}
		if m.SkipVerify {
			b.WriteString("  skip_verify = true\n")
		}
		if m.OverridePath {
			b.WriteString("  override_path = true\n")
		}
	}
	hostDir := filepath.Join(dir, upstream)
	mkdirs(t, hostDir)
	path := filepath.Join(hostDir, "hosts.toml")
	writeFile(t, path, []byte(b.String()), 0o644)
	return path
}
