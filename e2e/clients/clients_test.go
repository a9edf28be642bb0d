package clients

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const helloRepo = "library/hello:latest"

// timed runs f and logs how long it took.
func timed(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("TIMING %s: %v", what, time.Since(start).Round(time.Millisecond))
}

func TestRequire(t *testing.T) {
	if err := checkClient("no-such-client"); err == nil || !strings.Contains(err.Error(), "unknown client") {
		t.Errorf("checkClient(no-such-client) = %v, want an unknown-client error", err)
	}

	t.Setenv("PATH", t.TempDir()) // no binaries at all
	if err := checkClient(ClientSkopeo); err == nil || !strings.Contains(err.Error(), "skopeo not found in PATH") {
		t.Errorf("checkClient(skopeo) with empty PATH = %v, want skopeo not found", err)
	}

	t.Run("listed client is skipped with the reason", func(t *testing.T) {
		t.Setenv(SkipEnv, "podman, skopeo")
		Require(t, ClientSkopeo)
		t.Error("Require did not skip a missing client listed in " + SkipEnv)
	})

	for list, want := range map[string]bool{"skopeo": true, "podman,skopeo": true, "podman skopeo": true, "skopeo2": false, "": false} {
		if got := listedIn(list, "skopeo"); got != want {
			t.Errorf("listedIn(%q, skopeo) = %t, want %t", list, got, want)
		}
	}
}

func TestUnescapeMountInfo(t *testing.T) {
	if got := unescapeMountInfo(`/tmp/a\040b\134c`); got != `/tmp/a b\c` {
		t.Errorf("unescapeMountInfo = %q", got)
	}
}

func TestDockerdPullsThroughMirror(t *testing.T) {
	Require(t, ClientDockerd)
	reg := startTestRegistry(t, registryOptions{})
	digest := pushHelloIndex(t, reg, helloRepo)
	reg.Reset()

	var d *Dockerd
	// Registered first, so it runs after StartDockerd's own cleanups.
	t.Cleanup(func() {
		if d != nil {
			requireNoMountsLeft(t, d.DataRoot, d.ExecRoot, d.Containerd.Root)
		}
	})
	timed(t, "dockerd start", func() {
		d = StartDockerd(t, DockerdOptions{Mirrors: []string{reg.URL}, InsecureRegistries: []string{reg.Host}})
	})
	timed(t, "dockerd pull hello via mirror", func() {
		if _, err := d.Pull("hello"); err != nil {
			t.Fatal(err)
		}
	})
	reg.requireRequest(t, "HEAD", "/v2/library/hello/manifests/latest")
	reg.requireRequest(t, "GET", "/v2/library/hello/manifests/sha256:")
	blob := reg.requireRequest(t, "GET", "/v2/library/hello/blobs/sha256:")
	t.Logf("dockerd requests:\n%s", formatRequests(reg.Requests()))
	t.Logf("dockerd User-Agent: %s", blob.UserAgent)
	if got := d.ImageDigest("hello"); got != digest {
		t.Errorf("ImageDigest(hello) = %s, want the pushed index %s", got, digest)
	}
	if got := d.ImageDigest("docker.io/library/hello:latest"); got != digest {
		t.Errorf("ImageDigest(docker.io/library/hello:latest) = %s, want %s", got, digest)
	}
}

// requireNoMountsLeft checks that nothing stays mounted under dirs.
func requireNoMountsLeft(t *testing.T, dirs ...string) {
	for _, dir := range dirs {
		mounts, err := mountPointsUnder(dir)
		if err != nil {
			t.Error(err)
		}
		if len(mounts) > 0 {
			t.Errorf("still mounted after cleanup: %q", mounts)
		}
	}
}

func TestDockerdTrustsCACertsForTLSMirror(t *testing.T) {
	Require(t, ClientDockerd)
	reg := startTestRegistry(t, registryOptions{tls: true})
	digest := pushHelloIndex(t, reg, helloRepo, remote.WithTransport(reg.transport))
	reg.Reset()

	d := StartDockerd(t, DockerdOptions{Mirrors: []string{reg.URL}, CACerts: []string{reg.CAPath}})
	timed(t, "dockerd pull hello via TLS mirror", func() {
		if _, err := d.Pull("hello"); err != nil {
			t.Fatal(err)
		}
	})
	reg.requireRequest(t, "GET", "/v2/library/hello/blobs/sha256:")
	if got := d.ImageDigest("hello"); got != digest {
		t.Errorf("ImageDigest(hello) = %s, want %s", got, digest)
	}
}

