package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/procfs"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Workload kinds, by the tool that makes the load.
const (
	kindVegeta = "vegeta" // manifest HEAD: wrk 4.1 (Debian's) cannot measure HEAD
	kindWrk    = "wrk"    // every GET: wrk costs the load generator's core a third of what vegeta does
	kindPull   = "pull"   // full pulls by go-containerregistry
)

// workload is one measured load.
type workload struct {
	Key   string
	Title string
	Kind  string
	Conns int
	// Small marks the small-request workloads of the harbormirror/Traefik ≥ 0.90 target (at 32
	// connections); Blob the throughput ones (≥ 0.97).
	Small, Blob bool
	// request builds the request for a front end: method, path and query, whether it carries
	// the token, and the status every response must have.
	request func(fe *frontend, info *registryInfo) (method, target string, auth bool, status int)
}

func manifestPath(fe *frontend) string {
	return "/v2/" + fe.RepoPrefix + manifestRepo + "/manifests/latest"
}

func tokenTarget(fe *frontend) string {
	scope := "repository:" + fe.ScopePrefix + manifestRepo + ":pull"
	// The scope first: the nginx recipe maps it only there (as Docker, containerd and
	// go-containerregistry send it).
	return "/service/token?scope=" + queryEscape(scope) + "&service=harbor-registry"
}

// queryEscape escapes as clients do (":" and "/" too), which is what the nginx recipe expects.
func queryEscape(s string) string {
	return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(s)
}

func workloads(o *options) []workload {
	manifest := func(method string) func(fe *frontend, _ *registryInfo) (string, string, bool, int) {
		return func(fe *frontend, _ *registryInfo) (string, string, bool, int) {
			return method, manifestPath(fe), true, http.StatusOK
		}
	}
	blob := func(large bool) func(fe *frontend, info *registryInfo) (string, string, bool, int) {
		return func(fe *frontend, info *registryInfo) (string, string, bool, int) {
			repo, b := smallRepo, info.SmallBlob
			if large {
				repo, b = largeRepo, info.LargeBlob
			}
			return http.MethodGet, "/v2/" + fe.RepoPrefix + repo + "/blobs/" + b.Digest, true, http.StatusOK
		}
	}
	return []workload{
		{Key: "head1", Title: "manifest HEAD, 1 conn", Kind: kindVegeta, Conns: 1, request: manifest(http.MethodHead)},
		{Key: "head32", Title: "manifest HEAD, 32 conns", Kind: kindVegeta, Conns: 32, Small: true, request: manifest(http.MethodHead)},
		{Key: "get32", Title: "manifest GET, 32 conns", Kind: kindWrk, Conns: 32, Small: true, request: manifest(http.MethodGet)},
		{Key: "token32", Title: "token GET, 32 conns", Kind: kindWrk, Conns: 32, Small: true,
			request: func(fe *frontend, _ *registryInfo) (string, string, bool, int) {
				return http.MethodGet, tokenTarget(fe), false, http.StatusOK
			}},
		{Key: "challenge32", Title: "401 challenge, 32 conns", Kind: kindWrk, Conns: 32, Small: true,
			request: func(fe *frontend, _ *registryInfo) (string, string, bool, int) {
				return http.MethodGet, manifestPath(fe), false, http.StatusUnauthorized
			}},
		{Key: "blob1m", Title: "blob GET " + units.BytesSize(float64(o.smallBlob)) + ", 8 conns", Kind: kindWrk, Conns: 8, Blob: true, request: blob(false)},
		{Key: "blob256m", Title: "blob GET " + units.BytesSize(float64(o.largeBlob)) + ", 1 conn", Kind: kindWrk, Conns: 1, Blob: true, request: blob(true)},
		{Key: "pull", Title: "pull, 10 layers, " + units.BytesSize(float64(o.pullTotal)), Kind: kindPull},
	}
}

