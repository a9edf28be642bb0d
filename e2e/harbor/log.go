package harbor

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Request is one request as the registry received it, recorded after it was answered.
type Request struct {
	Time     time.Time
	Method   string
	Path     string
	RawQuery string
	Host     string
	// AuthScheme is the scheme of the Authorization header ("Basic", "Bearer"), empty without one.
	AuthScheme string
	// ForwardedProto is the X-Forwarded-Proto header the registry received, empty without one.
	ForwardedProto string
	Status         int
	// Repository is the repository name of a /v2/<name>/... request, Project its first segment.
	Repository string
	Project    string
	// Scopes are the scopes of a /service/token request as parsed, each with what was granted.
	Scopes []Scope
	// FetchedUpstream names what a proxy-cache project copied from its upstream
	// (e.g. "library/hello:latest") while serving this request; empty when served from cache.
	FetchedUpstream string
}

// Scope is one parsed token scope and the actions the token service granted for it.
type Scope struct {
	Type    string
	Name    string
	Actions []string
	Granted []string
}

// String renders the request as one trace line.
func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Method, r.Path)
	if r.RawQuery != "" {
		b.WriteString("?" + r.RawQuery)
	}
	fmt.Fprintf(&b, " host=%s", r.Host)
	if r.AuthScheme != "" {
		fmt.Fprintf(&b, " auth=%s", r.AuthScheme)
	}
	fmt.Fprintf(&b, " -> %d", r.Status)
	if r.Project != "" {
		fmt.Fprintf(&b, " project=%s", r.Project)
	}
	for _, s := range r.Scopes {
		fmt.Fprintf(&b, " scope=%s:%s:%s granted=[%s]", s.Type, s.Name, strings.Join(s.Actions, ","), strings.Join(s.Granted, ","))
	}
	if r.FetchedUpstream != "" {
		fmt.Fprintf(&b, " fetched-upstream=%s", r.FetchedUpstream)
	}
	return b.String()
}

// requestLog keeps every request for tests and optionally traces each as a line.
type requestLog struct {
	prefix string
	trace  io.Writer

	mu       sync.Mutex
	requests []Request
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, r)
	if l.trace != nil {
		fmt.Fprintf(l.trace, "%s %s\n", l.prefix, r)
	}
}

func (l *requestLog) snapshot() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.requests...)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = nil
}

// newRequestEntry starts a log entry with what the request itself tells.
func newRequestEntry(r *http.Request) Request {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return Request{
		Time:           time.Now(),
		Method:         r.Method,
		Path:           r.URL.Path,
		RawQuery:       r.URL.RawQuery,
		Host:           r.Host,
		AuthScheme:     scheme,
		ForwardedProto: r.Header.Get("X-Forwarded-Proto"),
	}
}

// RequestOf describes a request that another registry received (e.g. a real Harbor, from its
// front proxy's access log) as this package's logs do: method, target as received (path and
// query), Host, Authorization scheme and status, with the repository and project of a
// /v2/<name>/... path and the scopes of a token request. Granted stays empty: a log of the
// exchange does not tell it.
func RequestOf(method, target, host, authScheme string, status int) (Request, error) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return Request{}, err
	}
	r := Request{Method: method, Path: u.Path, RawQuery: u.RawQuery, Host: host, AuthScheme: authScheme, Status: status}
	if route, ok := parseRepositoryPath(u.Path); ok {
		r.Repository = route.name
		r.Project, _, _ = strings.Cut(route.name, "/")
	}
	if u.Path == tokenPath {
		r.Scopes = parseScopes(u.Query()["scope"])
	}
	return r, nil
}

// statusRecorder remembers the status code a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushes, deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
