package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/harbormirror/harbormirror/e2e/images"
)

// Faults between Traefik and Harbor: Harbor down and back, a connection cut in the middle of a
// large blob, slow answers next to fast ones, and malformed headers from upstream. The plugin
// must neither hide nor worsen them: Traefik's 502 comes back promptly, clients can resume,
// one slow exchange holds up no other, and headers it cannot parse pass through untouched.

// faultSanityBound is far above any answer expected here and below every Traefik timeout: a
// request that takes longer is hanging, not failing fast.
const faultSanityBound = 10 * time.Second

// faultClient does not follow redirects and keeps bodies as sent.
var faultClient = &http.Client{
	Transport:     &http.Transport{Proxy: nil, DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       60 * time.Second,
}

// TestFaultHarborDown: with Harbor stopped, every kind of request through the mirror gets
// Traefik's 502 at once (the latency is reported; only a generous sanity bound is asserted); once
// a Harbor is back on the same address, a pull through the mirror works again.
func TestFaultHarborDown(t *testing.T) {
	m := faultStart(t, faultOptions{})
	seedDockerHub(t, m, images.Hello)
	ref := m.Host + "/library/hello:latest"
	want := digestOf(t, images.Hello)
	if got := faultPullDigest(t, ref); got != want {
		t.Fatalf("before the outage: %s has digest %s, want %s", ref, got, want)
	}

	addr := m.Harbor.Host
	if err := m.Harbor.Close(); err != nil {
		t.Fatalf("stop Harbor: %v", err)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/v2/"},
		{"HEAD", "/v2/library/hello/manifests/latest"},
		{"GET", "/v2/library/hello/manifests/latest?ns=docker.io"},
		{"GET", "/v2/library/hello/blobs/" + digestOf(t, images.Hello)},
		{"GET", "/service/token?service=harbor-registry&scope=repository:library/hello:pull"},
		{"POST", "/v2/library/hello/blobs/uploads/"},
	} {
		start := time.Now()
		resp := faultDo(t, req.method, "http://"+m.Host+req.path, nil, nil)
		latency := time.Since(start)
		t.Logf("Harbor down: %s %s -> %d %q in %v", req.method, req.path, resp.StatusCode, resp.body, latency.Round(time.Microsecond))
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("Harbor down: %s %s: %d %q, want Traefik's 502", req.method, req.path, resp.StatusCode, resp.body)
		}
		if latency > faultSanityBound {
			t.Errorf("Harbor down: %s %s took %v: hanging, not failing fast", req.method, req.path, latency)
		}
	}

	startFakeHarbor(t, m, addr)
	start := time.Now()
	if got := faultPullDigest(t, ref); got != want {
		t.Errorf("after Harbor returned: %s has digest %s, want %s", ref, got, want)
	}
	t.Logf("after Harbor returned on %s: pull of %s in %v", addr, ref, time.Since(start).Round(time.Millisecond))
	reqs := requests(m)
	assertServed(t, reqs, "hub/library/hello")
	assertConfined(t, reqs, "hub")
}