// sample is one measurement of one workload through one front end.
type sample struct {
	Requests  int64   `json:"requests,omitempty"`
	Bytes     int64   `json:"bytes,omitempty"`
	Seconds   float64 `json:"seconds"`
	ReqPerSec float64 `json:"req_per_sec,omitempty"`
	MBPerSec  float64 `json:"mb_per_sec,omitempty"` // 10^6 bytes per second, response bodies
	P50ms     float64 `json:"p50_ms,omitempty"`
	P99ms     float64 `json:"p99_ms,omitempty"`
	// PullSeconds are the wall times of the pulls of a round; Seconds is their median.
	PullSeconds []float64 `json:"pull_seconds,omitempty"`
	// FrontendCPU and RegistryCPU are the CPU seconds the front end's processes and the
	// registry used during the run (from /proc/<pid>/stat, 10 ms resolution).
	FrontendCPU float64 `json:"frontend_cpu_s"`
	RegistryCPU float64 `json:"registry_cpu_s"`
	// LoadCPU is what loadbench itself used: vegeta's CPU in its runs; near a whole core, the
	// client and not the front end may set the pace.
	LoadCPU float64 `json:"load_cpu_s"`
	Problem string  `json:"problem,omitempty"` // errors or unexpected statuses seen
}

// run measures w through fe once, with the CPU time the servers spent on it.
func (b *bench) run(w workload, fe *frontend, d time.Duration) (sample, error) {
	feCPU := func() float64 {
		if fe.proc == nil {
			return 0
		}
		return fe.proc.cpuSeconds()
	}
	self := func() float64 {
		p, err := procfs.Self()
		if err != nil {
			return 0
		}
		stat, err := p.Stat()
		if err != nil {
			return 0
		}
		return stat.CPUTime()
	}
	for {
		fe0, reg0, self0 := feCPU(), b.registry.cpuSeconds(), self()
		var s sample
		var err error
		switch w.Kind {
		case kindPull:
			s, err = b.pulls(fe)
		case kindVegeta:
			s, err = b.vegeta(w, fe, d)
		default:
			s, err = b.wrk(w, fe, d)
		}
		s.FrontendCPU, s.RegistryCPU, s.LoadCPU = feCPU()-fe0, b.registry.cpuSeconds()-reg0, self()-self0
		// wrk runs for its whole duration, however few responses come: a run too short for one
		// (a large blob on a busy machine, in a smoke run) is run again, twice as long.
		if err != nil || w.Kind != kindWrk || s.Requests > 0 || d >= 32*time.Second {
			return s, err
		}
		d *= 2
	}
}

// vegeta sends w's request through fe with vegeta from w.Conns workers, each waiting for its
// response before it sends again over its kept-alive connection (a closed loop, as wrk runs),
// for d or, with -requests, until each connection's share of responses has come. Every
// response's status is checked and every body read to its end.
func (b *bench) vegeta(w workload, fe *frontend, d time.Duration) (sample, error) {
	method, target, auth, status := w.request(fe, &b.info)
	header := http.Header{}
	if auth {
		header.Set("Authorization", "Bearer "+fe.token)
	}
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: method, URL: "http://" + fe.Addr + target, Header: header})
	conns := uint64(w.Conns)
	attacker := vegeta.NewAttacker(vegeta.Workers(conns), vegeta.MaxWorkers(conns),
		vegeta.Connections(w.Conns), vegeta.MaxConnections(w.Conns),
		vegeta.MaxBody(0), // read every body to its end, keep none of it
		vegeta.Timeout(60*time.Second), vegeta.Proxy(nil))
	var pacer vegeta.Pacer = vegeta.ConstantPacer{} // the zero rate: as fast as the workers go
	if b.o.maxRequests > 0 {
		pacer, d = stopAfter(uint64(b.o.maxRequests)*conns), 0
	}
	var m vegeta.Metrics
	var bodyBytes int64
	for res := range attacker.Attack(targeter, pacer, d, "") {
		m.Add(res)
		// A result with a status had its body read to the end without error.
		if res.Code != 0 && method != http.MethodHead {
			n, _ := strconv.ParseInt(res.Headers.Get("Content-Length"), 10, 64)
			bodyBytes += n
		}
	}
	m.Close()
	s := sample{Requests: int64(m.Requests), Bytes: bodyBytes, Seconds: (m.Duration + m.Wait).Seconds(),
		P50ms: m.Latencies.P50.Seconds() * 1e3, P99ms: m.Latencies.P99.Seconds() * 1e3}
	if s.Seconds > 0 {
		s.ReqPerSec = float64(s.Requests) / s.Seconds
		s.MBPerSec = float64(s.Bytes) / 1e6 / s.Seconds
	}
	if m.Requests == 0 {
		return s, fmt.Errorf("%s %s%s: no response", method, fe.Addr, target)
	}
	if got := m.StatusCodes[strconv.Itoa(status)]; uint64(got) != m.Requests {
		s.Problem = fmt.Sprintf("statuses %v (0: no response), want all %d; errors: %s", m.StatusCodes, status, strings.Join(m.Errors, "; "))
	}
	return s, nil
}

