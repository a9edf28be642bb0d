// Command demo shows harbormirror at work on one machine, without internet: a fake Docker Hub
// holding library/hello, a fake Harbor with a "hub" proxy-cache project in front of it, and
// Traefik with the plugin (loaded from this repository's sources) in front of Harbor. It pulls
// hello through the mirror with the best client available (skopeo, else go-containerregistry),
// prints each request as the client sent it next to the request Harbor received, prints the
// Docker, containerd and podman configuration for the mirror, and keeps running (tracing further
// requests) until Ctrl-C.
//
// Run it with `make demo` from the repository root; flags:
//
//	demo -traefik /path/to/traefik [-repo DIR] [-listen 127.0.0.1:5000] [-harbor 127.0.0.1:5001] [-api 127.0.0.1:5002]
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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
)

type options struct {
	traefik, repo           string
	listen, harborAddr, api string
	project, client         string
	keep                    bool
}

func main() {
	var o options
	flag.StringVar(&o.traefik, "traefik", os.Getenv("HARBORMIRROR_TRAEFIK"), "Traefik v3 binary (make demo passes scripts/build-traefik's)")
	flag.StringVar(&o.repo, "repo", "", "the plugin's repository (default: found above the working directory)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:5000", "the mirror: Traefik's entrypoint")
	flag.StringVar(&o.harborAddr, "harbor", "127.0.0.1:5001", "the fake Harbor")
	flag.StringVar(&o.api, "api", "127.0.0.1:5002", "Traefik's API and ping")
	flag.StringVar(&o.project, "project", "hub", "the Harbor proxy-cache project the mirror serves")
	flag.StringVar(&o.client, "client", "auto", "client for the demo pull: auto, skopeo or ggcr")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, pulled image)")
	flag.Parse()
	if err := run(o); err != nil {
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
	for _, addr := range []string{o.listen, o.api} { // Harbor's address is checked by binding it
		if err := checkFree(addr); err != nil {
			return err
		}
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

	// The upstream: a fake Docker Hub with library/hello (linux/amd64 and linux/arm64).
	ctx := context.Background()
	hub, err := harbor.StartDockerHub()
	if err != nil {
		return fmt.Errorf("start the fake Docker Hub: %w", err)
	}
	defer hub.Close()
	if err := images.Seed(ctx, hub, "library", images.Hello); err != nil {
		return err
	}
	hub.ResetLog()

	// Harbor: a public proxy-cache project of that hub. Its trace goes to harbor.log.
	harborLog, err := os.Create(filepath.Join(work, "harbor.log"))
	if err != nil {
		return err
	}
	defer harborLog.Close()
	h, err := harbor.Start(harbor.Options{
		Addr:     o.harborAddr,
		Projects: []harbor.Project{{Name: o.project, Public: true, ProxyCacheOf: hub.URL}},
		Trace:    &syncWriter{w: harborLog},
	})
	if err != nil {
		return fmt.Errorf("start the fake Harbor on %s: %w (override with -harbor / DEMO_HARBOR)", o.harborAddr, err)
	}
	defer h.Close()

	// Traefik with the plugin in front of Harbor.
	tr, err := startTraefik(o, work, h.URL)
	if err != nil {
		return err
	}
	defer tr.Stop()
	if err := tr.WaitReady(60 * time.Second); err != nil {
		return err
	}

	fmt.Printf(`
harbormirror demo
  fake Docker Hub   %s   library/hello:latest (linux/amd64, linux/arm64)
  fake Harbor       %s   project %q: proxy cache of the fake Docker Hub (admin / Harbor12345)
  Traefik + plugin  http://%s   the mirror: {project: %s}; API http://%s/api/http/routers
  Traefik: %s
           plugin loaded; router %s enabled with middleware %s@file
  logs: %s/{traefik.log,access.log,harbor.log}

`, hub.URL, h.URL, o.project, o.listen, o.project, o.api, tr.Bin, traefikproc.RouterName, traefikproc.PluginKey, work)

	// The pull.
	ref := o.listen + "/library/hello:latest"
	if err := pull(o.client, ref, filepath.Join(work, "pull", "hello")); err != nil {
		return err
	}
	tc := &tracer{traefik: tr, harbor: h}
	tc.settle()
	fmt.Printf("\nEach request, as the client sent it (Traefik's access log) and as Harbor received it (Harbor's trace):\n\n")
	tc.print(os.Stdout)
	var projects []string
	reqs := h.Requests()
	for _, r := range reqs {
		if r.Project != "" && !slices.Contains(projects, r.Project) {
			projects = append(projects, r.Project)
		}
	}
	fmt.Printf("\nHarbor received %d requests; the repository requests went to project(s) %v. To fill its proxy cache,\n"+
		"Harbor sent %d requests to the fake Docker Hub.\n", len(reqs), projects, len(hub.Requests()))

	printClientConfig(o.listen)

	// Keep serving until Ctrl-C, tracing whatever else is pulled.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	fmt.Printf("\nThe mirror keeps running; further requests are traced below. Try:\n"+
		"  skopeo inspect --tls-verify=false docker://%s/library/hello:latest\n"+
		"Press Ctrl-C to stop.\n\n", o.listen)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case sig := <-stop:
			fmt.Printf("\n%v: stopping Traefik ... ", sig)
			state := tr.Stop()
			fmt.Printf("%s.\nStopping the fake Harbor and Docker Hub.\n", state)
			return nil
		case <-tr.Exited():
			return fmt.Errorf("traefik exited: %v\n%s", tr.Cmd.ProcessState, traefikproc.Tail(traefikproc.ReadFile(tr.LogPath), 20))
		case <-tick.C:
			tc.print(os.Stdout)
		}
	}
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
		Project:      o.project,
		Upstream:     harborURL,
		GraceTimeOut: "1s",
	})
}

