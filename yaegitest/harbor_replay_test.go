package yaegitest

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The exchanges of a real Harbor v2.15.2 recorded in ../testdata/harbor-v2.15.2 (see its
// README.md), replayed through the plugin: a scripted Harbor checks that the plugin forwarded the
// recorded request and answers with the recorded response verbatim, and the client's response is
// held to the rules of README "Rules" and "Security".
const recordedDir = "../testdata/harbor-v2.15.2"

// recordedHost is the Host Harbor received in the recording run. Traefik passes the client's Host
// to Harbor, so it is also the client's Host here, and the origin Harbor builds its realm and
// upload Location on.
const recordedHost = "harbor.example.test"

// replayCase is one recorded file and the client's request that makes the plugin forward the
// recorded request.
type replayCase struct {
	file     string                 // under recordedDir, without .http
	client   string                 // which client's form of the request, when a file has several
	settings map[string]interface{} // the plugin's; publicURL and mirrorPath are added per variant
	method   string                 // the client's request
	target   string                 // the client's request target, without mirrorPath
	form     string                 // the client's token POST form; "" for other requests
	// forwarded is the target Harbor must receive when it is not the recorded one (see the
	// catalog rows).
	forwarded string
	scope     string // the scope of Harbor's Bearer challenge as the client must see it ("" none)
	realmNS   string // the ?ns= the realm carries (README "Rules": the token request maps alike)
	// location and link are the client's Location and Link ("" means absent). {public} stands for
	// the public origin and mirrorPath, {mirror} for mirrorPath alone, {query} for the query of
	// Harbor's Location (an opaque upload state the client hands back).
	location, link string
	// body is the client's body when the rules rewrite Harbor's; "" means Harbor's, byte for byte.
	body string
}

// hub is the public proxy-cache project of the recording; team the private one, where alice's
// one-component repositories (recorded, recorded-too) live, so a mirror of it keeps names as
// they are (libraryPrefix off).
var (
	hubMirror  = map[string]interface{}{"project": "hub"}
	teamMirror = map[string]interface{}{"project": "team", "libraryPrefix": "false"}
)

const recordedDigest = "sha256:4c4f7c13225f674ba18bb9b317999a260549bdf7326332a944693052b076ad86"

var replayCases = []replayCase{
	{file: "challenge-base", settings: hubMirror, method: "GET", target: "/v2/"},
	{file: "challenge-repository", settings: hubMirror, method: "GET", target: "/v2/library/recorded/manifests/latest",
		scope: "repository:library/recorded:pull"},
	// containerd's form: ns=docker.io goes to the default project and comes back in the realm.
	{file: "challenge-repository", client: "containerd", settings: hubMirror, method: "GET",
		target: "/v2/library/recorded/manifests/latest?ns=docker.io", scope: "repository:library/recorded:pull", realmNS: "docker.io"},
	// A one-component name (crane, skopeo: mirror/recorded) gets library/ and takes the general
	// rules instead of the pull lane; the challenge names the request's own repository as the
	// client named it, so the token request it leads to maps the same way.
	{file: "challenge-repository", client: "one-component", settings: hubMirror, method: "GET",
		target: "/v2/recorded/manifests/latest", scope: "repository:recorded:pull"},
	// dockerd and containerd ask for the token with the client's names; the plugin maps the scope.
	{file: "token-get", settings: hubMirror, method: "GET",
		target: "/service/token?scope=repository%3Alibrary%2Frecorded%3Apull&service=harbor-registry"},
	// containerd's, on the realm it got with ?ns=docker.io: the ns goes, the scope is mapped.
	{file: "token-get", client: "containerd", settings: hubMirror, method: "GET",
		target: "/service/token?ns=docker.io&scope=repository%3Alibrary%2Frecorded%3Apull&service=harbor-registry"},
	// containerd's OAuth2 POST with a secret: Harbor's 405 reaches the client, which then uses GET.
	{file: "token-post", settings: teamMirror, method: "POST", target: "/service/token",
		form: "client_id=harbormirror-test&grant_type=password&password=Wonderland-7&scope=repository%3Arecorded%3Apull&service=harbor-registry&username=alice"},
	// On this first (proxied) fetch Harbor sent Docker-Content-Digest and Etag empty: they pass as sent.
	{file: "manifest", settings: hubMirror, method: "GET", target: "/v2/library/recorded/manifests/latest"},
	{file: "blob", settings: hubMirror, method: "GET",
		target: "/v2/library/recorded/blobs/sha256:30f5b6a2078705dc242498a0c11e49206f4ff5154ebbb91328ae63e469560ed6"},
	// The recorded request has no library/: that is the client's recorded with libraryPrefix off.
	{file: "one-component-name", settings: map[string]interface{}{"project": "hub", "libraryPrefix": "false"},
		method: "GET", target: "/v2/recorded/manifests/latest",
		body: `{"errors":[{"code":"NOT_FOUND","message":"resource not found: repo recorded, tag latest not found"}]}` + "\n"},
	{file: "manifest-unknown", settings: teamMirror, method: "GET", target: "/v2/recorded/manifests/missing",
		body: `{"errors":[{"code":"NOT_FOUND","message":"artifact recorded:missing not found"}]}` + "\n"},
	{file: "upload-start", settings: teamMirror, method: "POST", target: "/v2/recorded/blobs/uploads/",
		location: "{public}/v2/recorded/blobs/uploads/8cc9ea7d-1491-4564-93f8-516c1b577cc9?{query}"},
	// The plugin re-encodes the document with the client's name (without Harbor's final newline).
	{file: "tags-list-page", settings: teamMirror, method: "GET", target: "/v2/recorded/tags/list?n=1",
		link: `<{mirror}/v2/recorded/tags/list?last=v1&n=1>; rel="next"`, body: `{"name":"recorded","tags":["v1"]}`},
	// The plugin pages the catalog itself over Harbor's whole list: Harbor gets /v2/_catalog
	// without the client's n=1 (README "Rules"). The recorded body (Harbor's first page for n=1)
	// stands for that whole list here: the client's page is team's one name without the prefix,
	// and no Link, since nothing follows it in that list.
	{file: "catalog-page", settings: teamMirror, method: "GET", target: "/v2/_catalog?n=1", forwarded: "/v2/_catalog",
		body: `{"repositories":["recorded"]}` + "\n"},
	// Harbor's 401 to a Bearer catalog request takes the response rules: its Basic challenge and
	// error document (which names nothing) pass as they are.
	{file: "catalog-bearer", settings: teamMirror, method: "GET", target: "/v2/_catalog?n=1", forwarded: "/v2/_catalog"},
	{file: "referrers", settings: teamMirror, method: "GET", target: "/v2/recorded/referrers/" + recordedDigest},
}

// replayVariant is how the mirror is published: the origin comes from Host and X-Forwarded-Proto,
// or from publicURL; mirrorPath puts it under a path. The path is not named like a project, so
// that any "hub/" or "team/" in the client's response is a leak.
type replayVariant struct {
	name       string
	publicURL  string
	mirrorPath string
}

var replayVariants = []replayVariant{
	{name: "Host"},
	{name: "publicURL", publicURL: "https://mirror.example.com"},
	{name: "mirrorPath", mirrorPath: "/mirror"},
}

func (v replayVariant) origin() string {
	if v.publicURL != "" {
		return v.publicURL
	}
	return "https://" + recordedHost // the recording's X-Forwarded-Proto: https
}

func (v replayVariant) settings(base map[string]interface{}) map[string]interface{} {
	s := map[string]interface{}{}
	for k, val := range base {
		s[k] = val
	}
	if v.publicURL != "" {
		s["publicURL"] = v.publicURL
	}
	if v.mirrorPath != "" {
		s["mirrorPath"] = v.mirrorPath
	}
	return s
}

// recorded is one exchange as Harbor saw it.
type recorded struct {
	request     *http.Request
	requestBody string
	response    *http.Response
	body        []byte
}

func readRecorded(t *testing.T, file string) recorded {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(recordedDir, file+".http"))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	req, err := http.ReadRequest(r)
	if err != nil {
		t.Fatalf("%s: request: %v", file, err)
	}
	reqBody, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("%s: request body: %v", file, err)
	}
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		t.Fatalf("%s: response: %v", file, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: response body: %v", file, err)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Fatalf("%s: %d bytes after the response", file, len(rest))
	}
	return recorded{request: req, requestBody: string(reqBody), response: resp, body: body}
}