// stopAfter is a vegeta pacer for smoke runs: as fast as the workers go, n requests in all.
type stopAfter uint64

func (n stopAfter) Pace(_ time.Duration, hits uint64) (time.Duration, bool) {
	return 0, hits >= uint64(n)
}

func (stopAfter) Rate(time.Duration) float64 { return 0 }

// ---- wrk ----

type wrkResult struct {
	Requests      int64 `json:"requests"`
	Bytes         int64 `json:"bytes"`
	DurationUS    int64 `json:"duration_us"`
	StatusErrors  int64 `json:"status_errors"`
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	Timeouts      int64 `json:"timeouts"`
	P50us         int64 `json:"p50_us"`
	P99us         int64 `json:"p99_us"`
	MaxUS         int64 `json:"max_us"`
}

// wrk runs wrk (one thread, on the load generator's core) with a generated Lua script that
// sets the method and headers and prints the summary as JSON. With -requests, the script stops
// after each connection's share of responses, but wrk still runs for its whole second.
func (b *bench) wrk(w workload, fe *frontend, d time.Duration) (sample, error) {
	method, target, auth, status := w.request(fe, &b.info)
	headers := map[string]string{}
	if auth {
		headers["Authorization"] = "Bearer " + fe.token
	}
	script, err := render("wrk.lua.tmpl", map[string]any{"Method": method, "Headers": headers, "MaxRequests": b.o.maxRequests * w.Conns})
	if err != nil {
		return sample{}, err
	}
	scriptPath := filepath.Join(b.work, "wrk.lua")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		return sample{}, err
	}
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	argv := []string{b.o.wrk, "-t1", "-c" + strconv.Itoa(w.Conns), "-d" + strconv.Itoa(secs) + "s", "--timeout", "60s", "--latency",
		"-s", scriptPath, "http://" + fe.Addr + target}
	if b.o.clientCPUs != "" {
		argv = append([]string{"taskset", "-c", b.o.clientCPUs}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	_, line, ok := strings.Cut(out.String(), "LOADBENCH ")
	if !ok {
		return sample{}, fmt.Errorf("wrk printed no summary:\n%s", out.String())
	}
	line, _, _ = strings.Cut(line, "\n")
	var r wrkResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return sample{}, fmt.Errorf("wrk summary %q: %w", line, err)
	}
	s := sample{Requests: r.Requests, Bytes: r.Bytes, Seconds: float64(r.DurationUS) / 1e6,
		P50ms: float64(r.P50us) / 1e3, P99ms: float64(r.P99us) / 1e3}
	if s.Seconds > 0 {
		s.ReqPerSec = float64(r.Requests) / s.Seconds
		s.MBPerSec = float64(r.Bytes) / 1e6 / s.Seconds
	}
	var problems []string
	wantStatusErrors := int64(0)
	if status >= 400 {
		wantStatusErrors = r.Requests // every response is the expected 4xx
	}
	if r.StatusErrors != wantStatusErrors {
		problems = append(problems, fmt.Sprintf("%d responses had a status ≥ 400 (want %d)", r.StatusErrors, wantStatusErrors))
	}
	if n := r.ConnectErrors + r.ReadErrors + r.WriteErrors + r.Timeouts; n > 0 {
		problems = append(problems, fmt.Sprintf("socket errors: connect %d, read %d, write %d, timeout %d", r.ConnectErrors, r.ReadErrors, r.WriteErrors, r.Timeouts))
	}
	if r.Requests == 0 {
		problems = append(problems, "no response completed")
	}
	s.Problem = strings.Join(problems, "; ")
	return s, nil
}

