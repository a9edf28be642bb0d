package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// The hostile-input suite: requests a client could craft to climb out of the mirrored project
// (traversal, escapes, overlong or malformed names, scopes naming other projects, injected Host
// and forwarding headers, oversized inputs), sent byte for byte over a raw TCP connection to a
// real Traefik running the plugin in front of the fake Harbor.
//
// Each case says what must come back and who may answer it:
//   - the plugin, with a registry JSON error and nothing forwarded;
//   - Traefik itself or Go's HTTP server under it (no registry error body), nothing forwarded;
//   - Harbor, the request forwarded as a confined rewrite;
//   - Harbor, then the plugin replacing Harbor's answer with its own error.
//
// Whatever happens, everything Harbor received (its request log, and the bytes a tap between
// Traefik and Harbor saw) stays inside the project, and every token scope Harbor was asked for is
// inside it. TestHostileWithoutPluginLeaks runs the same tables through Traefik without the
// plugin, to prove each case that depends on the plugin fails there.

// hostileLayer is who answered a request.
type hostileLayer string

const (
	// hostileServer is Traefik or Go's HTTP server under it, before the plugin ran.
	hostileServer hostileLayer = "traefik"
	// hostilePlugin is the plugin refusing the request itself.
	hostilePlugin hostileLayer = "plugin"
	// hostileHarbor is Harbor, the request forwarded.
	hostileHarbor hostileLayer = "harbor"
	// hostileReplaced is Harbor's answer replaced by a plugin error on the way back.
	hostileReplaced hostileLayer = "harbor+plugin"
	// hostileNone is no answer at all (the connection was dropped).
	hostileNone hostileLayer = "none"
)

// hostileCase is one hostile request and what must come of it.
type hostileCase struct {
	name string
	// method, target (the request-target, byte for byte), host (the Host header value; "{host}",
	// the default, is the mirror's), header lines and body make the request; raw, when set,
	// is the whole request instead. "{host}" in target, header or raw is the mirror's host.
	method string
	target string
	host   *string
	header []string
	body   []byte
	raw    string

	// status is the status the client must get; layer who may answer (any of them; see
	// hostileByServer).
	status int
	layer  []hostileLayer
	// code is the registry error code of a plugin error.
	code string
	// forward is the request-target Harbor must receive (exactly once), for forwarded cases.
	forward string
	// allow are the projects a forwarded request may reach; default hub.
	allow []string
	// check adds case-specific checks; it returns what is wrong.
	check func(w *hostileWorld, r *hostileResult) []string
}

// hostileResult is what came of a case.
type hostileResult struct {
	status    int
	header    http.Header
	body      []byte
	err       error
	layer     hostileLayer
	harbor    []harbor.Request     // what the fake Harbor logged
	forwarded []*hostileTapRequest // what Traefik sent towards Harbor
}

// hostileWorld is one mirror: Traefik with the plugin (or without), the tap, the fake Harbor.
type hostileWorld struct {
	m   *mirror
	tap *hostileTap
}

// hostileTable is a set of cases run against one mirror.
type hostileTable struct {
	name     string
	settings map[string]any
	cases    []hostileCase
}

func hostileStr(s string) *string { return &s }

func hostileLayers(l ...hostileLayer) []hostileLayer { return l }

var (
	hostileByPlugin = hostileLayers(hostilePlugin)
	// hostileByServer: Traefik or Go's server refuses it today (with the status of the case); if a
	// later Traefik let it through, the plugin would have to refuse it (with any 4xx).
	hostileByServer   = hostileLayers(hostileServer, hostilePlugin)
	hostileByHarbor   = hostileLayers(hostileHarbor)
	hostileByReplaced = hostileLayers(hostileReplaced)
)

const (
	hostileDigest = "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	hostileToken  = "/service/token?service=harbor-registry&"
)

// hostileTables are the suite: the default mirror (project hub, ghcr.io routed to ghcr, realm
// from the request), and a read-only one with a public URL.
func hostileTables() []hostileTable {
	return []hostileTable{
		{name: "default", settings: defaultSettings(), cases: hostileDefaultCases()},
		{name: "publicURL-readOnly", settings: map[string]any{
			"project": "hub", "publicURL": "https://mirror.example.com", "readOnly": "true",
		}, cases: hostilePublicCases()},
	}
}

