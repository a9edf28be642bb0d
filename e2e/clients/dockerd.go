package clients

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
)

// DockerHubAuthKey is the key under which the docker CLI stores Docker Hub credentials. dockerd sends
// these credentials to registry mirrors, so a test of an authenticating mirror sets them with
// SetCredentials (a `docker login` without a host would contact the real Docker Hub).
const DockerHubAuthKey = "https://index.docker.io/v1/"

// DockerdOptions configures StartDockerd.
type DockerdOptions struct {
	// Mirrors become daemon.json "registry-mirrors", e.g. "http://127.0.0.1:22001". dockerd 20.10
	// refuses to start if a mirror URL has a path.
	Mirrors []string
	// InsecureRegistries become "insecure-registries" (host:port or CIDR): plain HTTP or unverified TLS.
	InsecureRegistries []string
	// CACerts are PEM files dockerd trusts, in addition to the system bundle, for every TLS registry.
	// dockerd 20.10 reads per-host CAs only from the fixed /etc/docker/certs.d, so these go into a
	// bundle passed as SSL_CERT_FILE instead, which keeps the machine's /etc untouched.
	CACerts []string
	// ExtraConfig entries are merged into daemon.json last, overriding the defaults.
	ExtraConfig map[string]any
	// CLI is the docker client binary; default "docker" from PATH.
	CLI string
}

// Dockerd is a dockerd (with its own containerd) private to one test, driven with the docker CLI.
type Dockerd struct {
	Socket     string // unix socket dockerd listens on
	Host       string // DOCKER_HOST value for that socket
	DataRoot   string
	ExecRoot   string
	ConfigPath string // daemon.json
	ClientDir  string // DOCKER_CONFIG of the docker CLI (credentials)
	LogPath    string
	CLI        string
	Containerd *Containerd

	t      testing.TB
	daemon *daemon
}

// StartDockerd starts dockerd with the vfs storage driver and no networking set-up (no iptables, no IP
// masquerading or forwarding, no bridge), its data-root, exec-root, pidfile, socket, key file and
// containerd all private to the test, and stops it in t.Cleanup (unmounting what it leaves behind).
func StartDockerd(t testing.TB, opts DockerdOptions) *Dockerd {
	t.Helper()
	Require(t, ClientDockerd)
	stateDir := t.TempDir()
	runDir := shortRunDir(t)

	cli := opts.CLI
	if cli == "" {
		cli = "docker"
	}
	if path, err := exec.LookPath(cli); err == nil {
		cli = path
	}
	d := &Dockerd{
		Socket:     filepath.Join(runDir, "docker.sock"),
		DataRoot:   filepath.Join(stateDir, "data-root"),
		ExecRoot:   filepath.Join(runDir, "exec-root"),
		ConfigPath: filepath.Join(stateDir, "daemon.json"),
		ClientDir:  filepath.Join(stateDir, "docker-config"),
		LogPath:    filepath.Join(stateDir, "dockerd.log"),
		CLI:        cli,
		t:          t,
	}
	d.Host = "unix://" + d.Socket
	mkdirs(t, d.DataRoot, d.ExecRoot, d.ClientDir)

	// dockerd would otherwise start its own containerd child, which a killed dockerd leaks; started here,
	// it is stopped by its own cleanup, after dockerd's.
	d.Containerd = startContainerd(t, stateDir, runDir)

	config := map[string]any{
		"storage-driver": "vfs",
		"iptables":       false,
		"ip-masq":        false,
		// Enabled by default, it sets the machine-wide net.ipv4.ip_forward sysctl.
		"ip-forward": false,
		"bridge":     "none",
		// Debug logs name each endpoint a pull tries, which shows a fallback to Docker Hub.
		"debug": true,
		// Containers get this long to stop when the test ends.
		"shutdown-timeout": 3,
		// Default /etc/docker/key.json; dockerd 20.10 has no flag for it, only this daemon.json key.
		"deprecated-key-path": filepath.Join(stateDir, "key.json"),
	}
	if len(opts.Mirrors) > 0 {
		config["registry-mirrors"] = opts.Mirrors
	}
	if len(opts.InsecureRegistries) > 0 {
		config["insecure-registries"] = opts.InsecureRegistries
	}
	for k, v := range opts.ExtraConfig {
		config[k] = v
	}
	configJSON, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, d.ConfigPath, configJSON, 0o600)

	var env []string
	if len(opts.CACerts) > 0 {
		env = append(env, "SSL_CERT_FILE="+writeCABundle(t, filepath.Join(stateDir, "ca-bundle.pem"), opts.CACerts))
	}

	// Registered before the daemon so that it runs after dockerd has stopped: dockerd bind-mounts its
	// data-root onto itself and may leave that mount behind.
	t.Cleanup(func() { unmountUnder(t, d.DataRoot) })
	d.daemon = startDaemon(t, "dockerd", d.LogPath, env, "dockerd",
		"--config-file", d.ConfigPath,
		"--data-root", d.DataRoot,
		"--exec-root", d.ExecRoot,
		"--pidfile", filepath.Join(runDir, "dockerd.pid"),
		"--host", d.Host,
		"--containerd", d.Containerd.Address,
	)
	d.daemon.waitReady(t, d.ping)
	return d
}

