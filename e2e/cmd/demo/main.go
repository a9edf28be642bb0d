// Command demo shows harbormirror at work on one machine, without internet: a local upstream
// registry holding library/hello (playing Docker Hub), a real Harbor v2.15.2 with a "hub"
// proxy-cache project of it (e2e/realharbor: PostgreSQL, Redis, Harbor's registry, core,
// jobservice and Harbor's own nginx, on loopback), and Traefik with the plugin (loaded from this
// repository's sources) in front of Harbor's nginx. It pulls hello through the mirror with the
// best client available (skopeo, else go-containerregistry), prints each request as the client
// sent it next to the request Harbor received (nginx's log), prints the Docker, containerd and
// podman configuration for the mirror, and keeps running (tracing further requests) until
// Ctrl-C, then stops every process and removes every temp dir. With -once it checks that the
// pull went through the plugin to the hub project and from the upstream, and exits: 0 when it
// did, 1 otherwise.
//
// Run it with `make demo` from the repository root; flags:
//
//	demo -traefik /path/to/traefik [-harbor-build DIR] [-repo DIR] [-listen 127.0.0.1:5000]
//	     [-harbor 127.0.0.1:5001] [-api 127.0.0.1:5002] [-once] [-keep] [-client auto|skopeo|ggcr]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

type options struct {
	traefik, harborBuild, repo string
	listen, harborAddr, api    string
	client                     string
	keep, once                 bool
}

// The project the mirror serves: the proxy-cache project of realharbor's default world.
const project = realharbor.ProjectHub

// errInterrupted ends a run stopped by Ctrl-C (or SIGTERM) before it was up.
var errInterrupted = errors.New("interrupted")

