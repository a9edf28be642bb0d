package clients

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Podman runs podman with storage, runtime state, registries.conf and credentials private to one test.
// No daemon is involved: every method is one podman process.
type Podman struct {
	Root    string // image storage (--root)
	RunRoot string // --runroot
	TmpDir  string // --tmpdir and TMPDIR
	// RegistriesConf is the registries.conf podman reads (CONTAINERS_REGISTRIES_CONF); it starts with
	// Docker Hub as the only search registry and no mirrors. Rewrite it with WriteRegistriesConf.
	RegistriesConf string
	AuthFile       string // REGISTRY_AUTH_FILE, written by Login

	home        string
	policy      string
	globalFlags []string
	t           testing.TB
}

// NewPodman prepares a private podman (root, runroot, tmpdir, volumes and network config under
// t.TempDir(), cgroupfs, file events, overlay storage) and unmounts its storage in t.Cleanup.
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	Require(t, ClientPodman)
	dir := t.TempDir()
	runDir := shortRunDir(t)
	p := &Podman{
		Root:           filepath.Join(dir, "root"),
		RunRoot:        filepath.Join(runDir, "runroot"),
		TmpDir:         filepath.Join(dir, "tmp"),
		RegistriesConf: filepath.Join(dir, "registries.conf"),
		AuthFile:       filepath.Join(dir, "auth.json"),
		home:           filepath.Join(dir, "home"),
		policy:         filepath.Join(dir, "policy.json"),
		t:              t,
	}
	mkdirs(t, p.Root, p.RunRoot, p.TmpDir, p.home, filepath.Join(dir, "volumes"), filepath.Join(dir, "networks"))
	writeFile(t, p.RegistriesConf, []byte("unqualified-search-registries = [\"docker.io\"]\n"), 0o644)
	writeFile(t, p.policy, []byte(acceptAnythingPolicy), 0o644)
	// podman refuses to pull when REGISTRY_AUTH_FILE names a missing file.
	writeFile(t, p.AuthFile, []byte(`{"auths": {}}`+"\n"), 0o600)
	p.globalFlags = []string{
		"--root", p.Root,
		"--runroot", p.RunRoot,
		"--tmpdir", p.TmpDir,
		"--volumepath", filepath.Join(dir, "volumes"),
		"--network-config-dir", filepath.Join(dir, "networks"),
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	// The overlay driver may leave layer mounts under its root.
	t.Cleanup(func() { unmountUnder(t, p.Root) })
	return p
}

// acceptAnythingPolicy is a signature policy that accepts every image, so tests do not depend on the
// machine's /etc/containers/policy.json.
const acceptAnythingPolicy = `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n"

// Command runs podman with the private global flags and environment.
func (p *Podman) Command(args ...string) (string, error) {
	env := []string{
		"CONTAINERS_REGISTRIES_CONF=" + p.RegistriesConf,
		"REGISTRY_AUTH_FILE=" + p.AuthFile,
		// HOME keeps ~/.docker/config.json and ~/.config/containers out; TMPDIR holds big temporary files.
		"HOME=" + p.home,
		"TMPDIR=" + p.TmpDir,
	}
	return runCommand(env, nil, "podman", append(append([]string{}, p.globalFlags...), args...)...)
}

// Pull runs `podman pull extraArgs... ref` (e.g. extraArgs "--tls-verify=false" or "--cert-dir", dir).
// With mirrors in registries.conf podman tries each and then, silently, the primary location: a nil
// error does not prove the mirror served the image.
func (p *Podman) Pull(ref string, extraArgs ...string) (string, error) {
	args := append([]string{"pull", "--signature-policy", p.policy}, extraArgs...)
	return p.Command(append(args, ref)...)
}

// Login runs `podman login` to host, storing credentials in AuthFile. It defaults to
// --tls-verify=false (plain HTTP test registries); pass "--tls-verify=true", "--cert-dir", dir in
// extraArgs to verify.
func (p *Podman) Login(host, user, password string, extraArgs ...string) error {
	args := append([]string{"login", "--tls-verify=false", "--username", user, "--password", password}, extraArgs...)
	_, err := p.Command(append(args, host)...)
	return err
}

// ImageDigest returns podman's digest for ref, failing the test if the image is not in storage.
func (p *Podman) ImageDigest(ref string) string {
	p.t.Helper()
	out, err := p.Command("image", "inspect", "--format", "{{.Digest}}", ref)
	if err != nil {
		p.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// WriteRegistriesConf writes a registries.conf whose [[registry]] for prefix (e.g. "docker.io") keeps
// its real location and lists mirrorLocation (host[:port][/path], no scheme) as a [[registry.mirror]];
// insecure allows plain HTTP and unverified TLS to the mirror. Short names resolve on docker.io.
func WriteRegistriesConf(t testing.TB, path, prefix, mirrorLocation string, insecure bool) {
	t.Helper()
	conf := fmt.Sprintf(`unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = %s
location = %s

[[registry.mirror]]
location = %s
insecure = %t
`, strconv.Quote(prefix), strconv.Quote(prefix), strconv.Quote(mirrorLocation), insecure)
	writeFile(t, path, []byte(conf), 0o644)
}
