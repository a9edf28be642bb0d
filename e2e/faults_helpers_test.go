package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harness"
)

// The fault world: the scenario world of startFakeMirror, with room for something between Traefik
// and the fake Harbor (a fault-injecting HTTP proxy, or the hostile suite's byte tap), and a
// fake Harbor that can be stopped and started again on the same address.

// faultOptions describes a fault world.
type faultOptions struct {
	// Settings are the plugin's settings; default: defaultSettings.
	Settings map[string]any
	// NoMiddleware routes Traefik to Harbor without the plugin (for baselines).
	NoMiddleware bool
	// Front, when set, starts whatever sits between Traefik and Harbor and returns the URL
	// Traefik's service should use; default: Harbor's own URL.
	Front func(t *testing.T, harborURL string) string
}

// faultStart starts the two fake upstream registries, the fake Harbor with the worlds' projects,
// the front (if any) and Traefik; everything stops when the test ends.
func faultStart(t *testing.T, opts faultOptions) *mirror {
	t.Helper()
	m := &mirror{t: t, DockerHub: startHub(t), GHCR: startHub(t)}
	startFakeHarbor(t, m, "")
	settings := opts.Settings
	if settings == nil {
		settings = defaultSettings()
	}
	backend := m.Harbor.URL
	if opts.Front != nil {
		backend = opts.Front(t, m.Harbor.URL)
	}
	m.Traefik = harness.StartTraefik(t, harness.TraefikConfig{
		Dynamic:  dynamicConfig(backend, settings, !opts.NoMiddleware),
		NoPlugin: opts.NoMiddleware,
	})
	m.Host = hostOf(t, m.Traefik.WebURL)
	if !opts.NoMiddleware {
		requirePluginActive(t, m)
	}
	return m
}

// faultRule is one fault the proxy injects into the responses of the requests it matches.
type faultRule struct {
	// Name labels the rule in the proxy's log.
	Name string
	// Match picks the requests the rule applies to (as the proxy received them from Traefik).
	Match func(r *http.Request) bool
	// Delay holds Harbor's response this long before any of it is sent.
	Delay time.Duration
	// CutAfter > 0 sends the status, headers and this many body bytes, then drops the
	// connection, as a Harbor that dies mid-response. A cut rule fires once.
	CutAfter int64
	// SetHeader replaces these response headers with exactly these bytes.
	SetHeader map[string]string

	held  chan struct{} // closed when the first matched response starts being held
	fired bool
}

// faultSeen is one request the proxy handled.
type faultSeen struct {
	Method, RequestURI, Rule string
	Status                   int
	// Sent is how many body bytes went back to Traefik; Cut says the connection was dropped.
	Sent int64
	Cut  bool
	// Done is the order in which responses completed (1, 2, ...).
	Done int
}

// faultProxy is a small HTTP reverse proxy between Traefik and Harbor that injects faults. It
// keeps the request target and Host as received, and the response bytes as Harbor sent them,
// except where a rule says otherwise.
type faultProxy struct {
	URL, Host string

	target    string // Harbor's host:port
	transport *http.Transport

	mu    sync.Mutex
	rules []*faultRule
	seen  []faultSeen
	done  int
}

// faultStartProxy starts a proxy to harborURL, stopped when the test ends.
func faultStartProxy(t *testing.T, harborURL string, rules ...*faultRule) *faultProxy {
	t.Helper()
	u, err := url.Parse(harborURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{
		target: u.Host,
		// No compression of its own, so bodies and their lengths pass as Harbor sent them.
		transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64},
	}
	for _, r := range rules {
		p.Add(r)
	}
	l := harness.Listen(t)
	server := &http.Server{Handler: p}
	go func() { _ = server.Serve(l) }()
	t.Cleanup(func() {
		_ = server.Close()
		p.transport.CloseIdleConnections()
	})
	p.Host = l.Addr().String()
	p.URL = "http://" + p.Host
	return p
}

// Add installs a rule; the first matching rule applies.
func (p *faultProxy) Add(r *faultRule) *faultRule {
	r.held = make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r
}

// Held is closed when a response of r starts being held by its Delay.
func (r *faultRule) Held() <-chan struct{} { return r.held }

// Seen returns the requests handled so far.
func (p *faultProxy) Seen() []faultSeen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]faultSeen(nil), p.seen...)
}

// pick returns the rule for r, nil for none; a cut rule that fired no longer matches.
func (p *faultProxy) pick(r *http.Request) *faultRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rule := range p.rules {
		if rule.CutAfter > 0 && rule.fired {
			continue
		}
		if rule.Match(r) {
			if rule.Delay > 0 && !rule.fired {
				close(rule.held)
			}
			rule.fired = true
			return rule
		}
	}
	return nil
}

func (p *faultProxy) record(s faultSeen) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	s.Done = p.done
	p.seen = append(p.seen, s)
}

var faultHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rule := p.pick(r)
	seen := faultSeen{Method: r.Method, RequestURI: r.RequestURI}
	if rule != nil {
		seen.Rule = rule.Name
	}
	defer func() { p.record(seen) }()

	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", p.target
	out.Host = r.Host
	for _, h := range faultHopHeaders {
		out.Header.Del(h)
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		seen.Status = http.StatusBadGateway
		http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if rule != nil && rule.Delay > 0 {
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
		}
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range faultHopHeaders {
		w.Header().Del(h)
	}
	if rule != nil {
		for k, v := range rule.SetHeader {
			w.Header()[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	seen.Status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)
	if rule != nil && rule.CutAfter > 0 {
		seen.Sent, _ = io.CopyN(w, resp.Body, rule.CutAfter)
		seen.Cut = true
		_ = http.NewResponseController(w).Flush()
		// Drops the connection without a proper end of the response (and without a log line).
		panic(http.ErrAbortHandler)
	}
	seen.Sent, err = io.Copy(w, resp.Body)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		seen.Cut = true
	}
}

// faultPath matches requests whose path (as the proxy received it) satisfies f.
func faultPath(f func(path string) bool) func(*http.Request) bool {
	return func(r *http.Request) bool { return f(r.URL.Path) }
}
