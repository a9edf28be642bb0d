package pullload

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Target is one image to pull: its reference on the front end and what the pull must deliver.
type Target struct {
	Ref  string // e.g. 127.0.0.1:5000/library/soak:latest
	Want Expected
}

// Client pulls with go-containerregistry over one shared HTTP transport (connections are reused
// between pulls, as one client node would). It never retries: go-containerregistry's own retries
// would hide failures, so every failed request fails its pull.
type Client struct {
	base  *http.Transport
	stats transportStats
}

// NewClient returns a client whose transport keeps up to maxConns idle connections.
func NewClient(maxConns int) *Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConns = maxConns
	base.MaxIdleConnsPerHost = maxConns
	base.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &Client{base: base}
}

// CloseIdleConnections closes the client's idle connections, so that the server's side of them
// ends too (for an "after" sample).
func (c *Client) CloseIdleConnections() { c.base.CloseIdleConnections() }

// RequestStats counts the HTTP requests the client sent, by status.
type RequestStats struct {
	Requests int64
	ByStatus map[int]int64
	Failed   int64 // transport errors (no response)
	// HTTPSPings are go-containerregistry's first tries of https://<host>/v2/ for a registry
	// named insecure; they fail on a plain-HTTP front end before the http:// ping and are
	// counted here, not in Requests or Failed.
	HTTPSPings int64
	BytesRead  int64 // response body bytes
	Unexpected int64 // responses other than 2xx, and other than 401 to the /v2/ ping
}

// Requests returns the counts so far.
func (c *Client) Requests() RequestStats { return c.stats.snapshot() }

// RoundTrip counts and forwards one request.
func (c *Client) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	c.stats.record(r, resp, err)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.stats.bytes}
	}
	return resp, err
}

type transportStats struct {
	requests, failed, unexpected, bytes atomic.Int64
	httpsPings                          atomic.Int64
	mu                                  sync.Mutex
	byStatus                            map[int]int64
}

func (s *transportStats) record(r *http.Request, resp *http.Response, err error) {
	ping := r.URL.Path == "/v2/" || r.URL.Path == "/v2"
	if ping && r.URL.Scheme == "https" && err != nil {
		s.httpsPings.Add(1)
		return
	}
	s.requests.Add(1)
	if err != nil {
		s.failed.Add(1)
		return
	}
	s.mu.Lock()
	if s.byStatus == nil {
		s.byStatus = map[int]int64{}
	}
	s.byStatus[resp.StatusCode]++
	s.mu.Unlock()
	if (resp.StatusCode < 200 || resp.StatusCode > 299) && !(ping && resp.StatusCode == http.StatusUnauthorized) {
		s.unexpected.Add(1)
	}
}

func (s *transportStats) snapshot() RequestStats {
	st := RequestStats{
		Requests:   s.requests.Load(),
		Failed:     s.failed.Load(),
		Unexpected: s.unexpected.Load(),
		BytesRead:  s.bytes.Load(),
		HTTPSPings: s.httpsPings.Load(),
		ByStatus:   map[int]int64{},
	}
	s.mu.Lock()
	for k, v := range s.byStatus {
		st.ByStatus[k] = v
	}
	s.mu.Unlock()
	return st
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Pull is one finished pull.
type Pull struct {
	Target   string
	Start    time.Time
	Duration time.Duration
	Verified int   // digests checked and found equal: manifest, config, layers
	Bytes    int64 // layer bytes read
	Err      error
}

// Pull fetches t's manifest (anonymously, through the registry's token service, as a client
// would), its config and every layer in full, and checks each digest and size against t.Want:
// the manifest's sha256 over the bytes received, the config's, and each layer's over its
// whole content.
func (c *Client) Pull(ctx context.Context, t Target) Pull {
	p := Pull{Target: t.Ref, Start: time.Now()}
	p.Err = c.pull(ctx, t, &p)
	p.Duration = time.Since(p.Start)
	if p.Err != nil {
		p.Err = fmt.Errorf("pull %s: %w", t.Ref, p.Err)
	}
	return p
}

func (c *Client) pull(ctx context.Context, t Target, p *Pull) error {
	ref, err := name.ParseReference(t.Ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref,
		remote.WithContext(ctx),
		remote.WithTransport(c),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
	)
	if err != nil {
		return err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	if err := check("manifest", sha256Of(raw), t.Want.Manifest); err != nil {
		return err
	}
	p.Verified++
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := check("config", sha256Of(config), t.Want.Config); err != nil {
		return err
	}
	p.Verified++
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(t.Want.Layers) {
		return fmt.Errorf("%d layers, want %d", len(layers), len(t.Want.Layers))
	}
	for i, l := range layers {
		want := t.Want.Layers[i]
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if err := check(fmt.Sprintf("layer %d in the manifest", i), d, want.Digest); err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		p.Bytes += n
		if err != nil {
			return fmt.Errorf("layer %d after %d bytes: %w", i, n, err)
		}
		got := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
		if err := check(fmt.Sprintf("layer %d", i), got, want.Digest); err != nil {
			return err
		}
		if n != want.Size {
			return fmt.Errorf("layer %d: %d bytes, want %d", i, n, want.Size)
		}
		p.Verified++
	}
	return nil
}

func sha256Of(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

func check(what string, got, want v1.Hash) error {
	if got != want {
		return fmt.Errorf("%s: digest %s, want %s", what, got, want)
	}
	return nil
}

// ErrSkipped marks a steady-rate pull that was not started because too many were in flight.
var ErrSkipped = errors.New("skipped: too many pulls in flight")