// ping asks dockerd's API for /_ping.
func (d *Dockerd) ping() error {
	client := http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", d.Socket)
		}},
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://docker/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s", resp.Status)
	}
	return nil
}

// writeCABundle writes the system CA bundle (if any) followed by the given PEM files to path.
func writeCABundle(t testing.TB, path string, pemFiles []string) string {
	t.Helper()
	var bundle []byte
	for _, system := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"} {
		if data, err := os.ReadFile(system); err == nil {
			bundle = append(bundle, data...)
			break
		}
	}
	for _, file := range pemFiles {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(append(bundle, '\n'), data...)
	}
	writeFile(t, path, bundle, 0o644)
	return path
}

// Docker runs the docker CLI against this daemon with its private client config.
func (d *Dockerd) Docker(args ...string) (string, error) {
	return d.docker(nil, args...)
}

func (d *Dockerd) docker(stdin []byte, args ...string) (string, error) {
	env := []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + d.ClientDir}
	return runCommand(env, stdin, d.CLI, args...)
}

// Pull runs `docker pull ref`. With registry mirrors, dockerd tries each mirror and then, silently,
// Docker Hub: a nil error does not prove the mirror served the image.
func (d *Dockerd) Pull(ref string) (string, error) {
	return d.Docker("pull", ref)
}

// Login runs `docker login host` (credentials on stdin); dockerd checks them against the registry.
func (d *Dockerd) Login(host, user, password string) error {
	_, err := d.docker([]byte(password), "login", "--username", user, "--password-stdin", host)
	return err
}

// SetCredentials stores credentials for registry in the CLI's config.json without contacting it, e.g.
// for DockerHubAuthKey, which dockerd then presents to its mirrors.
func (d *Dockerd) SetCredentials(registry, user, password string) {
	d.t.Helper()
	path := filepath.Join(d.ClientDir, "config.json")
	config := map[string]any{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &config); err != nil {
			d.t.Fatalf("parse %s: %v", path, err)
		}
	}
	auths, _ := config["auths"].(map[string]any)
	if auths == nil {
		auths = map[string]any{}
	}
	auths[registry] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	config["auths"] = auths
	data, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		d.t.Fatal(err)
	}
	writeFile(d.t, path, data, 0o600)
}

// Inspect returns `docker inspect --format format target` (image or container), failing the test on
// error.
func (d *Dockerd) Inspect(target, format string) string {
	d.t.Helper()
	out, err := d.Docker("inspect", "--format", format, target)
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// ImageDigest returns the repository digest dockerd recorded when it pulled ref (the digest of what the
// tag resolved to, i.e. the manifest list for a multi-platform image), failing the test if there is none.
func (d *Dockerd) ImageDigest(ref string) string {
	d.t.Helper()
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		d.t.Fatalf("parse %q: %v", ref, err)
	}
	var repoDigests []string
	if err := json.Unmarshal([]byte(d.Inspect(ref, "{{json .RepoDigests}}")), &repoDigests); err != nil {
		d.t.Fatalf("parse RepoDigests of %s: %v", ref, err)
	}
	for _, repoDigest := range repoDigests {
		canonical, err := reference.ParseNormalizedNamed(repoDigest)
		if err != nil {
			continue
		}
		if digested, ok := canonical.(reference.Canonical); ok && canonical.Name() == named.Name() {
			return digested.Digest().String()
		}
	}
	d.t.Fatalf("image %s has no repository digest for %s (RepoDigests %q)", ref, named.Name(), repoDigests)
	return ""
}

// Import runs `docker import -c change... tarPath ref` and returns the new image's ID. A tar holding a
// static binary plus `ENTRYPOINT ["/bin"]` makes a runnable image without any registry.
func (d *Dockerd) Import(tarPath, ref string, changes ...string) string {
	d.t.Helper()
	args := []string{"import"}
	for _, change := range changes {
		args = append(args, "--change", change)
	}
	out, err := d.Docker(append(args, tarPath, ref)...)
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// Run runs `docker run args...`, e.g. Run("--rm", "--network", "none", "img").
func (d *Dockerd) Run(args ...string) (string, error) {
	return d.Docker(append([]string{"run"}, args...)...)
}

// Logs returns dockerd's (debug) log so far.
func (d *Dockerd) Logs() string {
	data, err := os.ReadFile(d.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(data)
}