func main() {
	var o options
	flag.StringVar(&o.traefik, "traefik", os.Getenv("HARBORMIRROR_TRAEFIK"), "Traefik v3 binary (make demo passes scripts/build-traefik's)")
	flag.StringVar(&o.harborBuild, "harbor-build", "", "scripts/build-harbor's output dir (default: ask the script, building Harbor if needed)")
	flag.StringVar(&o.repo, "repo", "", "the plugin's repository (default: found above the working directory)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:5000", "the mirror: Traefik's entrypoint")
	flag.StringVar(&o.harborAddr, "harbor", "127.0.0.1:5001", "Harbor's nginx (Harbor's own front door, behind Traefik)")
	flag.StringVar(&o.api, "api", "127.0.0.1:5002", "Traefik's API and ping")
	flag.StringVar(&o.client, "client", "auto", "client for the demo pull: auto, skopeo or ggcr")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, pulled image) and Harbor's state")
	flag.BoolVar(&o.once, "once", false, "pull once, check the pull went through the plugin to Harbor's hub project and from the upstream, and exit (0: it did)")
	flag.Parse()
	err := run(o)
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(os.Stderr, "demo: interrupted; everything it started is stopped")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.traefik == "" {
		return errors.New("no Traefik binary: pass -traefik (make demo builds or reuses the cached one)")
	}
	if o.repo == "" {
		var err error
		if o.repo, err = traefikproc.FindRepo(); err != nil {
			return err
		}
	}
	for _, addr := range []string{o.listen, o.api} { // realharbor.Start checks Harbor's
		if err := checkFree(addr); err != nil {
			return err
		}
	}
	// Ctrl-C cancels ctx: a start-up in progress stops what it started. Further Ctrl-Cs are
	// caught too, so that the stop (a second or two) runs to its end: a demo killed half-way
	// would leave nginx's workers running (its master dies with the demo, they do not) and its
	// temp dirs behind.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}

	work, err := os.MkdirTemp("", "harbormirror-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			fmt.Printf("work directory kept: %s\n", work)
		} else {
			_ = os.RemoveAll(work)
		}
	}()

	began := time.Now()
	progress := func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }
	if o.harborBuild == "" {
		if o.harborBuild, err = realharbor.BuildDir(o.repo, progress); err != nil {
			return interrupted(err)
		}
	}
	fmt.Printf("Starting real Harbor v2.15.2 on loopback (PostgreSQL, Redis, registry, core, jobservice, Harbor's nginx on %s):\n", o.harborAddr)
	h, err := realharbor.Start(ctx, realharbor.Options{Build: o.harborBuild, Addr: o.harborAddr, Logf: progress, Keep: o.keep})
	if err != nil {
		return interrupted(fmt.Errorf("start Harbor: %w (another address: -harbor / DEMO_HARBOR)", err))
	}
	defer func() {
		fmt.Print("Stopping Harbor (nginx, jobservice, core, registry, Redis, PostgreSQL) and the upstream ... ")
		h.Stop()
		if o.keep {
			fmt.Printf("done; its state is kept in %s\n", h.Dir)
		} else {
			fmt.Println("done.")
		}
	}()
	// The upstream of project hub (realharbor's "Docker Hub"): library/hello, two platforms.
	if err := images.Seed(ctx, h.DockerHub, "library", images.Hello); err != nil {
		return interrupted(err)
	}
	h.DockerHub.ResetLog()

	tr, err := startTraefik(o, work, h.URL)
	if err != nil {
		return err
	}
	defer func() { fmt.Printf("%s.\n", tr.Stop()) }()
	if err := tr.WaitReady(60 * time.Second); err != nil {
		return interrupted(err)
	}
	if ctx.Err() != nil {
		return errInterrupted
	}

	fmt.Printf(`
harbormirror demo, up in %v
  upstream registry  %s   library/hello:latest (linux/amd64, linux/arm64), playing Docker Hub
  Harbor v2.15.2     %s   Harbor's nginx in front of core; project %q: proxy cache of the
                     upstream (admin / %s)
  Traefik + plugin   http://%s   the mirror: {project: %s}; API http://%s/api/http/routers
  Traefik: %s
           plugin loaded; router %s enabled with middleware %s@file
  logs: %s/{traefik.log,access.log}
        %s/logs/*.log, and what Harbor's nginx received: %s/nginx/requests.json

`, time.Since(began).Round(100*time.Millisecond), h.DockerHub.URL, h.URL, project, realharbor.AdminPassword,
		o.listen, project, o.api, tr.Bin, traefikproc.RouterName, traefikproc.PluginKey, work, h.Dir, h.Dir)

	// The pull.
	ref := o.listen + "/library/hello:latest"
	if err := pull(ctx, o.client, ref, filepath.Join(work, "pull", "hello")); err != nil {
		return interrupted(err)
	}
	tc := &tracer{traefik: tr, harbor: h}
	tc.settle()
	fmt.Printf("\nEach request, as the client sent it (Traefik's access log) and as Harbor received it (Harbor's nginx log):\n\n")
	tc.print(os.Stdout)
	upstream := h.DockerHub.Requests()
	fmt.Printf("\nTo fill its proxy cache, Harbor sent the upstream registry %d requests:\n", len(upstream))
	for _, r := range upstream {
		fmt.Printf("     upstream  %-4s %s  → %d\n", r.Method, readable(r.Path), r.Status)
	}
	verdict := checkPull(tc.harborRequests(), upstream)
	if verdict == nil {
		fmt.Printf("\nThe pull went through the plugin: Harbor served it from project %q, which fetched it from the upstream.\n", project)
	}

	printClientConfig(o.listen)
	if o.once {
		if verdict != nil {
			return fmt.Errorf("-once: the pull did not go through the plugin to Harbor's %s project and its upstream: %w", project, verdict)
		}
		return nil
	}
	if verdict != nil {
		fmt.Printf("\nWARNING: %v\n", verdict)
	}

	// Keep serving until Ctrl-C, tracing whatever else is pulled.
	fmt.Printf("\nThe mirror keeps running; further requests are traced below. Try:\n"+
		"  skopeo inspect --tls-verify=false docker://%s/library/hello:latest\n"+
		"Press Ctrl-C to stop.\n\n", o.listen)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Printf("\nStopping (a second or two; further Ctrl-Cs are ignored so that nothing is left behind).\n")
			return nil
		case <-tr.Exited():
			return fmt.Errorf("traefik exited: %v\n%s", tr.Cmd.ProcessState, traefikproc.Tail(traefikproc.ReadFile(tr.LogPath), 20))
		case <-tick.C:
			tc.print(os.Stdout)
		}
	}
}