// TestFaultBlobCutMidway: the connection between Traefik and Harbor drops after 20 MiB of the
// 50 MiB layer of images.Large, once. A client resuming with Range (as dockerd does) gets the rest
// and the right digest; go-containerregistry reports the broken download as an error (never a
// corrupt layer), and its next attempt gets the whole layer with the right digest.
func TestFaultBlobCutMidway(t *testing.T) {
	var proxy *faultProxy
	m := faultStart(t, faultOptions{Front: func(t *testing.T, harborURL string) string {
		proxy = faultStartProxy(t, harborURL)
		return proxy.URL
	}})
	seedDockerHub(t, m, images.Large)
	big, size := faultBiggestLayer(t, images.Large)
	blobPath := "/v2/hub/library/large/blobs/" + big.String()
	cut := func(name string, after int64) *faultRule {
		return proxy.Add(&faultRule{Name: name, CutAfter: after, Match: func(r *http.Request) bool {
			return r.Method == http.MethodGet && r.URL.Path == blobPath
		}})
	}

	// By hand, resuming with Range.
	cut("cut for the Range client", 20<<20)
	token := faultToken(t, m.Host, "repository:library/large:pull")
	url := "http://" + m.Host + "/v2/library/large/blobs/" + big.String()
	auth := map[string]string{"Authorization": "Bearer " + token}
	hash := sha256.New()
	resp, err := faultStream(url, auth)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(hash, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil || got >= size {
		t.Fatalf("first GET of the layer: %d, %d of %d bytes, error %v: want 200 and a broken body", resp.StatusCode, got, size, err)
	}
	t.Logf("Range client: the first GET broke after %d of %d bytes: %v", got, size, err)
	resp, err = faultStream(url, map[string]string{"Authorization": "Bearer " + token, "Range": fmt.Sprintf("bytes=%d-", got)})
	if err != nil {
		t.Fatal(err)
	}
	wantRange := fmt.Sprintf("bytes %d-%d/%d", got, size-1, size)
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantRange {
		t.Fatalf("resume: %d Content-Range %q, want 206 %q", resp.StatusCode, resp.Header.Get("Content-Range"), wantRange)
	}
	rest, err := io.Copy(hash, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("resume: %v after %d bytes", err, rest)
	}
	if digest := "sha256:" + hex.EncodeToString(hash.Sum(nil)); got+rest != size || digest != big.String() {
		t.Errorf("resumed layer: %d bytes hashing to %s, want %d and %s", got+rest, digest, size, big)
	}

	// go-containerregistry, retried by its caller.
	cut("cut for go-containerregistry", 30<<20)
	ref, err := name.ParseReference(m.Host+"/library/large:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var attempts []string
	for attempt := 1; attempt <= 3; attempt++ {
		err := faultReadLayer(ref, big)
		attempts = append(attempts, fmt.Sprint(err))
		if err == nil {
			break
		}
	}
	t.Logf("go-containerregistry attempts: %q", attempts)
	// Every attempt either fails or reads the whole layer with its digest verified; the last one
	// must succeed.
	if attempts[len(attempts)-1] != "<nil>" {
		t.Errorf("go-containerregistry: attempts %q, want the layer read whole in the end", attempts)
	}

	cuts := 0
	for _, s := range proxy.Seen() {
		if s.Cut {
			cuts++
			t.Logf("proxy cut %s %s after %d bytes (%s)", s.Method, s.RequestURI, s.Sent, s.Rule)
		}
	}
	if cuts != 2 {
		t.Errorf("the proxy cut %d responses, want 2:\n%v", cuts, proxy.Seen())
	}
	reqs := requests(m)
	assertConfined(t, reqs, "hub")
	assertServed(t, reqs, "hub/library/large")
}

// TestFaultSlowAnswersDoNotBlock: while the token endpoint and a blob each hold their answer for
// 3 s, a manifest HEAD through the same Traefik and plugin completes. Only the order is asserted.
func TestFaultSlowAnswersDoNotBlock(t *testing.T) {
	var proxy *faultProxy
	m := faultStart(t, faultOptions{Front: func(t *testing.T, harborURL string) string {
		proxy = faultStartProxy(t, harborURL)
		return proxy.URL
	}})
	seedDockerHub(t, m, images.Single)
	facts := pullSingleFacts(t)
	token := faultToken(t, m.Host, "repository:library/single:pull")
	auth := map[string]string{"Authorization": "Bearer " + token}
	manifestURL := "http://" + m.Host + "/v2/library/single/manifests/latest"
	if resp := faultDo(t, "HEAD", manifestURL, nil, auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s: %d before any delay", manifestURL, resp.StatusCode)
	}

	const delay = 3 * time.Second
	slowToken := proxy.Add(&faultRule{Name: "slow token", Delay: delay, Match: faultPath(func(p string) bool { return p == "/service/token" })})
	blob := facts.Layers[0]
	slowBlob := proxy.Add(&faultRule{Name: "slow blob", Delay: delay, Match: faultPath(func(p string) bool { return strings.HasSuffix(p, "/blobs/"+blob) })})

	var order atomic.Int64
	type outcome struct {
		status  int
		err     error
		order   int64
		latency time.Duration
	}
	var wg sync.WaitGroup
	slow := map[string]*outcome{"token": {}, "blob": {}}
	for what, url := range map[string]string{
		"token": "http://" + m.Host + "/service/token?service=harbor-registry&scope=repository:library/single:pull",
		"blob":  "http://" + m.Host + "/v2/library/single/blobs/" + blob,
	} {
		o := slow[what]
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := faultStream(url, auth)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				o.status = resp.StatusCode
			}
			o.err, o.order, o.latency = err, order.Add(1), time.Since(start)
		}()
	}
	for _, held := range []<-chan struct{}{slowToken.Held(), slowBlob.Held()} {
		select {
		case <-held:
		case <-time.After(faultSanityBound):
			t.Fatal("the slow requests never reached the proxy")
		}
	}
	start := time.Now()
	head := faultDo(t, "HEAD", manifestURL, nil, auth)
	headOrder, headLatency := order.Add(1), time.Since(start)
	wg.Wait()

	t.Logf("HEAD manifest while both were held: %d in %v (completion #%d); slow token: %d in %v (#%d); slow blob: %d in %v (#%d)",
		head.StatusCode, headLatency.Round(time.Microsecond), headOrder,
		slow["token"].status, slow["token"].latency.Round(time.Millisecond), slow["token"].order,
		slow["blob"].status, slow["blob"].latency.Round(time.Millisecond), slow["blob"].order)
	if head.StatusCode != http.StatusOK || head.Header.Get("Docker-Content-Digest") != facts.Manifest {
		t.Errorf("HEAD manifest: %d, digest %q, want 200 and %s", head.StatusCode, head.Header.Get("Docker-Content-Digest"), facts.Manifest)
	}
	for what, o := range slow {
		if o.err != nil || o.status != http.StatusOK {
			t.Errorf("slow %s: %d, %v, want 200 once released", what, o.status, o.err)
		}
		if headOrder > o.order {
			t.Errorf("the HEAD completed after the slow %s (#%d vs #%d): one slow answer held up another request", what, headOrder, o.order)
		}
	}
	// The proxy saw the same order: the HEAD answered before either held response was released.
	var seen []string
	for _, s := range proxy.Seen() {
		seen = append(seen, fmt.Sprintf("#%d %s %s [%s]", s.Done, s.Method, s.RequestURI, s.Rule))
	}
	if n := len(seen); n < 3 || !strings.Contains(seen[n-3], "HEAD ") || strings.Contains(seen[n-3], "slow") {
		t.Errorf("the proxy answered in this order, want the HEAD before the held ones:\n%s", strings.Join(seen, "\n"))
	}
	assertConfined(t, requests(m), "hub")
}

