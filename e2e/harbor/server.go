// Package harbor is a fake Harbor registry for end-to-end tests: the
// distribution registry Harbor embeds, with Harbor's projects, token service,
// challenges and Docker Hub proxy-cache behaviour in front of it, and a log of
// every request it received.
//
// Like Harbor's core, the fake answers /v2/ and /v2/_catalog itself (Harbor's
// challenge and its per-project catalog) and hands repository requests to the
// embedded distribution registry.
package harbor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
)

// Project is a Harbor project: the first path segment of its repositories.
type Project struct {
	Name string
	// Public projects let anyone, anonymous included, pull.
	Public bool
	// Members (names from Options.Users) may pull and push.
	Members []string
	// ProxyCacheOf makes this a Docker Hub proxy-cache project of the registry
	// at this base URL (e.g. a Hub's URL): what it lacks it fetches from there.
	ProxyCacheOf string
}

// Options configures a Server.
type Options struct {
	// Addr to listen on; 127.0.0.1:0 when empty.
	Addr     string
	Projects []Project
	// Users maps user names to passwords. The admin is added to it.
	Users map[string]string
	// AdminUser and AdminPassword default to Harbor's admin / Harbor12345.
	AdminUser     string
	AdminPassword string
	// ExternalScheme of Harbor's external URL, used for the token realm: "http" (default) or "https".
	ExternalScheme string
	// AbsoluteHTTPUploadLocations makes upload (and other) Location headers
	// absolute http://<Host received>/v2/..., as Harbor behind a TLS-offloading
	// proxy did; otherwise they are relative.
	AbsoluteHTTPUploadLocations bool
	// Trace, when set, gets one line per request received.
	Trace io.Writer
}

// Server is a running fake Harbor.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234; Host is its host:port.
	URL  string
	Host string

	projects       map[string]Project
	users          map[string]string
	adminUser      string
	externalScheme string
	absoluteHTTP   bool

	dir    string // storage and the token CA, removed on Close
	reg    *registry
	signer *tokenSigner
	access auth.AccessController
	log    requestLog
	http   *http.Server

	// fillMu serialises proxy-cache fills so concurrent pulls copy an image once.
	fillMu sync.Mutex
}

// Start runs a fake Harbor with opts until Close.
func Start(opts Options) (*Server, error) {
	s := &Server{
		projects:       make(map[string]Project, len(opts.Projects)),
		users:          make(map[string]string, len(opts.Users)+1),
		adminUser:      defaultString(opts.AdminUser, "admin"),
		externalScheme: defaultString(opts.ExternalScheme, "http"),
		absoluteHTTP:   opts.AbsoluteHTTPUploadLocations,
		log:            requestLog{prefix: "harbor:", trace: opts.Trace},
	}
	if s.externalScheme != "http" && s.externalScheme != "https" {
		return nil, fmt.Errorf("external scheme %q: want http or https", s.externalScheme)
	}
	for _, p := range opts.Projects {
		if p.Name == "" || strings.Contains(p.Name, "/") {
			return nil, fmt.Errorf("invalid project name %q", p.Name)
		}
		s.projects[p.Name] = p
	}
	for user, password := range opts.Users {
		s.users[user] = password
	}
	s.users[s.adminUser] = defaultString(opts.AdminPassword, "Harbor12345")

	registerAccessController.Do(func() {
		if err := auth.Register(accessControllerName, newHarborAccess); err != nil {
			panic(err)
		}
	})
	var err error
	if s.dir, err = os.MkdirTemp("", "fakeharbor-"); err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		if s.reg != nil {
			err = errors.Join(err, s.reg.close())
		}
		return nil, errors.Join(err, os.RemoveAll(s.dir))
	}
	if s.signer, err = newTokenSigner(s.dir); err != nil {
		return fail(err)
	}
	// The App gets the Server itself so that its access controller answers like Harbor.
	authConfig := configuration.Auth{accessControllerName: configuration.Parameters{"server": s}}
	if s.reg, err = newRegistry(filepath.Join(s.dir, "storage"), authConfig, !s.absoluteHTTP); err != nil {
		return fail(err)
	}
	if s.access, err = newHarborAccess(map[string]any{"server": s}); err != nil {
		return fail(err)
	}
	server, listener, err := listen(opts.Addr, s)
	if err != nil {
		return fail(err)
	}
	s.http = server
	s.Host = listener.Addr().String()
	s.URL = "http://" + s.Host
	return s, nil
}

// Close stops the server and removes its storage.
func (s *Server) Close() error {
	return errors.Join(s.http.Close(), s.reg.close(), os.RemoveAll(s.dir))
}

// Requests returns every request received since start or the last ResetLog, in order of completion.
func (s *Server) Requests() []Request { return s.log.snapshot() }

// ResetLog forgets the requests received so far.
func (s *Server) ResetLog() { s.log.reset() }