// checkPull is the -once verdict: Harbor served hello's manifest and a blob with 200 from the
// project hub, received no request for another project, and fetched the manifest and a blob
// from the upstream.
func checkPull(reqs, upstream []harbor.Request) error {
	const repo = project + "/library/hello"
	var problems []string
	servedManifest, servedBlob := false, false
	for _, r := range reqs {
		if r.Project != "" && r.Project != project {
			problems = append(problems, fmt.Sprintf("Harbor received a request for project %q: %s", r.Project, r))
		}
		for _, s := range r.Scopes {
			if s.Type == "repository" && s.Name != repo {
				problems = append(problems, fmt.Sprintf("a token was asked for %s:%s: %s", s.Type, s.Name, r))
			}
		}
		if r.Repository == repo && r.Method == "GET" && r.Status == 200 {
			servedManifest = servedManifest || strings.Contains(r.Path, "/manifests/")
			servedBlob = servedBlob || strings.Contains(r.Path, "/blobs/")
		}
	}
	if !servedManifest || !servedBlob {
		problems = append(problems, fmt.Sprintf("Harbor's nginx never answered a GET of %s's manifest (%v) and a blob (%v) with 200", repo, servedManifest, servedBlob))
	}
	fetchedManifest, fetchedBlob := false, false
	for _, r := range upstream {
		if r.Repository == "library/hello" && r.Method == "GET" && r.Status == 200 {
			fetchedManifest = fetchedManifest || strings.Contains(r.Path, "/manifests/")
			fetchedBlob = fetchedBlob || strings.Contains(r.Path, "/blobs/")
		}
	}
	if !fetchedManifest || !fetchedBlob {
		problems = append(problems, fmt.Sprintf("Harbor never fetched library/hello's manifest (%v) and a blob (%v) from the upstream", fetchedManifest, fetchedBlob))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// ---- Traefik ----

// startTraefik writes the static and dynamic configuration and the plugin's sources into work
// (Traefik reads plugins-local/ relative to its working directory) and starts Traefik there.
func startTraefik(o options, work, harborURL string) (*traefikproc.Traefik, error) {
	return traefikproc.Start(traefikproc.Config{
		Bin:          o.traefik,
		Repo:         o.repo,
		Dir:          work,
		Listen:       o.listen,
		API:          o.api,
		Project:      project,
		Upstream:     harborURL,
		GraceTimeOut: "1s",
	})
}

// ---- the pull ----

// pull copies ref into dir with skopeo if it is installed (or -client skopeo), else with
// go-containerregistry, and checks what arrived against the image's digests.
func pull(ctx context.Context, client, ref, dir string) error {
	if client == "auto" {
		client = "ggcr"
		if _, err := exec.LookPath("skopeo"); err == nil {
			client = "skopeo"
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	start := time.Now()
	switch client {
	case "skopeo":
		args := []string{"--insecure-policy", "copy", "--src-tls-verify=false", "--src-no-creds", "docker://" + ref, "dir:" + dir}
		fmt.Printf("Pulling through the mirror: skopeo %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "skopeo", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			fmt.Println("  | " + line)
		}
		if err != nil {
			return fmt.Errorf("skopeo copy: %w", err)
		}
	case "ggcr":
		fmt.Printf("Pulling through the mirror with go-containerregistry: %s\n", ref)
		if err := pullGGCR(ctx, ref, dir); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-client %q: want auto, skopeo or ggcr", client)
	}
	summary, err := verifyDir(dir)
	if err != nil {
		return fmt.Errorf("the pulled image: %w", err)
	}
	fmt.Printf("Pulled in %v: %s\n", time.Since(start).Round(time.Millisecond), summary)
	return nil
}

// pullGGCR writes the platform manifest and the blobs as skopeo's dir: transport does;
// verifyDir checks them.
func pullGGCR(ctx context.Context, ref, dir string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	blobs := [][]byte{config}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		blobs = append(blobs, b)
	}
	for _, b := range blobs {
		sum := sha256.Sum256(b)
		if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:])), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// verifyDir checks a dir: copy: the manifest is one of hello's platform manifests, and every
// blob it names is there with the right SHA-256.
func verifyDir(dir string) (string, error) {
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return "", err
	}
	index, err := images.Get(images.Hello)
	if err != nil {
		return "", err
	}
	im, err := index.(v1.ImageIndex).IndexManifest()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(manifest)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	platform := ""
	for _, d := range im.Manifests {
		if d.Digest.String() == digest && d.Platform != nil {
			platform = d.Platform.OS + "/" + d.Platform.Architecture
		}
	}
	if platform == "" {
		return "", fmt.Errorf("manifest %s is not one of hello's", digest)
	}
	var m v1.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", err
	}
	total := int64(0)
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		b, err := os.ReadFile(filepath.Join(dir, d.Digest.Hex))
		if err != nil {
			return "", err
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != d.Digest.Hex || int64(len(b)) != d.Size {
			return "", fmt.Errorf("blob %s: %d bytes with sha256 %x", d.Digest, len(b), got)
		}
		total += d.Size
	}
	return fmt.Sprintf("manifest %s (%s), config and %d layers, %d bytes; every digest verified", short(digest), platform, len(m.Layers), total), nil
}