func hostileDefaultCases() []hostileCase {
	name243 := strings.Repeat("a", 255-len("hub/library/"))
	tag128 := strings.Repeat("t", 128)
	// The bounds of rewrite/limits.go: 32 scopes, 64 query pairs, 8 KiB of path and query.
	const maxScopes, maxQueryParams, maxRequestTarget = 32, 64, 8 << 10
	scopePairs := func(n int) string {
		var pairs []string
		for i := range n {
			pairs = append(pairs, fmt.Sprintf("scope=repository:team/r%d:pull", i))
		}
		return strings.Join(pairs, "&")
	}
	scopeList := func(n int, sep string) string {
		var scopes []string
		for i := range n {
			scopes = append(scopes, fmt.Sprintf("repository:team/s%d:pull", i))
		}
		return "scope=" + strings.Join(scopes, sep)
	}
	form := func(pairs ...string) []byte { return []byte(strings.Join(pairs, "&")) }
	formHeader := []string{"Content-Type: application/x-www-form-urlencoded"}
	// A form of exactly n bytes that asks for scope team/x.
	formOf := func(n int) []byte {
		head := "grant_type=password&service=harbor-registry&scope=repository%3Ateam%2Fx%3Apull&pad="
		return []byte(head + strings.Repeat("p", n-len(head)))
	}
	chunked := func(b []byte) []byte {
		var out bytes.Buffer
		for len(b) > 0 {
			n := min(len(b), 8192)
			fmt.Fprintf(&out, "%x\r\n%s\r\n", n, b[:n])
			b = b[n:]
		}
		out.WriteString("0\r\n\r\n")
		return out.Bytes()
	}
	realmIs := func(want string) func(w *hostileWorld, r *hostileResult) []string {
		return func(w *hostileWorld, r *hostileResult) []string {
			return hostileRealmIs(r, strings.ReplaceAll(want, "{host}", w.m.Host))
		}
	}

	return []hostileCase{
		// Traversal: Traefik's sanitizePath resolves dot segments before any router, so "/v2/.."
		// leaves the registry API (404 from the plugin's registryOnly) and "/v2/x/../y" stays in it.
		{name: "dotdot out of /v2", target: "/v2/../team/x/manifests/latest", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "dotdot twice", target: "/v2/library/../../team/x/manifests/latest", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "dotdot inside /v2", target: "/v2/hub/../team/x/manifests/latest", status: 401, layer: hostileByHarbor, forward: "/v2/hub/team/x/manifests/latest"},
		{name: "dot segment", target: "/v2/./library/hello/manifests/latest", status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest"},
		{name: "dotdot as reference", target: "/v2/library/hello/manifests/..", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "dotdot in digest", target: "/v2/library/hello/blobs/sha256:../../team/x", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "double slash", target: "/v2//team/x/manifests/latest", status: 401, layer: hostileByHarbor, forward: "/v2/hub/team/x/manifests/latest"},
		{name: "encoded dotdot", target: "/v2/%2e%2e/team/x/manifests/latest", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "encoded dotdot mixed case", target: "/v2/.%2E/%2e./team/x/manifests/latest", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "encoded slash", target: "/v2/library%2Fhello/manifests/latest", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "encoded slash other project", target: "/v2/team%2fx/manifests/latest", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "encoded dotdot slash", target: "/v2/..%2Fteam/x/manifests/latest", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "double-encoded dots", target: "/v2/%252e%252e/team/x/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "double-encoded slash", target: "/v2/team%252Fx/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "backslash", target: `/v2/library\hello/manifests/latest`, status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "encoded backslash", target: "/v2/library%5Chello/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "backslash dotdot", target: `/v2/..\team\x/manifests/latest`, status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "encoded slash in digest", target: "/v2/library/hello/blobs/sha256:ab%2Fcd", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "encoded slash in upload id", target: "/v2/library/hello/blobs/uploads/..%2F..%2Fteam", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "fragment", target: "/v2/library/hello/manifests/latest#../../team", status: 400, layer: hostileByServer},

		// Names, references, digests and upload ids outside the grammar.
		{name: "name 255 with project", target: "/v2/" + name243 + "/manifests/latest", status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/" + name243 + "/manifests/latest"},
		{name: "name 256 with project", target: "/v2/" + name243 + "a/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "name 300 components", target: "/v2/" + strings.Repeat("a/", 150) + "b/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "uppercase name", target: "/v2/Team/X/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "tag 128", target: "/v2/library/hello/manifests/" + tag128, status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/" + tag128},
		// A reference that is neither a tag nor a digest gets Harbor's own answer, 404 NOT_FOUND.
		{name: "tag 129", target: "/v2/library/hello/manifests/" + tag128 + "t", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "tag starting with dot", target: "/v2/library/hello/manifests/.latest", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "conformance nonexistent manifest", target: "/v2/library/hello/manifests/.INVALID_MANIFEST_NAME", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "encoded NUL in tag", target: "/v2/library/hello/manifests/lat%00est", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "raw NUL in path", target: "/v2/library/hello/manifests/lat\x00est", status: 400, layer: hostileByServer},
		{name: "invalid UTF-8 in name", target: "/v2/lib\xffrary/hello/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "encoded invalid UTF-8 in name", target: "/v2/library/hel%C0%AFlo/manifests/latest", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "empty digest", target: "/v2/library/hello/blobs/sha256:", status: 400, layer: hostileByPlugin, code: "DIGEST_INVALID"},
		{name: "uppercase digest algorithm", target: "/v2/library/hello/blobs/SHA256:abcd", status: 400, layer: hostileByPlugin, code: "DIGEST_INVALID"},
		{name: "digest without algorithm", target: "/v2/library/hello/blobs/:abcd", status: 400, layer: hostileByPlugin, code: "DIGEST_INVALID"},
		{name: "referrers bad digest", target: "/v2/library/hello/referrers/sha256:zz!", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "upload id not in grammar", target: "/v2/library/hello/blobs/uploads/-bad", status: 404, layer: hostileByPlugin, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "unknown endpoint", target: "/v2/library/hello/evil/x", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},
		{name: "Harbor API", target: "/api/v2.0/projects/team", status: 404, layer: hostileByPlugin, code: "NOT_FOUND"},

		// Routing by ?ns= and the parameters that name repositories.
		{name: "unknown ns", target: "/v2/library/hello/manifests/latest?ns=evil.io", status: 404, layer: hostileByPlugin, code: "NAME_UNKNOWN"},
		{name: "ns with NUL", target: "/v2/library/hello/manifests/latest?ns=ghcr.io%00", status: 404, layer: hostileByPlugin, code: "NAME_UNKNOWN"},
		{name: "ns invalid UTF-8", target: "/v2/library/hello/manifests/latest?ns=\xff", status: 404, layer: hostileByPlugin, code: "NAME_UNKNOWN"},
		{name: "ns routed", target: "/v2/owner/app/manifests/latest?ns=ghcr.io", status: 401, layer: hostileByHarbor, forward: "/v2/ghcr/owner/app/manifests/latest", allow: []string{"ghcr"}},
		{name: "ns twice, first wins", target: "/v2/library/hello/manifests/latest?ns=docker.io&ns=evil.io", status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest"},
		{name: "ns with encoded key", target: "/v2/owner/app/manifests/latest?n%73=ghcr.io", status: 401, layer: hostileByHarbor, forward: "/v2/ghcr/owner/app/manifests/latest", allow: []string{"ghcr"}},
		// Traefik turns ";" into "&" (http.AllowQuerySemicolons) before the plugin, which then
		// reads the same pairs Harbor would.
		{name: "ns after semicolon", target: "/v2/owner/app/manifests/latest?a=1;ns=ghcr.io", status: 401, layer: hostileByHarbor, forward: "/v2/ghcr/owner/app/manifests/latest?a=1", allow: []string{"ghcr"}},
		{name: "mount from other project", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=team/x", status: 401, layer: hostileByHarbor,
			forward: "/v2/hub/library/x/blobs/uploads/?mount=" + hostileDigest + "&from=hub%2Fteam%2Fx"},
		{name: "mount from traversal", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=../team/x", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "mount from encoded traversal", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=team%2F..%2Fx", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "mount from encoded key", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&fr%6Fm=team/x", status: 401, layer: hostileByHarbor,
			forward: "/v2/hub/library/x/blobs/uploads/?mount=" + hostileDigest + "&from=hub%2Fteam%2Fx"},
		{name: "mount from twice", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=library/hello&from=team/x", status: 401, layer: hostileByHarbor,
			forward: "/v2/hub/library/x/blobs/uploads/?mount=" + hostileDigest + "&from=hub%2Flibrary%2Fhello&from=hub%2Fteam%2Fx"},
		{name: "mount from bad escape", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=%ZZ", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		// The catalog: Harbor gets /v2/_catalog with no query, whatever the client sends; the
		// plugin pages the project's part of Harbor's list itself (admins only: see the admin cases).
		{name: "catalog last other project", target: "/v2/_catalog?last=team/x", status: 401, layer: hostileByHarbor, forward: "/v2/_catalog"},
		{name: "catalog last traversal", target: "/v2/_catalog?last=../team", status: 401, layer: hostileByHarbor, forward: "/v2/_catalog"},
		{name: "catalog without last", target: "/v2/_catalog?n=5", status: 401, layer: hostileByHarbor, forward: "/v2/_catalog"},
		{name: "catalog percent in another parameter", target: "/v2/_catalog?x=%25&n=5&last=team/x", status: 401, layer: hostileByHarbor, forward: "/v2/_catalog"},
		{name: "catalog word last in another parameter", target: "/v2/_catalog?q=last&n=5", status: 401, layer: hostileByHarbor, forward: "/v2/_catalog"},
		{name: "catalog encoded last key", target: "/v2/_catalog?l%61st=team%2Fx&n=1", status: 401, layer: hostileByHarbor, forward: "/v2/_catalog"},
		{name: "catalog admin last other project", target: "/v2/_catalog?n=5&last=team/x", header: hostileAdmin, status: 200, layer: hostileByHarbor,
			forward: "/v2/_catalog", check: hostileCatalogOnly},
		{name: "catalog admin percent in another parameter", target: "/v2/_catalog?x=%25&n=5", header: hostileAdmin, status: 200, layer: hostileByHarbor,
			forward: "/v2/_catalog", check: hostileCatalogOnly},
		{name: "catalog admin word last elsewhere", target: "/v2/_catalog?q=last", header: hostileAdmin, status: 200, layer: hostileByHarbor,
			forward: "/v2/_catalog", check: hostileCatalogOnly},
		{name: "catalog admin encoded last key", target: "/v2/_catalog?l%61st=team%2F&n=1", header: hostileAdmin, status: 200, layer: hostileByHarbor,
			forward: "/v2/_catalog", check: hostileCatalogOnly},
		{name: "catalog admin bad n", target: "/v2/_catalog?n=-1", header: hostileAdmin, status: 400, layer: hostileByReplaced, code: "BAD_REQUEST", forward: "/v2/_catalog"},

		// Token requests: every repository scope is mapped into the project or refused.
		{name: "scope other project", target: hostileToken + "scope=repository:team/x:pull", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Fteam%2Fx%3Apull"},
		{name: "scope traversal", target: hostileToken + "scope=repository:../team/x:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope project then traversal", target: hostileToken + "scope=repository:hub/../team/x:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope extra colon", target: hostileToken + "scope=repository:team/x:pull:push", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope host:port name", target: hostileToken + "scope=repository:127.0.0.1:5000/team/x:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope space-separated", target: hostileToken + "scope=repository%3Ateam%2Fx%3Apull%20repository:ghcr/y:push", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Fteam%2Fx%3Apull+repository%3Ahub%2Fghcr%2Fy%3Apush"},
		{name: "scope double space", target: hostileToken + "scope=repository:library/hello:pull%20%20repository:team/x:pull", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Flibrary%2Fhello%3Apull++repository%3Ahub%2Fteam%2Fx%3Apull"},
		{name: "scope leading and trailing space", target: hostileToken + "scope=+repository:team/x:pull+", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=+repository%3Ahub%2Fteam%2Fx%3Apull+"},
		{name: "scope encoded CRLF", target: hostileToken + "scope=repository:library/hello:pull%0D%0Arepository:team/x:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope raw CRLF", raw: "GET " + hostileToken + "scope=repository:library/hello:pull\r\nrepository:team/x:pull HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", status: 400, layer: hostileByServer},
		{name: "scope encoded NUL", target: hostileToken + "scope=repository:library/hello%00:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope raw NUL", target: hostileToken + "scope=repository:team/x\x00:pull", status: 400, layer: hostileByServer},
		{name: "scope tab", target: hostileToken + "scope=repository:team/x%09:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope invalid UTF-8", target: hostileToken + "scope=repository:l\xffbrary/x:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope uppercase", target: hostileToken + "scope=repository:TEAM/X:pull", status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "scope empty name", target: hostileToken + "scope=repository::pull", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "scope bad escape", target: hostileToken + "scope=repository:%ZZ:pull", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "scope other type", target: hostileToken + "scope=admin:team:*", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "scope unterminated class", target: hostileToken + "scope=repository(x:team/x:pull", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "scope with class", target: hostileToken + "scope=repository(plugin):team/x:pull", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%28plugin%29%3Ahub%2Fteam%2Fx%3Apull"},
		{name: "scope catalog", target: hostileToken + "scope=registry:catalog:*", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=registry%3Acatalog%3A%2A"},
		{name: "scope all actions", target: hostileToken + "scope=repository:team/x:pull,push,delete,*", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Fteam%2Fx%3Apull%2Cpush%2Cdelete%2C%2A"},
		{name: "scope with encoded key", target: hostileToken + "sc%6Fpe=repository:team/x:pull", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Fteam%2Fx%3Apull"},
		{name: "scope after semicolon", target: hostileToken + "scope=repository:team/x:pull;scope=repository:team/y:pull", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Fteam%2Fx%3Apull&scope=repository%3Ahub%2Fteam%2Fy%3Apull"},
		{name: "scope with ns", target: hostileToken + "scope=repository:team/x:pull&ns=ghcr.io", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Aghcr%2Fteam%2Fx%3Apull", allow: []string{"ghcr"}},
		{name: "scope with unknown ns", target: hostileToken + "scope=repository:team/x:pull&ns=evil.io", status: 404, layer: hostileByPlugin, code: "NAME_UNKNOWN"},
		{name: "scope with ns twice", target: hostileToken + "ns=docker.io&ns=ghcr.io&scope=repository:team/x:pull", status: 200, layer: hostileByHarbor,
			forward: hostileToken + "scope=repository%3Ahub%2Fteam%2Fx%3Apull"},
		// Bounded work per request: refused before any per-parameter work.
		{name: "32 scope parameters", target: hostileToken + scopePairs(maxScopes), status: 200, layer: hostileByHarbor, check: hostileScopeCount(maxScopes)},
		{name: "32 scopes in one parameter", target: hostileToken + scopeList(maxScopes, "+"), status: 200, layer: hostileByHarbor, check: hostileScopeCount(maxScopes)},
		{name: "33 scope parameters", target: hostileToken + scopePairs(maxScopes+1), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "33 scopes in one parameter", target: hostileToken + scopeList(maxScopes+1, "+"), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "33 scopes separated by %20", target: hostileToken + scopeList(maxScopes+1, "%20"), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "33 scopes over two parameters with an encoded key", target: hostileToken + scopeList(maxScopes, "+") + "&sc%6Fpe=repository:team/x:pull", status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "1000 scope parameters", target: hostileToken + scopePairs(1000), status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "3000 scopes in one parameter", target: hostileToken + scopeList(3000, "+"), status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "65 query pairs on a token request", target: hostileToken + "scope=repository:team/x:pull" + strings.Repeat("&a=b", maxQueryParams-1), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "65 query pairs on a catalog page", target: "/v2/_catalog?n=1" + strings.Repeat("&l%61st=team/x", maxQueryParams), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "token target of 8 KiB + 1", target: hostileToken + "scope=repository:team/x:pull&pad=" + strings.Repeat("p", maxRequestTarget+1-len(hostileToken+"scope=repository:team/x:pull&pad=")), status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "pull target of 8 KiB + 1", target: "/v2/library/hello/manifests/latest?ns=docker.io&pad=" + strings.Repeat("p", maxRequestTarget), status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "pull name of 900 KiB", target: "/v2/" + strings.Repeat("a/", 450<<10) + "b/manifests/latest", status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "catalog of 900 KiB of escaped keys", target: "/v2/_catalog?" + strings.Repeat("%6C%61%73%74=x&", 60<<10), status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "upload path of 600 KiB of escapes", method: "PATCH", target: "/v2/team/x/blobs/uploads/" + strings.Repeat("%41", 200<<10), status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "scope of 200 KB", target: hostileToken + "scope=repository:" + strings.Repeat("a", 200<<10) + ":pull", status: 414, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "query over 1 MiB", target: hostileToken + "scope=repository:team/x:pull&pad=" + strings.Repeat("q", 1<<20+8<<10), status: 431, layer: hostileByServer},

		// OAuth2 token POSTs: the same mapping on the form body, within 64 KiB.
		{name: "token POST other project", method: "POST", target: "/service/token", header: formHeader,
			body:   form("grant_type=password", "service=harbor-registry", "scope=repository%3Ateam%2Fx%3Apull+repository%3Alibrary%2Fhello%3Apull", "username=alice", "password=x"),
			status: 405, layer: hostileByHarbor, forward: "/service/token",
			check: hostileFormIs("grant_type=password&service=harbor-registry&scope=repository%3Ahub%2Fteam%2Fx%3Apull+repository%3Ahub%2Flibrary%2Fhello%3Apull&username=alice&password=x")},
		{name: "token POST traversal", method: "POST", target: "/service/token", header: formHeader,
			body: form("service=harbor-registry", "scope=repository%3A..%2Fteam%2Fx%3Apull"), status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "token POST semicolon", method: "POST", target: "/service/token", header: formHeader,
			body: form("service=harbor-registry", "scope=repository%3Alibrary%2Fx%3Apull;scope=repository:team/x:pull"), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "token POST invalid UTF-8", method: "POST", target: "/service/token", header: formHeader,
			body: form("service=harbor-registry", "scope=repository%3Ate\xffam%2Fx%3Apull"), status: 400, layer: hostileByPlugin, code: "NAME_INVALID"},
		{name: "token POST not a form", method: "POST", target: "/service/token", header: []string{"Content-Type: text/plain"},
			body: form("scope=repository:team/x:pull"), status: 415, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "token POST 64 KiB", method: "POST", target: "/service/token", header: formHeader, body: formOf(64 << 10),
			status: 405, layer: hostileByHarbor, forward: "/service/token", check: hostileFormScopes("repository:hub/team/x:pull")},
		{name: "token POST 64 KiB + 1", method: "POST", target: "/service/token", header: formHeader, body: formOf(64<<10 + 1),
			status: 413, layer: hostileByPlugin, code: "SIZE_INVALID"},
		{name: "token POST 200 KiB", method: "POST", target: "/service/token", header: formHeader, body: formOf(200 << 10),
			status: 413, layer: hostileByPlugin, code: "SIZE_INVALID"},
		{name: "token POST chunked 100 KiB", method: "POST", target: "/service/token",
			header: append([]string{"Transfer-Encoding: chunked"}, formHeader...), body: chunked(formOf(100 << 10)),
			status: 413, layer: hostileByPlugin, code: "SIZE_INVALID"},
		{name: "token DELETE", method: "DELETE", target: "/service/token", status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "token POST gzip-encoded", method: "POST", target: "/service/token", header: append([]string{"Content-Encoding: gzip"}, formHeader...),
			body: hostileGzip("service=harbor-registry&scope=repository%3Ateam%2Fx%3Apull"), status: 415, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "token POST 33 scopes", method: "POST", target: "/service/token", header: formHeader,
			body: form("grant_type=password", "service=harbor-registry", strings.ReplaceAll(scopeList(maxScopes+1, "+"), ":", "%3A")), status: 400, layer: hostileByPlugin, code: "UNSUPPORTED"},

		// Parameters the registry reads from a form body (mount, from, digest, _state) win over the
		// query's; an upload with a form body is refused.
		{name: "mount from in a form body", method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=library/hello", header: formHeader,
			body: form("mount="+hostileDigest, "from=team%2Fx"), status: 415, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "mount from in a form body, odd case and broken parameter", method: "POST", target: "/v2/x/blobs/uploads/",
			header: []string{"Content-Type: Application/X-WWW-Form-URLEncoded; =x"}, body: form("mount="+hostileDigest, "from=team%2Fx"), status: 415, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "mount from in a multipart body", method: "POST", target: "/v2/x/blobs/uploads/", header: []string{"Content-Type: multipart/form-data; boundary=b"},
			body:   []byte("--b\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nteam/x\r\n--b\r\nContent-Disposition: form-data; name=\"mount\"\r\n\r\n" + hostileDigest + "\r\n--b--\r\n"),
			status: 415, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "upload PUT digest in a form body", method: "PUT", target: "/v2/x/blobs/uploads/u-1?_state=x&digest=" + hostileDigest, header: formHeader,
			body: form("digest=" + hostileDigest), status: 415, layer: hostileByPlugin, code: "UNSUPPORTED"},

		// Headers: oversized, malformed, forged forwarding headers.
		{name: "header over 1 MiB", target: "/v2/library/hello/manifests/latest", header: []string{"X-Big: " + strings.Repeat("h", 1<<20+8<<10)}, status: 431, layer: hostileByServer},
		{name: "header of 512 KiB", target: "/v2/library/hello/manifests/latest", header: []string{"X-Big: " + strings.Repeat("h", 512<<10)},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest"},
		{name: "5000 headers", target: "/v2/library/hello/manifests/latest", header: hostileManyHeaders(5000),
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest"},
		{name: "invalid UTF-8 header value", target: "/v2/library/hello/manifests/latest", header: []string{"User-Agent: \xff\xfe\xfd"},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest"},
		{name: "bare CR in header", target: "/v2/library/hello/manifests/latest", header: []string{"X-A: a\rb"}, status: 400, layer: hostileByServer},
		// Go's server still unfolds obs-fold lines (RFC 9112 says reject or replace by spaces).
		{name: "obs-fold header", target: "/v2/library/hello/manifests/latest", header: []string{"X-A: a", ` realm="http://evil/"`},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest", check: realmIs("http://{host}/service/token")},
		{name: "forged X-Forwarded-Proto", target: "/v2/library/hello/manifests/latest", header: []string{"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest", check: hostileAll(realmIs("http://{host}/service/token"), hostileForwardedHeader("X-Forwarded-Proto", "http"), hostileForwardedHeader("X-Forwarded-Host", "{host}"))},
		{name: "forged X-Forwarded-Proto dropped by Connection", target: "/v2/library/hello/manifests/latest", header: []string{"X-Forwarded-Proto: https", "Connection: X-Forwarded-Proto"},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest", check: hostileAll(realmIs("http://{host}/service/token"), hostileForwardedHeader("X-Forwarded-Proto", "http"))},
		{name: "forged X-Forwarded-Proto junk", target: "/v2/library/hello/manifests/latest", header: []string{`X-Forwarded-Proto: javascript:"//`},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest", check: realmIs("http://{host}/service/token")},
		{name: "forged Forwarded", target: "/v2/library/hello/manifests/latest", header: []string{"Forwarded: proto=https;host=evil.example"},
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest", check: realmIs("http://{host}/service/token")},

		// Host: without publicURL it feeds the realm, so the plugin refuses any that is not a host.
		{name: "Host with comma", target: "/v2/library/hello/manifests/latest", host: hostileStr("a.example,b.example"), status: 400, layer: hostileByReplaced, code: "UNSUPPORTED"},
		{name: "Host with apostrophe", target: "/v2/", host: hostileStr("a.example'b"), status: 400, layer: hostileByReplaced, code: "UNSUPPORTED"},
		{name: "Host percent-encoded CRLF", target: "/v2/", host: hostileStr("a.example%0d%0aX-Evil:%201"), status: 400, layer: hostileByReplaced, code: "UNSUPPORTED"},
		{name: "Host empty", target: "/v2/library/hello/manifests/latest", host: hostileStr(""), status: 400, layer: hostileByReplaced, code: "UNSUPPORTED"},
		{name: "Host with CRLF and forged headers", target: "/v2/library/hello/manifests/latest", host: hostileStr("a.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example"),
			status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest",
			check: hostileAll(realmIs("http://a.example/service/token"), hostileForwardedHeader("X-Forwarded-Proto", "http"), hostileForwardedHeader("X-Forwarded-Host", "a.example"))},
		{name: "Host with quote", target: "/v2/", host: hostileStr(`a.example"b`), status: 400, layer: hostileByServer},
		{name: "Host with space", target: "/v2/", host: hostileStr("a.example b"), status: 400, layer: hostileByServer},
		{name: "Host with userinfo", target: "/v2/", host: hostileStr("user@a.example"), status: 400, layer: hostileByServer},
		{name: "Host invalid UTF-8", target: "/v2/", host: hostileStr("a.ex\xffample"), status: 400, layer: hostileByServer},
		{name: "Host with bare CR", target: "/v2/", host: hostileStr("a.example\rb"), status: 400, layer: hostileByServer},
		{name: "Host twice", target: "/v2/", header: []string{"Host: evil.example"}, status: 400, layer: hostileByServer},
		{name: "Host missing", raw: "GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n", status: 400, layer: hostileByServer},
		{name: "Host other", target: "/v2/library/hello/manifests/latest", host: hostileStr("evil.example"), status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest",
			check: realmIs("http://evil.example/service/token")},
		{name: "absolute-form target", raw: "GET http://evil.example/v2/library/hello/manifests/latest HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", status: 401, layer: hostileByHarbor,
			forward: "/v2/hub/library/hello/manifests/latest", check: realmIs("http://evil.example/service/token")},
		{name: "Host IPv6 literal", target: "/v2/library/hello/manifests/latest", host: hostileStr("[::1]:80"), status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest",
			check: realmIs("http://[::1]:80/service/token")},
		// A Host longer than a DNS name and a port is not a host: refused before the host grammar's
		// regexp, which would scan all of it (rewrite/limits.go MaxHostLength).
		{name: "Host of 259 bytes", target: "/v2/library/hello/manifests/latest", host: hostileStr(strings.Repeat("a.", 126) + "b:65535"), status: 401, layer: hostileByHarbor, forward: "/v2/hub/library/hello/manifests/latest",
			check: realmIs("http://" + strings.Repeat("a.", 126) + "b:65535/service/token")},
		{name: "Host of 4000 bytes", target: "/v2/library/hello/manifests/latest", host: hostileStr(strings.Repeat("a.", 2000) + "b"), status: 400, layer: hostileByReplaced, code: "UNSUPPORTED"},
		{name: "Host of 200 KiB", target: "/v2/library/hello/manifests/latest", host: hostileStr(strings.Repeat("a-", 100<<10) + "b"), status: 400, layer: hostileByReplaced, code: "UNSUPPORTED"},
	}
}

// hostilePublicCases run against a read-only mirror with publicURL: the Host no longer matters to
// the realm, and only GET and HEAD reach the registry API.
func hostilePublicCases() []hostileCase {
	realm := func(w *hostileWorld, r *hostileResult) []string {
		return hostileRealmIs(r, "https://mirror.example.com/service/token")
	}
	return []hostileCase{
		{name: "Host with comma", target: "/v2/library/hello/manifests/latest", host: hostileStr("a.example,b.example"), status: 401, layer: hostileByHarbor,
			forward: "/v2/hub/library/hello/manifests/latest", check: realm},
		{name: "Host with apostrophe", target: "/v2/", host: hostileStr("a.example'b"), status: 401, layer: hostileByHarbor, forward: "/v2/", check: realm},
		{name: "Host percent-encoded CRLF", target: "/v2/", host: hostileStr("a.example%0d%0aX-Evil:%201"), status: 401, layer: hostileByHarbor, forward: "/v2/", check: realm},
		{name: "Host empty", target: "/v2/", host: hostileStr(""), status: 401, layer: hostileByHarbor, forward: "/v2/", check: realm},
		{name: "Host other", target: "/v2/", host: hostileStr("evil.example"), status: 401, layer: hostileByHarbor, forward: "/v2/", check: realm},
		{name: "absolute-form target", raw: "GET http://evil.example/v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", status: 401, layer: hostileByHarbor, forward: "/v2/", check: realm},
		{name: "forged X-Forwarded-Proto", target: "/v2/", header: []string{"X-Forwarded-Proto: http", "X-Forwarded-Host: evil.example"},
			status: 401, layer: hostileByHarbor, forward: "/v2/", check: realm},
		{name: "Host with quote", target: "/v2/", host: hostileStr(`a.example"b`), status: 400, layer: hostileByServer},
		{name: "read-only PUT manifest", method: "PUT", target: "/v2/library/hello/manifests/latest", header: []string{"Content-Type: application/json"}, body: []byte("{}"),
			status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "read-only POST upload", method: "POST", target: "/v2/team/x/blobs/uploads/?mount=" + hostileDigest + "&from=team/y", status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "read-only DELETE", method: "DELETE", target: "/v2/library/hello/manifests/" + hostileDigest, status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "read-only PATCH", method: "PATCH", target: "/v2/library/hello/blobs/uploads/u-1", status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "read-only lowercase get", method: "get", target: "/v2/library/hello/manifests/latest", status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "read-only unknown method", method: "BREW", target: "/v2/library/hello/manifests/latest", status: 405, layer: hostileByPlugin, code: "UNSUPPORTED"},
		{name: "read-only HEAD traversal", method: "HEAD", target: "/v2/hub/../team/x/manifests/latest", status: 401, layer: hostileByHarbor,
			forward: "/v2/hub/team/x/manifests/latest", check: realm},
	}
}

// hostileGzip is s gzip-encoded.
func hostileGzip(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}

func hostileManyHeaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-Many-%d: v", i)
	}
	return out
}

// TestHostileInputs runs every table through Traefik with the plugin.
func TestHostileInputs(t *testing.T) {
	total := 0
	for _, table := range hostileTables() {
		t.Run(table.name, func(t *testing.T) {
			w := hostileStart(t, table.settings, false)
			var summary strings.Builder
			for _, c := range table.cases {
				total++
				t.Run(c.name, func(t *testing.T) {
					r := hostileRun(t, w, c)
					fmt.Fprintf(&summary, "  %-48s %3d  %-13s %s\n", c.name, r.status, r.layer, hostileSummary(r))
					for _, p := range hostileEvaluate(w, c, r) {
						t.Error(p)
					}
					assertConfined(t, r.harbor, hostileAllowed(c)...)
				})
			}
			t.Logf("%d cases through Traefik and the plugin (case, status, who answered):\n%s", len(table.cases), summary.String())
		})
	}
	t.Logf("hostile: %d cases", total)
}

// TestHostileWithoutPluginLeaks runs the same tables through Traefik without the plugin: every
// case not answered by Traefik itself must then fail its checks, most of them by reaching another
// project than the mirrored one. It is the proof that the cases test the plugin.
func TestHostileWithoutPluginLeaks(t *testing.T) {
	for _, table := range hostileTables() {
		t.Run(table.name, func(t *testing.T) {
			w := hostileStart(t, table.settings, true)
			leaks := 0
			for _, c := range table.cases {
				r := hostileRun(t, w, c)
				problems := hostileEvaluate(w, c, r)
				if len(hostileConfinement(r, hostileAllowed(c))) > 0 {
					leaks++
				}
				if slices.Equal(c.layer, hostileByServer) {
					if len(problems) > 0 {
						t.Errorf("%s: answered by Traefik, yet fails without the plugin: %v", c.name, problems)
					}
					continue
				}
				if len(problems) == 0 {
					t.Errorf("%s: passes without the plugin, so it does not test it (%d, %s)", c.name, r.status, r.layer)
				}
			}
			t.Logf("%d of %d cases reach outside their project without the plugin", leaks, len(table.cases))
			if leaks == 0 {
				t.Errorf("no case leaks without the plugin: the confinement checks cannot fail")
			}
		})
	}
}

// TestHostileForgedProtoOverTLS: on Traefik's TLS entrypoint, a client's X-Forwarded-Proto: http
// (and a forged X-Forwarded-Host) cannot downgrade or move the realm: Traefik replaces both, and
// the plugin builds the realm from https and the Host.
func TestHostileForgedProtoOverTLS(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{TLS: true})
	client := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: m.CA.ClientTLSConfig()}}
	for _, forged := range [][2]string{{"X-Forwarded-Proto", "http"}, {"X-Forwarded-Host", "evil.example"}, {"Forwarded", "proto=http;host=evil.example"}} {
		req, err := http.NewRequest(http.MethodGet, "https://"+m.TLSHost+"/v2/library/hello/manifests/latest", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(forged[0], forged[1])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		challenge := resp.Header.Get("Www-Authenticate")
		want := "https://" + m.TLSHost + "/service/token"
		if resp.StatusCode != http.StatusUnauthorized || hostileChallengeParam(challenge, "realm") != want {
			t.Errorf("%s: %s over TLS: %d %q, want 401 with realm %s", forged[0], forged[1], resp.StatusCode, challenge, want)
		}
	}
	reqs := requests(m)
	assertConfined(t, reqs, m.HubProject)
	if len(reqs) != 3 {
		t.Errorf("Harbor received:\n%s", traceOf(reqs))
	}
}

// hostileStart starts a mirror with the tap between Traefik and Harbor.
func hostileStart(t *testing.T, settings map[string]any, noMiddleware bool) *hostileWorld {
	t.Helper()
	w := &hostileWorld{}
	w.m = faultStart(t, faultOptions{Settings: settings, NoMiddleware: noMiddleware, Front: func(t *testing.T, harborURL string) string {
		w.tap = hostileStartTap(t, strings.TrimPrefix(harborURL, "http://"))
		return w.tap.URL
	}})
	// Repositories in several projects, for the catalog cases to list (and not to leak).
	for _, ns := range []string{"hub/library", "hub/hub", "team", "ghcr/owner"} {
		if err := images.Seed(context.Background(), w.m.Harbor, ns, images.Single); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func hostileAllowed(c hostileCase) []string {
	if c.allow != nil {
		return c.allow
	}
	return []string{"hub"}
}

// hostileRequest renders a case as the bytes sent.
func hostileRequest(c hostileCase, host string) []byte {
	if c.raw != "" {
		return []byte(strings.ReplaceAll(c.raw, "{host}", host))
	}
	method := c.method
	if method == "" {
		method = "GET"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, strings.ReplaceAll(c.target, "{host}", host))
	if c.host == nil {
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	} else {
		fmt.Fprintf(&b, "Host: %s\r\n", *c.host)
	}
	chunked := false
	for _, h := range c.header {
		b.WriteString(strings.ReplaceAll(h, "{host}", host) + "\r\n")
		chunked = chunked || strings.HasPrefix(h, "Transfer-Encoding: chunked")
	}
	if c.body != nil && !chunked {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(c.body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(c.body)
	return b.Bytes()
}

// hostileRun sends a case and gathers what came of it.
func hostileRun(t *testing.T, w *hostileWorld, c hostileCase) *hostileResult {
	t.Helper()
	mark := len(w.m.Harbor.Requests())
	w.tap.Take() // anything left from an earlier case
	method := c.method
	if c.raw != "" {
		method, _, _ = strings.Cut(c.raw, " ")
	}
	r := &hostileResult{layer: hostileNone}
	resp, body, err := hostileSend(w.m.Host, hostileRequest(c, w.m.Host), method)
	if err != nil {
		r.err = err
	} else {
		r.status, r.header, r.body = resp.StatusCode, resp.Header, body
	}
	r.forwarded = w.tap.Take()
	// Harbor logs a request as it answers; the tap saw it before. Wait for the log to catch up.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.harbor = w.m.Harbor.Requests()[mark:]
		if len(r.harbor) >= len(r.forwarded) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	switch {
	case err != nil:
	case len(r.forwarded) > 0 || len(r.harbor) > 0:
		r.layer = hostileHarbor
		if len(r.harbor) > 0 && r.harbor[len(r.harbor)-1].Status != r.status && hostileErrorCode(r) != "" {
			r.layer = hostileReplaced
		}
	case hostileErrorCode(r) != "":
		r.layer = hostilePlugin
	default:
		r.layer = hostileServer
	}
	return r
}

// hostileSend writes a request on a new connection and reads one response.
func hostileSend(addr string, request []byte, method string) (*http.Response, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Written concurrently: a server may answer (e.g. 431) before it has read everything.
	go func() { _, _ = conn.Write(request) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// hostileErrorCode is the code of a registry JSON error answer, "" if the answer is not one.
func hostileErrorCode(r *hostileResult) string {
	if r.header == nil || r.header.Get("Content-Type") != "application/json" {
		return ""
	}
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.body, &doc) != nil || len(doc.Errors) == 0 || doc.Errors[0].Code == "" || doc.Errors[0].Message == "" {
		return ""
	}
	return doc.Errors[0].Code
}

// hostileEvaluate lists everything wrong with a result.
func hostileEvaluate(w *hostileWorld, c hostileCase, r *hostileResult) []string {
	var problems []string
	if r.err != nil {
		problems = append(problems, fmt.Sprintf("no answer: %v", r.err))
	}
	refusedByPlugin := r.layer == hostilePlugin && slices.Contains(c.layer, hostileServer) && r.status >= 400 && r.status < 500
	if r.status != c.status && !refusedByPlugin {
		problems = append(problems, fmt.Sprintf("status %d, want %d (%s: %.200q)", r.status, c.status, r.layer, r.body))
	}
	if !slices.Contains(c.layer, r.layer) {
		problems = append(problems, fmt.Sprintf("answered by %s, want %v", r.layer, c.layer))
	}
	if r.layer == hostilePlugin || r.layer == hostileReplaced {
		if code := hostileErrorCode(r); c.code != "" && code != c.code {
			problems = append(problems, fmt.Sprintf("error code %q, want %q: %.200q", code, c.code, r.body))
		}
		if v := r.header.Get("Docker-Distribution-Api-Version"); v != "registry/2.0" {
			problems = append(problems, fmt.Sprintf("plugin error with Docker-Distribution-API-Version %q", v))
		}
	}
	if c.forward != "" {
		n := 0
		for _, f := range r.forwarded {
			if f.RequestURI == c.forward {
				n++
			}
		}
		if n != 1 || len(r.forwarded) != 1 {
			problems = append(problems, fmt.Sprintf("Harbor received %s, want %.300q once", hostileTrace(r), c.forward))
		}
	}
	problems = append(problems, hostileConfinement(r, hostileAllowed(c))...)
	if c.check != nil {
		problems = append(problems, c.check(w, r)...)
	}
	return problems
}

// hostileNameRE is the OCI repository name grammar.
var hostileNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// hostileConfinement lists every way what reached Harbor left the allowed projects: a repository
// of another project, a path Harbor could not place in a project, dot segments or escapes in a
// path, a from= naming another project, any catalog query, ns= forwarded, a token scope of another project
// or type, or a granted registry scope other than the catalog.
func hostileConfinement(r *hostileResult, allow []string) []string {
	var problems []string
	inside := func(name string) bool {
		project, rest, ok := strings.Cut(name, "/")
		return ok && slices.Contains(allow, project) && !strings.HasPrefix(rest, project+"/") &&
			len(name) <= 255 && hostileNameRE.MatchString(name)
	}
	for _, h := range r.harbor {
		switch {
		case h.Repository != "" && !inside(h.Repository):
			problems = append(problems, "repository outside "+strings.Join(allow, ",")+": "+h.String())
		case h.Repository == "" && !slices.Contains([]string{"/v2/", "/v2", "/v2/_catalog", "/service/token"}, h.Path):
			problems = append(problems, "path Harbor cannot place in a project: "+h.String())
		}
		if hostileDotted(h.Path) || strings.ContainsAny(h.Path, `\%`) {
			problems = append(problems, "dot segment or escape reached Harbor: "+h.String())
		}
		query, _ := url.ParseQuery(h.RawQuery)
		if _, ok := query["ns"]; ok {
			problems = append(problems, "ns= reached Harbor: "+h.String())
		}
		named := query["from"]
		if h.Path == "/v2/_catalog" && h.RawQuery != "" {
			problems = append(problems, "a catalog query reached Harbor (the plugin pages the catalog itself): "+h.String())
		}
		for _, n := range named {
			if !inside(n) && !slices.Contains(allow, strings.TrimSuffix(n, "/")) {
				problems = append(problems, fmt.Sprintf("parameter naming %q reached Harbor: %s", n, h))
			}
		}
		bad, first := 0, ""
		for _, s := range h.Scopes {
			if p := hostileScopeProblem(s.Type, s.Name, s.Granted, allow); p != "" {
				if bad++; bad == 1 {
					first = p
				}
			}
		}
		if bad > 0 {
			problems = append(problems, fmt.Sprintf("%s (%d of %d scopes wrong): %.500s", first, bad, len(h.Scopes), h.String()))
		}
	}
	// Token forms are not parsed by the fake Harbor: read them from the forwarded bytes.
	for _, f := range r.forwarded {
		if f.Method != http.MethodPost || !strings.HasPrefix(f.RequestURI, "/service/token") {
			continue
		}
		form, _ := url.ParseQuery(string(f.Body))
		for _, param := range form["scope"] {
			for _, scope := range strings.Split(param, " ") {
				if scope == "" {
					continue
				}
				typ, name := hostileSplitScope(scope)
				if p := hostileScopeProblem(typ, name, nil, allow); p != "" {
					problems = append(problems, p+": POST "+f.RequestURI+" form scope "+scope)
				}
			}
		}
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("... and %d more", len(problems)-5))
	}
	return problems
}

// hostileAdmin is Harbor's admin, the only user Harbor shows its catalog.
var hostileAdmin = []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("admin:Harbor12345"))}

// hostileCatalogOnly checks a catalog page: JSON, only names of the hub project's repositories
// as the fake Harbor lists them (without "hub/"), and a Link, if any, on the mirror's own path.
func hostileCatalogOnly(w *hostileWorld, r *hostileResult) []string {
	var page struct{ Repositories []string }
	if err := json.Unmarshal(r.body, &page); err != nil || page.Repositories == nil {
		return []string{fmt.Sprintf("catalog page is not a catalog document: %q", r.body)}
	}
	names, err := w.m.Harbor.RepositoryNames(context.Background())
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, name := range page.Repositories {
		if !slices.Contains(names, "hub/"+name) {
			problems = append(problems, fmt.Sprintf("catalog page names %q, not a repository of hub (Harbor holds %q)", name, names))
		}
	}
	if link := r.header.Get("Link"); link != "" && !strings.HasPrefix(link, "</v2/_catalog?") {
		problems = append(problems, "catalog Link "+link)
	}
	return problems
}

// hostileScopeProblem says what is wrong with a scope Harbor was asked for, "" if nothing.
func hostileScopeProblem(typ, name string, granted []string, allow []string) string {
	project, rest, ok := strings.Cut(name, "/")
	switch {
	case typ == "repository" || strings.HasPrefix(typ, "repository("):
		if !ok || !slices.Contains(allow, project) || strings.HasPrefix(rest, project+"/") || !hostileNameRE.MatchString(name) {
			return fmt.Sprintf("token scope %s:%s outside %v", typ, name, allow)
		}
	case typ == "registry":
		if len(granted) > 0 && name != "catalog" {
			return fmt.Sprintf("registry scope %s granted %v", name, granted)
		}
	default:
		return fmt.Sprintf("token scope of type %q reached Harbor", typ)
	}
	return ""
}

// hostileSplitScope splits a scope as Harbor does: type before the first colon, name up to the last.
func hostileSplitScope(scope string) (typ, name string) {
	first, last := strings.Index(scope, ":"), strings.LastIndex(scope, ":")
	if first < 0 {
		return scope, ""
	}
	if last == first {
		return scope[:first], scope[first+1:]
	}
	return scope[:first], scope[first+1 : last]
}

func hostileDotted(path string) bool {
	for _, s := range strings.Split(path, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return strings.Contains(path, "//")
}

func hostileTrace(r *hostileResult) string {
	if len(r.forwarded) == 0 {
		return "nothing"
	}
	var parts []string
	for _, f := range r.forwarded {
		parts = append(parts, fmt.Sprintf("%s %.300q", f.Method, f.RequestURI))
	}
	return strings.Join(parts, ", ")
}

// hostileSummary is the report column for a result: what Harbor got, or the error code.
func hostileSummary(r *hostileResult) string {
	switch {
	case r.err != nil:
		return r.err.Error()
	case len(r.forwarded) > 0:
		f := r.forwarded[0]
		s := fmt.Sprintf("-> %s %.90s", f.Method, f.RequestURI)
		if len(f.RequestURI) > 90 {
			s += fmt.Sprintf("... (%d bytes)", len(f.RequestURI))
		}
		if code := hostileErrorCode(r); r.layer == hostileReplaced {
			s += " then " + code
		}
		return s
	case r.layer == hostilePlugin:
		return hostileErrorCode(r)
	}
	return fmt.Sprintf("%.60q", r.body)
}

// Case-specific checks.

func hostileAll(checks ...func(w *hostileWorld, r *hostileResult) []string) func(w *hostileWorld, r *hostileResult) []string {
	return func(w *hostileWorld, r *hostileResult) []string {
		var problems []string
		for _, c := range checks {
			problems = append(problems, c(w, r)...)
		}
		return problems
	}
}

// hostileRealmIs checks the realm of the answer's Bearer challenge.
func hostileRealmIs(r *hostileResult, want string) []string {
	challenge := r.header.Get("Www-Authenticate")
	if got := hostileChallengeParam(challenge, "realm"); got != want || !strings.HasPrefix(challenge, "Bearer ") {
		return []string{fmt.Sprintf("challenge %.300q, want realm %.300q", challenge, want)}
	}
	return nil
}

// hostileChallengeParamRE finds the quoted parameters of a challenge.
var hostileChallengeParamRE = regexp.MustCompile(`([A-Za-z]+)="([^"]*)"`)

// hostileChallengeParam returns a quoted parameter of a challenge, "" when absent.
func hostileChallengeParam(challenge, key string) string {
	for _, m := range hostileChallengeParamRE.FindAllStringSubmatch(challenge, -1) {
		if strings.EqualFold(m[1], key) {
			return m[2]
		}
	}
	return ""
}

// hostileForwardedHeader checks a header of the request Harbor received.
func hostileForwardedHeader(key, want string) func(w *hostileWorld, r *hostileResult) []string {
	return func(w *hostileWorld, r *hostileResult) []string {
		want := strings.ReplaceAll(want, "{host}", w.m.Host)
		for _, f := range r.forwarded {
			if got := f.Header.Values(key); len(got) != 1 || got[0] != want {
				return []string{fmt.Sprintf("Harbor received %s %q, want %q", key, got, want)}
			}
		}
		return nil
	}
}

// hostileScopeCount checks that Harbor parsed n scopes, each mapped into hub and granted pull.
func hostileScopeCount(n int) func(w *hostileWorld, r *hostileResult) []string {
	return func(w *hostileWorld, r *hostileResult) []string {
		if len(r.harbor) != 1 || len(r.harbor[0].Scopes) != n {
			return []string{fmt.Sprintf("want one token request with %d scopes, Harbor received %d requests", n, len(r.harbor))}
		}
		for _, s := range r.harbor[0].Scopes {
			if !strings.HasPrefix(s.Name, "hub/team/") || !slices.Equal(s.Granted, []string{"pull"}) {
				return []string{fmt.Sprintf("scope %s:%s granted %v", s.Type, s.Name, s.Granted)}
			}
		}
		return nil
	}
}

// hostileFormIs checks the token form Harbor received, and its Content-Length.
func hostileFormIs(want string) func(w *hostileWorld, r *hostileResult) []string {
	return func(w *hostileWorld, r *hostileResult) []string {
		if len(r.forwarded) != 1 || string(r.forwarded[0].Body) != want {
			return []string{fmt.Sprintf("Harbor received the form %.300q, want %.300q", hostileBodies(r), want)}
		}
		if cl := r.forwarded[0].Header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
			return []string{fmt.Sprintf("Harbor received Content-Length %q for %d bytes", cl, len(want))}
		}
		return nil
	}
}

// hostileFormScopes checks the scopes of the token form Harbor received.
func hostileFormScopes(want ...string) func(w *hostileWorld, r *hostileResult) []string {
	return func(w *hostileWorld, r *hostileResult) []string {
		if len(r.forwarded) != 1 {
			return []string{"want one forwarded token form, got " + hostileTrace(r)}
		}
		form, err := url.ParseQuery(string(r.forwarded[0].Body))
		if err != nil || !slices.Equal(form["scope"], want) {
			return []string{fmt.Sprintf("Harbor received scopes %q (%v), want %q", form["scope"], err, want)}
		}
		if cl := r.forwarded[0].Header.Get("Content-Length"); cl != strconv.Itoa(len(r.forwarded[0].Body)) {
			return []string{fmt.Sprintf("Harbor received Content-Length %q for %d bytes", cl, len(r.forwarded[0].Body))}
		}
		return nil
	}
}

func hostileBodies(r *hostileResult) string {
	var parts []string
	for _, f := range r.forwarded {
		parts = append(parts, string(f.Body))
	}
	return strings.Join(parts, " | ")
}

// hostileTap is a TCP proxy between Traefik and Harbor that keeps every byte Traefik sent, so a
// test can read the requests exactly as they left Traefik (target, headers, body).
type hostileTap struct {
	URL    string
	target string

	mu    sync.Mutex
	conns []*hostileTapConn
}

type hostileTapConn struct {
	data   []byte
	parsed int
}

// hostileTapRequest is one request as Traefik sent it.
type hostileTapRequest struct {
	Method, RequestURI, Host string
	Header                   http.Header
	Body                     []byte
}

func hostileStartTap(t *testing.T, target string) *hostileTap {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &hostileTap{URL: "http://" + l.Addr().String(), target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tap.relay(client)
			}()
		}
	}()
	return tap
}

// hostileTapWriter appends what Traefik sends to its connection's record.
type hostileTapWriter struct {
	tap  *hostileTap
	conn *hostileTapConn
}

func (w hostileTapWriter) Write(b []byte) (int, error) {
	w.tap.mu.Lock()
	defer w.tap.mu.Unlock()
	w.conn.data = append(w.conn.data, b...)
	return len(b), nil
}

func (tap *hostileTap) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", tap.target)
	if err != nil {
		return
	}
	defer server.Close()
	rec := &hostileTapConn{}
	tap.mu.Lock()
	tap.conns = append(tap.conns, rec)
	tap.mu.Unlock()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(client, server)
		_ = client.Close()
		close(done)
	}()
	// Recorded before it is passed on: a request is in the record before Harbor can answer it.
	_, _ = io.Copy(io.MultiWriter(hostileTapWriter{tap, rec}, server), client)
	_ = server.Close()
	<-done
}

// Take returns the complete requests recorded since the last call.
func (tap *hostileTap) Take() []*hostileTapRequest {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	var out []*hostileTapRequest
	for _, c := range tap.conns {
		for {
			data := c.data[c.parsed:]
			if len(data) == 0 {
				break
			}
			src := bytes.NewReader(data)
			br := bufio.NewReader(src)
			req, err := http.ReadRequest(br)
			if err != nil {
				break
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				break
			}
			c.parsed += len(data) - src.Len() - br.Buffered()
			out = append(out, &hostileTapRequest{Method: req.Method, RequestURI: req.RequestURI, Host: req.Host, Header: req.Header, Body: body})
		}
	}
	return out
}

// A response the plugin replaces (here: a Host it cannot echo into a realm) keeps none of
// Harbor's headers: no realm with that Host, or with Harbor's own address when Host is empty.
func TestHostileRefusalDropsHarborHeaders(t *testing.T) {
	w := hostileStart(t, defaultSettings(), false)
	for _, host := range []string{"a.example,b.example", ""} {
		r := hostileRun(t, w, hostileCase{target: "/v2/library/hello/manifests/latest", host: hostileStr(host)})
		if r.status != 400 || r.layer != hostileReplaced {
			t.Fatalf("Host %q: %d %s", host, r.status, r.layer)
		}
		if v := r.header.Values("Www-Authenticate"); len(v) > 0 {
			t.Errorf("Host %q: the 400 still carries %q", host, v)
		}
	}
}

// A 401 to a cross-repository mount names the mount's source as the client named it.
func TestHostileMountSourceNotNamedWithProject(t *testing.T) {
	w := hostileStart(t, defaultSettings(), false)
	r := hostileRun(t, w, hostileCase{method: "POST", target: "/v2/x/blobs/uploads/?mount=" + hostileDigest + "&from=team/x"})
	if r.status != 401 {
		t.Fatalf("status %d", r.status)
	}
	if strings.Contains(string(r.body), "hub/") {
		t.Errorf("401 body names the project: %s", r.body)
	}
}

// A repository whose name begins with the project's own name (hub/x on project hub, hub/hub/x in
// Harbor) loses exactly one project prefix in Harbor's 401 document, and the pull lane (no query)
// and the general path (another query parameter) answer it with the same body.
func TestHostileOwnProjectNameStrippedOnce(t *testing.T) {
	w := hostileStart(t, defaultSettings(), false)
	var bodies []string
	for _, target := range []string{"/v2/hub/x/manifests/latest", "/v2/hub/x/manifests/latest?x=1"} {
		r := hostileRun(t, w, hostileCase{target: target})
		if r.status != 401 {
			t.Fatalf("%s: status %d", target, r.status)
		}
		if !strings.Contains(string(r.body), `"Name":"hub/x"`) {
			t.Errorf("%s: 401 body does not name hub/x as the client did: %s", target, r.body)
		}
		if scope := hostileChallengeParam(r.header.Get("Www-Authenticate"), "scope"); scope != "repository:hub/x:pull" {
			t.Errorf("%s: challenge scope %q, want repository:hub/x:pull", target, scope)
		}
		bodies = append(bodies, string(r.body))
	}
	if bodies[0] != bodies[1] {
		t.Errorf("the lane and the general path differ:\n%s\n%s", bodies[0], bodies[1])
	}
}