// TestFaultMalformedUpstreamHeaders: Harbor's Www-Authenticate (on a 401), Location (on a 202
// upload) and Link (on a 200 tags/list page) are replaced by garbage the plugin cannot parse; each
// comes to the client byte for byte as sent, Traefik keeps serving, and nothing is logged per
// request at INFO or above. Harbor's own, well-formed headers on the same requests are rewritten,
// which shows the plugin really handles these responses.
func TestFaultMalformedUpstreamHeaders(t *testing.T) {
	var proxy *faultProxy
	m := faultStart(t, faultOptions{Settings: map[string]any{"project": "team", "libraryPrefix": false}, Front: func(t *testing.T, harborURL string) string {
		proxy = faultStartProxy(t, harborURL)
		return proxy.URL
	}})
	teamStore(t, m, "app", "v1", images.Single)
	teamStore(t, m, "app", "v2", images.Single)
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(alice+":"+alicePassword))
	// Each header on the status the plugin rewrites it for.
	requestsFor := map[string]struct {
		method, target, auth string
		status               int
	}{
		"Www-Authenticate": {"GET", "/v2/app/manifests/v1", "", http.StatusUnauthorized},
		"Location":         {"POST", "/v2/app/blobs/uploads/", basic, http.StatusAccepted},
		"Link":             {"GET", "/v2/app/tags/list?n=1", basic, http.StatusOK},
	}
	huge := strings.Repeat("x", 64<<10)
	cases := []struct {
		header, value string
	}{
		{"Www-Authenticate", `Bearer realm="http://harbor.internal/service/token`},
		{"Www-Authenticate", `Bearer realm="http://harbor.internal/service/token\`},
		{"Www-Authenticate", `Bearer ,=,realm=`},
		{"Www-Authenticate", `<broken`},
		{"Www-Authenticate", `Bearer realm="http://[::1`},
		{"Www-Authenticate", `Bearer realm="` + huge},
		{"Www-Authenticate", "Bearer \xff\xfe realm=\"\xc3\x28\""},
		{"Location", `<broken`},
		{"Location", `http://[::1`},
		{"Location", `http://[::1/v2/team/app/blobs/uploads/x`},
		{"Location", `http://[::1` + huge},
		{"Location", "\xff\xfe/v2/team/app/blobs/uploads/\xc3\x28"},
		{"Location", `javascript:alert(1)//v2/team/app`},
		{"Link", `<broken`},
		{"Link", `<http://[::1>; rel="next"`},
		{"Link", `<</v2/team/app/tags/list?n=1>; rel="next`},
		{"Link", `rel="next"; <`},
		{"Link", `<` + huge},
		{"Link", "<\xff\xfe>; rel=\"next\xc3\x28\""},
	}
	for i, c := range cases {
		marker := strconv.Itoa(i)
		proxy.Add(&faultRule{Name: "garbage " + c.header + " #" + marker, SetHeader: map[string]string{c.header: c.value},
			Match: func(r *http.Request) bool { return r.Header.Get("X-Fault-Case") == marker }})
	}

	// Controls: Harbor's own headers on the same requests are rewritten.
	controls := map[string]func(v string) bool{
		"Www-Authenticate": func(v string) bool {
			return v == `Bearer realm="http://`+m.Host+`/service/token",service="harbor-registry",scope="repository:app:pull"`
		},
		"Location": func(v string) bool { return strings.HasPrefix(v, "/v2/app/blobs/uploads/") },
		"Link":     func(v string) bool { return strings.HasPrefix(v, "</v2/app/tags/list?") },
	}
	for header, ok := range controls {
		req := requestsFor[header]
		resp := faultRaw(t, m.Host, req.method, req.target, req.auth)
		if got := resp.Header.Values(header); resp.StatusCode != req.status || len(got) != 1 || !ok(got[0]) {
			t.Errorf("control %s %s: %d, %s %q: not rewritten by the plugin", req.method, req.target, resp.StatusCode, header, got)
		}
	}

	logMark := len(m.Traefik.Log())
	for i, c := range cases {
		req := requestsFor[c.header]
		resp := faultRaw(t, m.Host, req.method, req.target, req.auth, "X-Fault-Case: "+strconv.Itoa(i))
		got := resp.Header.Values(c.header)
		if resp.StatusCode != req.status || len(got) != 1 || got[0] != c.value {
			t.Errorf("%s %q (%d bytes): the client got %d with %.200q", c.header, faultShort(c.value), len(c.value), resp.StatusCode, got)
		} else {
			t.Logf("%s %q (%d bytes): passed through unchanged with %d", c.header, faultShort(c.value), len(c.value), resp.StatusCode)
		}
	}
	// Traefik still serves, the plugin included.
	resp := faultRaw(t, m.Host, "GET", "/v2/app/manifests/v1", "")
	if !controls["Www-Authenticate"](resp.Header.Get("Www-Authenticate")) {
		t.Errorf("after the garbage: %d %q", resp.StatusCode, resp.Header.Get("Www-Authenticate"))
	}
	for _, s := range proxy.Seen() {
		if strings.HasPrefix(s.Rule, "garbage") && s.Status == 0 {
			t.Errorf("the proxy did not answer %s %s", s.Method, s.RequestURI)
		}
	}
	time.Sleep(200 * time.Millisecond) // let Traefik finish writing its log
	log := m.Traefik.Log()[logMark:]
	if !strings.Contains(log, " DBG ") {
		t.Errorf("Traefik logged nothing at all while serving the garbage: is this its log?")
	}
	if lines := faultLoudLines(log); len(lines) > 0 {
		t.Errorf("Traefik logged at INFO or above, or a panic, while serving the garbage:\n%s", strings.Join(lines, "\n"))
	}
	assertConfined(t, requests(m), "team")
}