func TestDockerdCredentialsForMirrorAndLogin(t *testing.T) {
	Require(t, ClientDockerd)
	reg := startTestRegistry(t, registryOptions{htpasswdUser: "alice", pass: "s3cret"})
	pushHelloIndex(t, reg, helloRepo, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	reg.Reset()
	d := StartDockerd(t, DockerdOptions{Mirrors: []string{reg.URL}, InsecureRegistries: []string{reg.Host}})

	// Without credentials the mirror answers 401 and dockerd falls back to Docker Hub, which fails
	// offline: the error names Docker Hub, not the mirror.
	start := time.Now()
	out, err := d.Pull("hello")
	t.Logf("TIMING dockerd pull refused by mirror, then Docker Hub: %v", time.Since(start).Round(time.Millisecond))
	if err == nil {
		t.Fatalf("pull without credentials succeeded:\n%s", out)
	}
	t.Logf("pull without credentials (fallback to Docker Hub): %v", err)
	if !strings.Contains(d.Logs(), reg.URL) {
		t.Errorf("dockerd's debug log does not mention trying the mirror %s", reg.URL)
	}

	// dockerd presents Docker Hub's credentials to its mirrors.
	d.SetCredentials(DockerHubAuthKey, "alice", "s3cret")
	reg.Reset()
	if _, err := d.Pull("hello"); err != nil {
		t.Fatal(err)
	}
	if req := reg.requireRequest(t, "GET", "/v2/library/hello/blobs/"); !req.Authorized {
		t.Errorf("blob request without Authorization: %v", req)
	}

	if err := d.Login(reg.Host, "alice", "wrong"); err == nil {
		t.Error("login with a wrong password succeeded")
	}
	timed(t, "docker login", func() {
		if err := d.Login(reg.Host, "alice", "s3cret"); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := d.Pull(reg.Host + "/library/hello:latest"); err != nil {
		t.Fatal(err)
	}
}

func TestDockerdImportAndRun(t *testing.T) {
	Require(t, ClientDockerd)
	tarPath := staticBinaryTar(t, `package main

import "fmt"

func main() { fmt.Println("hello from an imported image") }
`)
	d := StartDockerd(t, DockerdOptions{})
	id := d.Import(tarPath, "imported:test", `ENTRYPOINT ["/hello"]`, "LABEL k=v")
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("Import returned %q, want an image ID", id)
	}
	if got := d.Inspect("imported:test", "{{index .Config.Labels \"k\"}}"); got != "v" {
		t.Errorf("label k = %q, want v", got)
	}
	var out string
	timed(t, "docker run --rm --network none", func() {
		var err error
		if out, err = d.Run("--rm", "--network", "none", "imported:test"); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.Contains(out, "hello from an imported image") {
		t.Errorf("docker run output %q", out)
	}
}

func TestDockerdCleanupAfterDockerdWasKilled(t *testing.T) {
	Require(t, ClientDockerd)
	tarPath := staticBinaryTar(t, `package main

import "time"

func main() { time.Sleep(time.Hour) }
`)
	var d *Dockerd
	var containerPID int
	// Registered first, so it runs after StartDockerd's own cleanups.
	t.Cleanup(func() {
		if d == nil {
			return
		}
		requireNoMountsLeft(t, d.DataRoot, d.ExecRoot)
		if containerPID > 0 && processRunning(containerPID) {
			t.Errorf("container process %d still runs after cleanup", containerPID)
		}
	})
	d = StartDockerd(t, DockerdOptions{})
	d.Import(tarPath, "sleeper:test", `ENTRYPOINT ["/hello"]`)
	id, err := d.Run("--detach", "--network", "none", "sleeper:test")
	if err != nil {
		t.Fatal(err)
	}
	containerPID, err = strconv.Atoi(d.Inspect(strings.TrimSpace(id), "{{.State.Pid}}"))
	if err != nil || containerPID <= 0 {
		t.Fatalf("container pid: %v", err)
	}
	if mounts, _ := mountPointsUnder(d.DataRoot); len(mounts) == 0 {
		t.Errorf("expected dockerd to bind-mount its data-root")
	}
	// A killed dockerd leaves its data-root bind mount, the container's network namespace mount and
	// the running container behind; the cleanups must remove all three.
	if err := d.daemon.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.daemon.exited
}

// processRunning reports whether pid exists and is not a zombie.
func processRunning(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// staticBinaryTar builds a static Go program from source and returns a tar holding it as /hello.
func staticBinaryTar(t *testing.T, source string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "hello", "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	binary, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := tar.NewWriter(f)
	if err := w.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: int64(len(binary)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(binary); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return tarPath
}

func TestContainerdPullsThroughHostsToml(t *testing.T) {
	Require(t, ClientContainerd)
	reg := startTestRegistry(t, registryOptions{htpasswdUser: "alice", pass: "s3cret"})
	digest := pushHelloIndex(t, reg, helloRepo, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	reg.Reset()

	var c *Containerd
	timed(t, "containerd start", func() { c = StartContainerd(t) })
	hostsDir := t.TempDir()
	hostsToml := WriteHostsToml(t, hostsDir, "docker.io", HostsMirror{URL: reg.URL})
	if data, _ := os.ReadFile(hostsToml); !strings.Contains(string(data), `server = "https://registry-1.docker.io"`) {
		t.Errorf("hosts.toml:\n%s", data)
	}
	ref := "docker.io/library/hello:latest"
	timed(t, "ctr pull via hosts.toml mirror", func() {
		if _, err := c.Pull(ref, hostsDir, "--user", "alice:s3cret"); err != nil {
			t.Fatal(err)
		}
	})
	if req := reg.requireRequest(t, "GET", "/v2/library/hello/blobs/sha256:", "ns=docker.io"); !req.Authorized {
		t.Errorf("blob request without Authorization: %v", req)
	}
	reg.requireRequest(t, "HEAD", "/v2/library/hello/manifests/latest?ns=docker.io")
	t.Logf("containerd requests:\n%s", formatRequests(reg.Requests()))
	if got := c.ImageDigest(ref); got != digest {
		t.Errorf("ImageDigest = %s, want %s", got, digest)
	}
}

func TestPodmanPullsThroughRegistryMirror(t *testing.T) {
	Require(t, ClientPodman)
	reg := startTestRegistry(t, registryOptions{})
	digest := pushHelloIndex(t, reg, helloRepo)
	reg.Reset()

	var p *Podman
	// Registered first, so it runs after NewPodman's own cleanups: a failed pull leaves <root>/overlay
	// mounted.
	t.Cleanup(func() {
		if p != nil {
			requireNoMountsLeft(t, p.Root)
		}
	})
	p = NewPodman(t)
	WriteRegistriesConf(t, p.RegistriesConf, "docker.io", reg.Host, true)
	timed(t, "podman pull via registry.mirror", func() {
		if _, err := p.Pull("docker.io/library/hello:latest"); err != nil {
			t.Fatal(err)
		}
	})
	reg.requireRequest(t, "GET", "/v2/library/hello/blobs/sha256:")
	t.Logf("podman requests:\n%s", formatRequests(reg.Requests()))
	if got := p.ImageDigest("docker.io/library/hello:latest"); got != digest {
		t.Errorf("ImageDigest = %s, want the pushed index %s", got, digest)
	}
	// A short name resolves through unqualified-search-registries to the same mirror.
	if _, err := p.Pull("hello"); err != nil {
		t.Fatal(err)
	}

	// When the mirror answers 404, podman goes on to Docker Hub, which fails offline.
	out, err := p.Pull("docker.io/library/missing:latest")
	if err == nil {
		t.Fatalf("pull of a missing image succeeded:\n%s", out)
	}
	reg.requireRequest(t, "GET", "/v2/library/missing/manifests/latest")
	if !strings.Contains(out, "docker.io") {
		t.Errorf("pull error does not mention the fallback to docker.io:\n%s", out)
	}
	t.Logf("podman pull of a missing image: %s", out)
}

func TestPodmanLoginToMirror(t *testing.T) {
	Require(t, ClientPodman)
	reg := startTestRegistry(t, registryOptions{htpasswdUser: "alice", pass: "s3cret"})
	pushHelloIndex(t, reg, helloRepo, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))

	p := NewPodman(t)
	WriteRegistriesConf(t, p.RegistriesConf, "docker.io", reg.Host, true)
	if err := p.Login(reg.Host, "alice", "wrong"); err == nil {
		t.Error("login with a wrong password succeeded")
	}
	timed(t, "podman login", func() {
		if err := p.Login(reg.Host, "alice", "s3cret"); err != nil {
			t.Fatal(err)
		}
	})
	reg.Reset()
	// Credentials stored for the mirror's host are used for pulls routed through it.
	if _, err := p.Pull("docker.io/library/hello:latest"); err != nil {
		t.Fatal(err)
	}
	if req := reg.requireRequest(t, "GET", "/v2/library/hello/blobs/sha256:"); !req.Authorized {
		t.Errorf("blob request without Authorization: %v", req)
	}
}

func TestSkopeoCopyAndInspect(t *testing.T) {
	Require(t, ClientSkopeo)
	reg := startTestRegistry(t, registryOptions{htpasswdUser: "alice", pass: "s3cret"})
	digest := pushHelloIndex(t, reg, helloRepo, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	reg.Reset()

	src := "docker://" + reg.Host + "/" + helloRepo
	dst := t.TempDir()
	timed(t, "skopeo copy to dir:", func() {
		if _, err := SkopeoCopy(t, src, "dir:"+dst, "--src-creds", "alice:s3cret"); err != nil {
			t.Fatalf("%v\nrequests:\n%s", err, formatRequests(reg.Requests()))
		}
	})
	if _, err := os.Stat(filepath.Join(dst, "manifest.json")); err != nil {
		t.Errorf("copy wrote no manifest.json: %v", err)
	}
	reg.requireRequest(t, "GET", "/v2/library/hello/blobs/sha256:")
	if _, err := SkopeoCopy(t, src, "dir:"+t.TempDir()); err == nil {
		t.Error("copy without credentials succeeded")
	}
	if got := SkopeoInspectDigest(t, src, "--creds", "alice:s3cret"); got != digest {
		t.Errorf("SkopeoInspectDigest = %s, want %s", got, digest)
	}
}