// ---- the trace ----

// accessEntry is one line of Traefik's JSON access log: the request as the client sent it.
type accessEntry struct {
	Method       string `json:"RequestMethod"`
	Path         string `json:"RequestPath"`
	Scheme       string `json:"RequestScheme"`
	Status       int    `json:"DownstreamStatus"`
	OriginStatus int    `json:"OriginStatus"`
	Router       string `json:"RouterName"` // empty: no router matched

}

// tracer pairs Traefik's access log with the requests Harbor's nginx received from Traefik,
// and prints each pair once.
type tracer struct {
	traefik *traefikproc.Traefik
	harbor  *realharbor.Harbor
	printed int          // access log entries printed
	used    map[int]bool // Harbor requests paired
	step    int
	readErr error // the last failure to read nginx's log, said once
}

// settle waits until the access log stops growing (Traefik writes a line after the response),
// then until nginx has logged as many requests from Traefik as Traefik sent it (nginx too
// logs a request once it has answered it).
func (tc *tracer) settle() {
	last, stable := -1, 0
	for i := 0; i < 60 && stable < 4; i++ {
		n := len(tc.entries())
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	forwarded := 0
	for _, e := range tc.entries() {
		if e.OriginStatus != 0 {
			forwarded++
		}
	}
	for i := 0; i < 200 && len(tc.harborRequests()) < forwarded; i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

func (tc *tracer) entries() []accessEntry {
	var out []accessEntry
	sc := bufio.NewScanner(strings.NewReader(traefikproc.ReadFile(tc.traefik.AccessPath)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e accessEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Method != "" {
			out = append(out, e)
		}
	}
	return out
}

// harborRequests are the requests Harbor's nginx received from Traefik: every one not addressed
// to nginx's own host:port (Traefik passes the client's Host on; the demo's own API calls and
// anything sent to Harbor directly carry nginx's).
func (tc *tracer) harborRequests() []harbor.Request {
	exchanges, err := tc.harbor.ExchangesWhere(func(e realharbor.Exchange) bool { return e.Host != tc.harbor.Host })
	var reqs []harbor.Request
	for _, e := range exchanges {
		r, rerr := e.Request()
		if rerr != nil {
			err = rerr
			continue
		}
		reqs = append(reqs, r)
	}
	if err != nil && (tc.readErr == nil || tc.readErr.Error() != err.Error()) {
		fmt.Fprintf(os.Stderr, "demo: Harbor's nginx log: %v\n", err)
	}
	tc.readErr = err
	return reqs
}

// print prints the entries not printed yet, each with the Harbor request it became: the first
// one not yet paired with the same method and the same last path segment (a tag, a digest,
// "token" or "v2"), which pairs concurrent blob downloads correctly.
func (tc *tracer) print(w io.Writer) {
	if tc.used == nil {
		tc.used = map[int]bool{}
	}
	entries := tc.entries()
	reqs := tc.harborRequests()
	for _, e := range entries[min(tc.printed, len(entries)):] {
		tc.printed++
		tc.step++
		clientPath, _ := url.PathUnescape(e.Path)
		over := ""
		if e.Scheme == "https" {
			over = " (over TLS)"
		}
		fmt.Fprintf(w, "%3d  client  %-4s %s%s  → %d\n", tc.step, e.Method, readable(clientPath), over, e.Status)
		match := -1
		for i, r := range reqs {
			if !tc.used[i] && r.Method == e.Method && lastSegment(r.Path) == lastSegment(strings.SplitN(e.Path, "?", 2)[0]) {
				match = i
				break
			}
		}
		switch {
		case e.Router == "":
			// e.g. a client's HTTPS probe: Traefik speaks TLS on every entrypoint with its
			// default certificate, and no router serves TLS here.
			fmt.Fprintf(w, "     harbor  (not asked: no router matched, Traefik answered)\n")
			continue
		case match < 0 && e.OriginStatus == 0:
			fmt.Fprintf(w, "     harbor  (not asked: the plugin answered)\n")
			continue
		case match < 0:
			fmt.Fprintf(w, "     harbor  (not in nginx's log yet)\n")
			continue
		}
		tc.used[match] = true
		r := reqs[match]
		target := r.Path
		if r.RawQuery != "" {
			q, _ := url.QueryUnescape(r.RawQuery)
			target += "?" + q
		}
		fmt.Fprintf(w, "     harbor  %-4s %s  → %d\n", r.Method, readable(target), r.Status)
	}
}

func lastSegment(p string) string {
	p = strings.TrimSuffix(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// readable shortens digests to 12 hex digits.
func readable(s string) string { return digestRE.ReplaceAllStringFunc(s, short) }

func short(digest string) string {
	if len(digest) > len("sha256:")+12 {
		return digest[:len("sha256:")+12] + "…"
	}
	return digest
}

// ---- client configuration ----

func printClientConfig(mirror string) {
	fmt.Printf(`
Point clients at the mirror (replace %[1]s with the address clients reach Traefik at;
behind TLS use https:// and drop the insecure settings):

  Docker: /etc/docker/daemon.json, then restart dockerd
    {
      "registry-mirrors": ["http://%[1]s"],
      "insecure-registries": ["%[1]s"]
    }

  containerd: /etc/containerd/certs.d/docker.io/hosts.toml
  (config_path = "/etc/containerd/certs.d" in the CRI registry config; ctr: --hosts-dir)
    server = "https://registry-1.docker.io"

    [host."http://%[1]s"]
      capabilities = ["pull", "resolve"]

  podman, CRI-O, skopeo: /etc/containers/registries.conf
    [[registry]]
    prefix = "docker.io"
    location = "docker.io"

    [[registry.mirror]]
    location = "%[1]s"
    insecure = true
`, mirror)
}

// ---- helpers ----

func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is not free (%v): choose other addresses, e.g. make demo DEMO_LISTEN=127.0.0.1:5050 DEMO_API=127.0.0.1:5052", addr, err)
	}
	return l.Close()
}