// hopByHop are the response headers Traefik's proxy drops before a middleware sees Harbor's answer.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer"}

// forwardedRequest is what reached the scripted Harbor.
type forwardedRequest struct {
	reached                bool
	method, target, urlURI string
	body, authorization    string
}

// recordedHarbor answers every request with the recorded response, verbatim but for the hop-by-hop
// headers, and notes what it got.
func recordedHarbor(rec recorded, got *forwardedRequest) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		*got = forwardedRequest{reached: true, method: r.Method, target: r.RequestURI, urlURI: r.URL.RequestURI(),
			body: string(body), authorization: r.Header.Get("Authorization")}
		for k, v := range rec.response.Header {
			w.Header()[k] = append([]string(nil), v...)
		}
		for _, k := range hopByHop {
			w.Header().Del(k)
		}
		w.WriteHeader(rec.response.StatusCode)
		_, _ = w.Write(rec.body)
	})
}

// clientRequest is the client's request as Traefik hands it to the plugin: the recorded headers
// (Authorization, Accept, X-Forwarded-Proto, ...) on the recorded Host.
func clientRequest(c replayCase, v replayVariant, rec recorded) *http.Request {
	body := rec.requestBody
	if c.form != "" {
		body = c.form
	}
	req := httptest.NewRequest(c.method, v.mirrorPath+c.target, strings.NewReader(body))
	req.Host = recordedHost
	for k, vals := range rec.request.Header {
		req.Header[k] = append([]string(nil), vals...)
	}
	req.ContentLength = int64(len(body))
	if len(body) > 0 {
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		req.Header.Del("Content-Length")
	}
	return req
}