// Store writes an image or index straight into storage as <repo>:<tag>
// (repo is project-prefixed, e.g. "team/app"; an empty tag stores by digest only).
func (s *Server) Store(ctx context.Context, repo, tag string, a Artifact) error {
	return s.reg.store(ctx, repo, tag, a)
}

// RepositoryNames lists every repository in storage, sorted: what Harbor's catalog lists.
func (s *Server) RepositoryNames(ctx context.Context) ([]string, error) {
	return s.reg.repositoryNames(ctx)
}

// repositoryPath matches the distribution API's repository routes.
var repositoryPath = regexp.MustCompile(`^/v2/(.+?)/(manifests/[^/]+|blobs/uploads/[^/]*|blobs/[^/]+|tags/list|referrers/[^/]+)$`)

// repositoryRoute is a parsed /v2/<name>/<kind>/<ref> path.
type repositoryRoute struct {
	name string
	kind string // "manifests", "blobs", "uploads", "tags" or "referrers"
	ref  string // tag or digest for manifests and blobs
}

func parseRepositoryPath(path string) (repositoryRoute, bool) {
	m := repositoryPath.FindStringSubmatch(path)
	if m == nil {
		return repositoryRoute{}, false
	}
	route := repositoryRoute{name: m[1]}
	kind, ref, _ := strings.Cut(m[2], "/")
	route.kind, route.ref = kind, ref
	if strings.HasPrefix(m[2], "blobs/uploads/") {
		route.kind, route.ref = "uploads", strings.TrimPrefix(m[2], "blobs/uploads/")
	}
	return route, true
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	recorder := &statusRecorder{ResponseWriter: w}
	entry := newRequestEntry(r)
	defer func() {
		entry.Status = recorder.statusCode()
		s.log.add(entry)
	}()

	switch path := r.URL.Path; {
	case path == tokenPath:
		s.serveToken(recorder, r, &entry)
	case path == "/v2/" || path == "/v2":
		if s.authorize(recorder, r) {
			serveAPIBase(recorder)
		}
	case path == "/v2/_catalog":
		s.serveCatalog(recorder, r)
	case strings.HasPrefix(path, "/v2/"):
		route, ok := parseRepositoryPath(path)
		if ok {
			entry.Repository = route.name
			entry.Project, _, _ = strings.Cut(route.name, "/")
		}
		s.serveRepository(recorder, r, route, ok, &entry)
	default:
		writeHarborError(recorder, http.StatusNotFound, "NOT_FOUND", "not found")
	}
}

func (s *Server) serveCatalog(w http.ResponseWriter, r *http.Request) {
	access := auth.Access{Resource: auth.Resource{Type: "registry", Name: "catalog"}, Action: actionAll}
	if !s.authorize(w, r, access) {
		return
	}
	names, err := s.reg.repositoryNames(r.Context())
	if err != nil {
		writeHarborError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	serveHarborCatalog(w, r, names)
}

// serveHarborCatalog pages the catalog as Harbor v2.15.2 does (src/server/registry/catalog.go),
// which is not distribution's way: without n, the whole list and no Link, whatever last says;
// with n, last must be one of the repositories (400 otherwise), and the page follows it.
func serveHarborCatalog(w http.ResponseWriter, r *http.Request, names []string) {
	query := r.URL.Query()
	if query.Get("n") == "" || len(names) == 0 {
		writeJSON(w, http.StatusOK, map[string][]string{"repositories": append([]string{}, names...)})
		return
	}
	n, err := strconv.Atoi(query.Get("n"))
	if err != nil || n < 0 {
		writeHarborError(w, http.StatusBadRequest, "BAD_REQUEST", "the N must be a positive int type")
		return
	}
	page := names
	if last := query.Get("last"); last != "" {
		i, found := slices.BinarySearch(names, last)
		if !found {
			writeHarborError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("the last: %s should be a valid repository name.", last))
			return
		}
		page = names[i+1:]
	}
	page = page[:min(n, len(page))]
	if len(page) > 0 && page[len(page)-1] != names[len(names)-1] {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?%s>; rel="next"`, next.Encode()))
	}
	writeJSON(w, http.StatusOK, map[string][]string{"repositories": append([]string{}, page...)})
}

func (s *Server) serveRepository(w http.ResponseWriter, r *http.Request, route repositoryRoute, parsed bool, entry *Request) {
	projectName, _, inProject := strings.Cut(route.name, "/")
	project, isProject := s.projects[projectName]
	if parsed && inProject && isProject && project.ProxyCacheOf != "" {
		if !s.authorize(w, r, repositoryAccess(r, route.name)...) {
			return
		}
		if !s.serveProxyCache(w, r, project, route, entry) {
			return
		}
	}
	if s.absoluteHTTP {
		// distribution builds absolute URLs from Forwarded, then X-Forwarded-*,
		// then Host: leave it only the Host received, and http, as Harbor's nginx did.
		r.Header.Del("Forwarded")
		r.Header.Del("X-Forwarded-Host")
		r.Header.Set("X-Forwarded-Proto", "http")
	}
	s.reg.app.ServeHTTP(w, r)
}

func defaultString(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