// ---- pull ----

// pulls pulls the 10-layer image through fe b.o.pulls times with go-containerregistry, each with
// a fresh transport (new connections, a new token), and checks every digest.
func (b *bench) pulls(fe *frontend) (sample, error) {
	var times []float64
	var total int64
	for range b.o.pulls {
		start := time.Now()
		n, err := b.pull(fe)
		if err != nil {
			return sample{}, err
		}
		times = append(times, time.Since(start).Seconds())
		total = n
	}
	s := sample{PullSeconds: times, Seconds: median(times), Bytes: total}
	s.MBPerSec = float64(total) / 1e6 / s.Seconds
	return s, nil
}

// pull is one pull as a client does it: ping, challenge, token, manifest, config, then the
// layers three at a time (Docker's default), each verified against its digest.
func (b *bench) pull(fe *frontend) (int64, error) {
	ref, err := name.ParseReference(fe.Addr+"/"+fe.RepoPrefix+pullRepo+":latest", name.Insecure)
	if err != nil {
		return 0, err
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	var rt http.RoundTripper = tr
	if fe.ScopePrefix != fe.RepoPrefix {
		rt = &scopePrefixer{next: tr, prefix: fe.ScopePrefix}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := remote.Image(ref, remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("pull %s: %w", ref, err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return 0, fmt.Errorf("pull %s: config: %w", ref, err)
	}
	if got := sha256Digest(config); got != b.info.PullConfig.Digest {
		return 0, fmt.Errorf("pull %s: config %s, want %s", ref, got, b.info.PullConfig.Digest)
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	if len(layers) != len(b.info.PullLayers) {
		return 0, fmt.Errorf("pull %s: %d layers, want %d", ref, len(layers), len(b.info.PullLayers))
	}
	total := int64(len(config))
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := readLayer(l.Compressed, b.info.PullLayers[i])
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				errs = append(errs, fmt.Errorf("pull %s: layer %d: %w", ref, i, err))
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// scopePrefixer puts the project into the repository scopes of token requests, on the client
// side: what a client of Traefik alone (which maps paths only) must do to get a usable token,
// as the token workload's client does. Harbor answers a request with an unusable token with a
// Basic challenge, so a client cannot learn the right scope from the registry.
type scopePrefixer struct {
	next   http.RoundTripper
	prefix string
}

func (s *scopePrefixer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/service/token" {
		return s.next.RoundTrip(r)
	}
	q := r.URL.Query()
	for i, value := range q["scope"] {
		scopes := strings.Split(value, " ")
		for j, scope := range scopes {
			if rest, ok := strings.CutPrefix(scope, "repository:"); ok && !strings.HasPrefix(rest, s.prefix) {
				scopes[j] = "repository:" + s.prefix + rest
			}
		}
		q["scope"][i] = strings.Join(scopes, " ")
	}
	r = r.Clone(r.Context())
	r.URL.RawQuery = q.Encode()
	return s.next.RoundTrip(r)
}

func readLayer(open func() (io.ReadCloser, error), want blobInfo) (int64, error) {
	rc, err := open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return n, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want.Digest || n != want.Size {
		return n, fmt.Errorf("%d bytes with digest %s, want %d with %s", n, got, want.Size, want.Digest)
	}
	return n, nil
}

// ---- checks before measuring ----

// preflight obtains fe's token through fe's own token mapping and checks, with a plain client,
// that every workload gets the answer it should through fe, so that no measurement counts
// errors as throughput. It records the challenge a client of fe sees.
func (b *bench) preflight(fe *frontend) error {
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	do := func(method, target, authorization string) (*http.Response, []byte, error) {
		req, err := http.NewRequest(method, "http://"+fe.Addr+target, nil)
		if err != nil {
			return nil, nil, err
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s (%s): %s", fe.Title, fe.Addr, fmt.Sprintf(format, args...))
	}

	// The token, through the front end's mapping of the token request.
	resp, body, err := do(http.MethodGet, tokenTarget(fe), "")
	if err != nil {
		return fail("token: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("token: %s: %s", resp.Status, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		return fail("token: no token in %s", body)
	}
	if !grantsPull(tok.Token, project+"/"+manifestRepo) {
		return fail("token: does not grant pull on %s/%s: %s", project, manifestRepo, body)
	}
	fe.token = tok.Token
	auth := "Bearer " + fe.token

	resp, _, err = do(http.MethodHead, manifestPath(fe), auth)
	if err != nil {
		return fail("manifest HEAD: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != b.info.Manifest.Digest {
		return fail("manifest HEAD: %s, digest %q, want 200 and %s", resp.Status, resp.Header.Get("Docker-Content-Digest"), b.info.Manifest.Digest)
	}
	resp, body, err = do(http.MethodGet, manifestPath(fe), auth)
	if err != nil {
		return fail("manifest GET: %v", err)
	}
	if resp.StatusCode != http.StatusOK || sha256Digest(body) != b.info.Manifest.Digest {
		return fail("manifest GET: %s, body digest %s", resp.Status, sha256Digest(body))
	}
	if resp.ContentLength < 0 {
		return fail("manifest GET: no Content-Length")
	}

	resp, body, err = do(http.MethodGet, manifestPath(fe), "")
	if err != nil {
		return fail("challenge: %v", err)
	}
	fe.Challenge = resp.Header.Get("Www-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(fe.Challenge, `Bearer realm="http://`+fe.Addr+`/service/token"`) {
		return fail("challenge: %s with %q, want 401 and a realm on this host: %s", resp.Status, fe.Challenge, body)
	}
	if fe.Key == fePlugin && strings.Contains(fe.Challenge, project+"/") {
		return fail("challenge: %q names the project: the plugin is not at work", fe.Challenge)
	}

	for _, blob := range []struct {
		repo string
		info blobInfo
	}{{smallRepo, b.info.SmallBlob}, {largeRepo, b.info.LargeBlob}} {
		resp, body, err = do(http.MethodGet, "/v2/"+fe.RepoPrefix+blob.repo+"/blobs/"+blob.info.Digest, auth)
		if err != nil {
			return fail("blob: %v", err)
		}
		if resp.StatusCode != http.StatusOK || sha256Digest(body) != blob.info.Digest || resp.ContentLength != blob.info.Size {
			return fail("blob %s: %s, %d bytes (Content-Length %d), digest %s", blob.repo, resp.Status, len(body), resp.ContentLength, sha256Digest(body))
		}
	}
	if _, err := b.pull(fe); err != nil {
		return fail("%v", err)
	}
	return nil
}

// grantsPull tells whether a registry token's claims grant pull on repo.
func grantsPull(token, repo string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Access []struct {
			Type, Name string
			Actions    []string
		} `json:"access"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return false
	}
	for _, a := range claims.Access {
		if a.Type == "repository" && a.Name == repo && slices.Contains(a.Actions, "pull") {
			return true
		}
	}
	return false
}