func runHarborReplay(t *testing.T, build build) {
	for _, v := range replayVariants {
		for _, c := range replayCases {
			name := v.name + "/" + c.file
			if c.client != "" {
				name += "/" + c.client
			}
			t.Run(name, func(t *testing.T) {
				rec := readRecorded(t, c.file)
				var got forwardedRequest
				handler, err := build(t, v.settings(c.settings), recordedHarbor(rec, &got))
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, clientRequest(c, v, rec))
				project := c.settings["project"].(string)
				assertForwarded(t, c, rec, got)
				assertReplayStatus(t, rec, w)
				assertChallenges(t, v, c, rec, w)
				assertURLHeader(t, "Location", expand(c.location, v, rec), w)
				assertURLHeader(t, "Link", expand(c.link, v, rec), w)
				assertReplayBody(t, c, rec, w)
				assertHeadersKept(t, rec, w)
				assertNoProjectLeak(t, project, w)
			})
		}
	}
}

func TestHarborReplay(t *testing.T)      { runHarborReplay(t, buildCompiled) }
func TestYaegiHarborReplay(t *testing.T) { runHarborReplay(t, buildYaegi) }

// assertForwarded: Harbor got the recorded method and request target (path and query exactly,
// in RequestURI and URL alike), the recorded form of a token POST, and the client's credentials.
func assertForwarded(t *testing.T, c replayCase, rec recorded, got forwardedRequest) {
	t.Helper()
	want := rec.request.RequestURI
	if c.forwarded != "" {
		want = c.forwarded
	}
	if !got.reached {
		t.Fatalf("never reached Harbor; want %s %s", rec.request.Method, want)
	}
	if got.method != rec.request.Method || got.target != want || got.urlURI != want {
		t.Errorf("Harbor got %s %s (URL %s)\n want %s %s", got.method, got.target, got.urlURI, rec.request.Method, want)
	}
	if got.body != rec.requestBody {
		t.Errorf("Harbor got body %q\n want the recorded %q", got.body, rec.requestBody)
	}
	if got.authorization != rec.request.Header.Get("Authorization") {
		t.Errorf("Harbor got Authorization %q, want the client's", got.authorization)
	}
}

// assertReplayStatus: the client gets Harbor's status (no recorded answer is one the plugin
// replaces: the catalog's 200 is its own page, with Harbor's status).
func assertReplayStatus(t *testing.T, rec recorded, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != rec.response.StatusCode {
		t.Errorf("status %d, want Harbor's %d (body %s)", w.Code, rec.response.StatusCode, w.Body)
	}
}

var challengeParam = regexp.MustCompile(`([a-z]+)="([^"]*)"`)