// faultLoudLines returns the log lines at INFO level or above, and any mentioning a panic.
func faultLoudLines(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[1] {
		case "INF", "WRN", "ERR", "FTL", "PNC":
			out = append(out, line)
			continue
		}
		if strings.Contains(strings.ToLower(line), "panic") {
			out = append(out, line)
		}
	}
	return out
}

func faultShort(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// faultResponse is an answered request with its body read.
type faultResponse struct {
	*http.Response
	body []byte
}

// faultDo makes one request and reads the whole answer.
func faultDo(t *testing.T, method, url string, body []byte, header map[string]string) *faultResponse {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := faultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return &faultResponse{resp, b}
}

// faultStream starts a GET and leaves the body to the caller.
func faultStream(url string, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return faultClient.Do(req)
}

// faultRaw sends a request over its own connection and parses the answer without normalising
// header values beyond HTTP's own rules, so that they can be compared byte for byte.
func faultRaw(t *testing.T, host, method, target string, headers ...string) *faultResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for _, h := range headers {
		if h != "" {
			b.WriteString(h + "\r\n")
		}
	}
	if method == http.MethodPost {
		b.WriteString("Content-Length: 0\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, target, err)
	}
	return &faultResponse{resp, body}
}

// faultToken gets an anonymous token for scope from the mirror's token endpoint.
func faultToken(t *testing.T, host, scope string) string {
	t.Helper()
	resp := faultDo(t, "GET", "http://"+host+"/service/token?service=harbor-registry&scope="+scope, nil, nil)
	var answer struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp.body, &answer); resp.StatusCode != http.StatusOK || err != nil || answer.Token == "" {
		t.Fatalf("token for %s: %d %q (%v)", scope, resp.StatusCode, resp.body, err)
	}
	return answer.Token
}

// faultPullDigest resolves ref through the mirror with go-containerregistry and returns its digest.
func faultPullDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return desc.Digest.String()
}

// faultBiggestLayer returns the digest and size of the biggest layer of a standard image.
func faultBiggestLayer(t *testing.T, image string) (v1.Hash, int64) {
	t.Helper()
	layers, err := testImage(t, image).Layers()
	if err != nil {
		t.Fatal(err)
	}
	var digest v1.Hash
	var size int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		if s > size {
			if digest, err = l.Digest(); err != nil {
				t.Fatal(err)
			}
			size = s
		}
	}
	return digest, size
}

// faultReadLayer pulls the image's manifest and reads one layer whole with go-containerregistry,
// which verifies its digest as it reads.
func faultReadLayer(ref name.Reference, digest v1.Hash) error {
	img, err := remote.Image(ref)
	if err != nil {
		return err
	}
	layer, err := img.LayerByDigest(digest)
	if err != nil {
		return err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	if err := rc.Close(); err != nil {
		return err
	}
	size, _ := layer.Size()
	if n != size {
		return errors.New("short layer")
	}
	return nil
}