// ---- the pull ----

// pull copies ref into dir with skopeo if it is installed (or -client skopeo), else with
// go-containerregistry, and checks what arrived against the image's digests.
func pull(client, ref, dir string) error {
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
		cmd := exec.Command("skopeo", args...)
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
		if err := pullGGCR(ref, dir); err != nil {
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
func pullGGCR(ref, dir string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
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

// tracer pairs Traefik's access log with Harbor's requests and prints each pair once.
type tracer struct {
	traefik *traefikproc.Traefik
	harbor  *harbor.Server
	printed int          // access log entries printed
	used    map[int]bool // Harbor requests paired
	step    int
}

// settle waits until the access log stops growing: Traefik writes a line after the response.
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

// print prints the entries not printed yet, each with the Harbor request it became: the first
// one not yet paired with the same method and the same last path segment (a tag, a digest,
// "token" or "v2"), which pairs concurrent blob downloads correctly.
func (tc *tracer) print(w io.Writer) {
	if tc.used == nil {
		tc.used = map[int]bool{}
	}
	entries := tc.entries()
	reqs := tc.harbor.Requests()
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
		case match < 0:
			fmt.Fprintf(w, "     harbor  (not asked: the plugin answered)\n")
			continue
		}
		tc.used[match] = true
		r := reqs[match]
		target := r.Path
		if r.RawQuery != "" {
			q, _ := url.QueryUnescape(r.RawQuery)
			target += "?" + q
		}
		var extra []string
		for _, s := range r.Scopes {
			extra = append(extra, fmt.Sprintf("granted %s:%s:%s", s.Type, s.Name, strings.Join(s.Granted, ",")))
		}
		if r.FetchedUpstream != "" {
			extra = append(extra, "fetched "+r.FetchedUpstream+" from Docker Hub")
		}
		fmt.Fprintf(w, "     harbor  %-4s %s  → %d%s\n", r.Method, readable(target), r.Status, strings.Join(append([]string{""}, extra...), "  "))
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

// syncWriter serialises Harbor's trace lines, which concurrent requests write.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is not free (%v): choose other addresses, e.g. make demo DEMO_LISTEN=127.0.0.1:5050 DEMO_API=127.0.0.1:5052", addr, err)
	}
	return l.Close()
}