// assertChallenges: each Bearer challenge points at the mirror's token path on the public origin,
// keeps Harbor's service, and carries the client's scope; other challenges (Basic) keep their
// bytes. The client gets as many challenges as Harbor sent.
func assertChallenges(t *testing.T, v replayVariant, c replayCase, rec recorded, w *httptest.ResponseRecorder) {
	t.Helper()
	harbor, client := rec.response.Header.Values("Www-Authenticate"), w.Header().Values("Www-Authenticate")
	if len(client) != len(harbor) {
		t.Fatalf("Www-Authenticate %q, want as many values as Harbor's %q", client, harbor)
	}
	for i, value := range client {
		if !strings.HasPrefix(value, "Bearer ") {
			if value != harbor[i] {
				t.Errorf("Www-Authenticate %q, want Harbor's %q", value, harbor[i])
			}
			continue
		}
		params := map[string]string{}
		for _, m := range challengeParam.FindAllStringSubmatch(value, -1) {
			params[m[1]] = m[2]
		}
		want := v.origin() + v.mirrorPath + "/service/token"
		if c.realmNS != "" {
			want += "?ns=" + c.realmNS
		}
		if params["realm"] != want {
			t.Errorf("realm %q in %s\n want %q", params["realm"], value, want)
		}
		if params["service"] != "harbor-registry" {
			t.Errorf("service %q in %s, want Harbor's harbor-registry", params["service"], value)
		}
		if params["scope"] != c.scope {
			t.Errorf("scope %q in %s, want %q", params["scope"], value, c.scope)
		}
	}
}

// expand fills the placeholders of a table's expected URL.
func expand(s string, v replayVariant, rec recorded) string {
	query := ""
	if loc := rec.response.Header.Get("Location"); strings.Contains(loc, "?") {
		query = loc[strings.Index(loc, "?")+1:]
	}
	return strings.NewReplacer("{public}", v.origin()+v.mirrorPath, "{mirror}", v.mirrorPath, "{query}", query).Replace(s)
}

// assertURLHeader: Location or Link is exactly the expected one ("" means absent): without the
// project, relative or on the public origin, under mirrorPath.
func assertURLHeader(t *testing.T, name, want string, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Values(name); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
		t.Errorf("%s %q\n want %q", name, got, want)
	}
}

// assertReplayBody: the client gets Harbor's body byte for byte (manifests, blobs, referrers,
// tokens, documents that name no repository), or the table's rewritten one, with a Content-Length
// that fits it.
func assertReplayBody(t *testing.T, c replayCase, rec recorded, w *httptest.ResponseRecorder) {
	t.Helper()
	want := string(rec.body)
	if c.body != "" {
		want = c.body
	}
	if got := w.Body.String(); got != want {
		t.Errorf("body %q\n want %q", got, want)
	}
	if cl := w.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length %s for a body of %d bytes", cl, w.Body.Len())
	}
}

// rewrittenHeaders are the headers README "Rules" lets the plugin change; Content-Length follows a
// rewritten body. Every other header of Harbor's reaches the client as Harbor sent it
// (Docker-Content-Digest, Content-Type, Docker-Upload-Uuid, Range, X-Total-Count, ...).
var rewrittenHeaders = map[string]bool{"Www-Authenticate": true, "Location": true, "Link": true, "Content-Length": true}

func assertHeadersKept(t *testing.T, rec recorded, w *httptest.ResponseRecorder) {
	t.Helper()
	for k, want := range rec.response.Header {
		if rewrittenHeaders[k] || contains(hopByHop, k) {
			continue
		}
		if got := w.Header()[k]; strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
			t.Errorf("%s %q, want Harbor's %q", k, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// assertNoProjectLeak: no header value or body of the client's response names the project, plainly,
// percent-encoded or JSON-escaped. None of the recorded answers needs an exception: Harbor's
// tokens and upload states name the project only inside base64 (Harbor's own, opaque to clients),
// and the variants' mirrorPath is not named like a project.
func assertNoProjectLeak(t *testing.T, project string, w *httptest.ResponseRecorder) {
	t.Helper()
	forms := []string{project + "/", project + "%2f", project + `\/`}
	check := func(where, s string) {
		lower := strings.ToLower(s)
		for _, f := range forms {
			if strings.Contains(lower, f) {
				t.Errorf("%s names the project (%s): %s", where, f, s)
			}
		}
	}
	for k, vals := range w.Header() {
		for _, val := range vals {
			check(k, val)
		}
	}
	check("body", w.Body.String())
}
