package boundary

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The tiers at the plugin boundary: a Mirror tries its lanes first, while withoutLanes serves the
// same configuration through the pull path and the general path only. Whatever the client sends
// and whatever Harbor answers, both must forward the same request and give the same response, and
// neither may panic. The plugin's tests compare them compiled (tiers_test.go), yaegitest under
// Yaegi.

// TierSettings are the configurations the tiers are compared under: ns values routing to the
// default project (the lanes' alternation) and to another one, mirrorPath empty and set, and the
// options the lanes read (libraryPrefix, readOnly, publicURL, tokenPath). Each has lanes.
var TierSettings = []map[string]interface{}{
	{"project": "hub", "registries": map[string]interface{}{"docker.io": "hub", "mirror.gcr.io": "hub", "ghcr.io": "ghcr"}},
	{"project": "hub", "registries": map[string]interface{}{"docker.io": "hub", "mirror.gcr.io": "hub", "ghcr.io": "ghcr"}, "mirrorPath": "/hub"},
	{"project": "hub", "libraryPrefix": false, "readOnly": true, "publicURL": "https://dockerhub.example.com", "tokenPath": "/token"},
	{"project": "dh", "readOnly": true, "mirrorPath": "/m", "tokenPath": "/token"},
}

// tierPair is one configuration of TierSettings served with its lanes and without them, both in
// front of scriptedHarbor.
type tierPair struct {
	lanes, general     http.Handler
	mirrorPath, tokens string // tokens: the mirror's token path, mirrorPath included
}

// newTierPairs builds a tierPair for each of TierSettings: lanes builds the middleware as New
// does, general the same configuration without its lanes.
func newTierPairs(t testing.TB, lanes, general Build) []tierPair {
	pairs := make([]tierPair, len(TierSettings))
	for i, settings := range TierSettings {
		l, err := lanes(t, settings, scriptedHarbor{})
		if err != nil {
			t.Fatalf("%v: %v", settings, err)
		}
		g, err := general(t, settings, scriptedHarbor{})
		if err != nil {
			t.Fatalf("%v: %v", settings, err)
		}
		mirrorPath, _ := settings["mirrorPath"].(string)
		tokenPath, ok := settings["tokenPath"].(string)
		if !ok {
			tokenPath = "/service/token"
		}
		pairs[i] = tierPair{lanes: l, general: g, mirrorPath: mirrorPath, tokens: mirrorPath + tokenPath}
	}
	return pairs
}

// RunTiersAgree serves every request of tierRequests with every answer of harborAnswers under
// each of TierSettings, built by lanes (as New builds the middleware) and by general (the same
// without its lanes), and fails on any difference. every > 1 runs only every every-th exchange of
// the grid, in a fixed order so that a run is repeatable; it must be prime to the number of
// answers so that each request still meets several of them.
func RunTiersAgree(t *testing.T, lanes, general Build, every int) {
	if every < 1 || gcd(every, len(harborAnswers)) != 1 {
		t.Fatalf("every %d: want a number prime to the %d answers", every, len(harborAnswers))
	}
	pairs := newTierPairs(t, lanes, general)
	requests := tierRequests()
	n := 0
	for i, pair := range pairs {
		t.Run(fmt.Sprint(TierSettings[i]), func(t *testing.T) {
			for _, req := range requests {
				targets := []string{pair.mirrorPath + req.target}
				if pair.mirrorPath != "" {
					targets = append(targets, req.target) // Harbor's own paths beside the mirror's
				}
				for _, target := range targets {
					target = strings.Replace(target, pair.mirrorPath+"{token}", pair.tokens, 1)
					target = strings.Replace(target, "{token}", "/service/token", 1)
					header := http.Header{"X-Forwarded-Proto": {"https"}}
					if req.body != "" {
						header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					for _, answer := range harborAnswers {
						if n++; (n-1)%every == 0 {
							compareTiers(t, pair, req.method, target, req.body, header, answer, bodyShape{})
						}
					}
				}
			}
		})
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// FuzzTiers is a fuzz target over ServeHTTP: any method, target, request body and Harbor answer
// (status, challenge, body and its headers), under the configuration of TierSettings that config
// picks, built by lanes and by general as for RunTiersAgree. The tiers must forward the same
// request and give the same response, without a panic.
func FuzzTiers(f *testing.F, lanes, general Build) {
	for _, seed := range []struct {
		method, target, body string
		status               int
		challenge, harbor    string
		config               uint8
	}{
		{"HEAD", "/v2/library/hello/manifests/latest", "", 401, harborChallenge, "", 0},
		{"GET", "/v2/library/hello/manifests/latest?ns=docker.io", "", 401, harborChallenge + `,error="invalid_token"`, tierUnauthorized, 0},
		{"GET", "/hub/v2/library/nope/manifests/latest", "", 404, "", tierNotFound, 1},
		{"GET", "/hub/v2/library/hello/blobs/" + Digest + "?ns=mirror.gcr.io", "", 401, harborChallenge, tierDetail, 1},
		{"GET", "/v2/owner/app/manifests/v1?ns=ghcr.io", "", 401, harborChallenge, tierUnauthorized, 0},
		{"GET", "/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", "", 200, "", `{"token":"t"}`, 0},
		{"GET", "/hub/service/token?ns=docker.io&scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", "", 200, "", "", 1},
		{"POST", "/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", "scope=repository%3Aother%2Fx%3Apush", 200, "", "", 0},
		{"PUT", "/m/v2/team/app/manifests/v1", "{}", 201, "", "", 3},
		{"GET", "/v2/a/b/manifests/latest", "", 401, `Basic realm="harbor"`, tierUnauthorized, 2},
	} {
		for _, shape := range []uint8{0, 1, 2, 4, 8} {
			f.Add(seed.method, seed.target, seed.body, seed.status, seed.challenge, seed.harbor, seed.config, shape)
		}
	}
	pairs := newTierPairs(f, lanes, general)
	f.Fuzz(func(t *testing.T, method, target, body string, status int, challenge, harbor string, config, shape uint8) {
		fuzzTier(t, pairs, method, target, body, status, challenge, harbor, config, shape)
	})
}

// AddTiersCorpus adds to f the inputs of a FuzzTiers corpus directory (files in go test's "go
// test fuzz v1" encoding), so that a target of another package replays what the plugin's FuzzTiers
// found: the plugin's testdata/fuzz/FuzzTiers, which only FuzzTiers itself would read.
func AddTiersCorpus(f *testing.F, dir string) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		content, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		in, err := parseTiersInput(string(content))
		if err != nil {
			f.Fatalf("%s: %v", e.Name(), err)
		}
		f.Add(in...)
	}
}

// parseTiersInput reads one corpus file of FuzzTiers as go test reads it (internal/fuzz):
// method, target, body (string), status (int), challenge, harbor (string), config, shape (byte).
func parseTiersInput(content string) ([]interface{}, error) {
	lines := strings.Split(strings.TrimSpace(content), "\n")
	if len(lines) != 9 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a go test fuzz v1 file of FuzzTiers' 8 values")
	}
	in := make([]interface{}, 8)
	for i := range in {
		line := strings.TrimSpace(lines[i+1])
		open := strings.IndexByte(line, '(')
		if open < 0 || !strings.HasSuffix(line, ")") {
			return nil, fmt.Errorf("value %d: %q", i+1, line)
		}
		typ, lit := line[:open], line[open+1:len(line)-1]
		var err error
		switch {
		case typ == "string" && i != 3 && i < 6:
			in[i], err = strconv.Unquote(lit)
		case typ == "int" && i == 3:
			var n int64
			n, err = strconv.ParseInt(lit, 0, 64)
			in[i] = int(n)
		case (typ == "byte" || typ == "uint8") && i >= 6:
			in[i], err = parseByte(lit)
		default:
			err = fmt.Errorf("not the type FuzzTiers takes there")
		}
		if err != nil {
			return nil, fmt.Errorf("value %d, %q: %v", i+1, line, err)
		}
	}
	return in, nil
}

// parseByte reads a byte written as go test writes one, '\x80', or as an integer.
func parseByte(lit string) (uint8, error) {
	if len(lit) >= 2 && lit[0] == '\'' && lit[len(lit)-1] == '\'' {
		code, _, _, err := strconv.UnquoteChar(lit[1:len(lit)-1], '\'')
		if err == nil && code >= 256 {
			err = fmt.Errorf("not a byte")
		}
		return uint8(code), err
	}
	n, err := strconv.ParseUint(lit, 0, 8)
	return uint8(n), err
}

// fuzzTier is one input of FuzzTiers.
func fuzzTier(t *testing.T, pairs []tierPair, method, target, body string, status int, challenge, harbor string, config, shape uint8) {
	if status < 200 || status > 599 {
		status = 200 + (status%400+400)%400
	}
	// shape varies the body's headers: its length left out, gzip, no type, JSON in capitals.
	answer := harborAnswer{status: status, header: jsonHeader(), body: harbor}
	switch shape >> 2 & 3 {
	case 1:
		answer.header.Del("Content-Type")
	case 2:
		answer.header.Set("Content-Type", "Application/JSON")
	}
	if challenge != "" {
		answer.header.Set("Www-Authenticate", challenge)
	}
	header := http.Header{"X-Forwarded-Proto": {"https"}, "Content-Type": {"application/x-www-form-urlencoded"}}
	compareTiers(t, pairs[int(config)%len(pairs)], method, target, body, header, answer, bodyShape{chunked: shape&1 != 0, gzip: shape&2 != 0})
}

// harborAnswer is what scriptedHarbor answers; "{name}" in a header or the body stands for the
// repository Harbor received, as Harbor names it in its challenge scope and error documents.
type harborAnswer struct {
	status int
	header http.Header
	body   string
}

// bodyShape varies how Harbor sends a body: chunked without Content-Length, gzip-encoded.
type bodyShape struct{ chunked, gzip bool }

// forwarded is what reached Harbor; zero when nothing did.
type forwarded struct {
	Method, RequestURI, URL, Host string
	Header                        http.Header
	Body                          string
	ContentLength                 int64
}

// tierResult is one handler's side of an exchange.
type tierResult struct {
	Forwarded forwarded
	Status    int
	Header    http.Header
	Body      string
	Panic     string
}

type answerKey struct{}

// harborCall carries the answer to scriptedHarbor and brings back what reached it, through the
// request's context, which the plugin forwards with the request.
type harborCall struct {
	answer harborAnswer
	shape  bodyShape
	got    forwarded
}

// scriptedHarbor answers as Harbor does: the scripted status, headers and body with the
// repository it received put in, a Content-Length for the body, and no body to a HEAD.
type scriptedHarbor struct{}

// harborRepository is the repository of a registry path as Harbor receives it.
var harborRepository = regexp.MustCompile(`^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/`)

func (scriptedHarbor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := r.Context().Value(answerKey{}).(*harborCall)
	body, _ := io.ReadAll(r.Body)
	call.got = forwarded{Method: r.Method, RequestURI: r.RequestURI, URL: r.URL.String(), Host: r.Host,
		Header: r.Header.Clone(), Body: string(body), ContentLength: r.ContentLength}
	name := "hub/library/hello"
	if m := harborRepository.FindStringSubmatch(r.URL.Path); m != nil {
		name = m[1]
	}
	h := w.Header()
	for k, values := range call.answer.header {
		for _, v := range values {
			h.Add(k, strings.ReplaceAll(v, "{name}", name))
		}
	}
	doc := strings.ReplaceAll(call.answer.body, "{name}", name)
	if call.shape.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = io.WriteString(zw, doc)
		_ = zw.Close()
		doc = b.String()
		h.Set("Content-Encoding", "gzip")
	}
	if doc != "" && !call.shape.chunked {
		h.Set("Content-Length", strconv.Itoa(len(doc)))
	}
	w.WriteHeader(call.answer.status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, doc)
	}
}

// readRequest reads a request as Go's server (Traefik's entrypoint) does; ok is false for one
// the server would not hand to a handler.
func readRequest(method, target, body string, header http.Header) (*http.Request, bool) {
	if strings.ContainsAny(method+target, " \r\n\t") || method == "" || target == "" {
		return nil, false
	}
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: mirror.example.com\r\n")
	for k, values := range header {
		for _, v := range values {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil || method == http.MethodConnect {
		return nil, false
	}
	return r, true
}

// serveTier runs one exchange through h.
func serveTier(h http.Handler, r *http.Request, answer harborAnswer, shape bodyShape) (res tierResult) {
	call := &harborCall{answer: answer, shape: shape}
	r = r.WithContext(context.WithValue(r.Context(), answerKey{}, call))
	rec := httptest.NewRecorder()
	defer func() {
		if p := recover(); p != nil {
			res.Panic = fmt.Sprint(p)
		}
	}()
	h.ServeHTTP(rec, r)
	return tierResult{Forwarded: call.got, Status: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
}

// compareTiers serves one exchange with and without lanes and fails on any difference.
func compareTiers(t *testing.T, pair tierPair, method, target, body string, header http.Header, answer harborAnswer, shape bodyShape) {
	t.Helper()
	lanesReq, ok := readRequest(method, target, body, header)
	if !ok {
		return
	}
	generalReq, _ := readRequest(method, target, body, header)
	lanes, general := serveTier(pair.lanes, lanesReq, answer, shape), serveTier(pair.general, generalReq, answer, shape)
	if lanes.Panic != "" || general.Panic != "" {
		t.Fatalf("%s %s (Harbor %d): panic with lanes %q, without %q", method, target, answer.status, lanes.Panic, general.Panic)
	}
	if !reflect.DeepEqual(lanes, general) {
		t.Fatalf("%s %s, body %q, Harbor answers %d %v %q %+v:\nwith lanes    %+v\nwithout lanes %+v",
			method, target, body, answer.status, answer.header, answer.body, shape, lanes, general)
	}
}

const (
	// Harbor's challenge to a repository request, and its error documents.
	harborScope      = `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="repository:`
	harborChallenge  = harborScope + `{name}:pull"`
	tierUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: {name}, action: pull: unauthorized to access repository: {name}, action: pull"}]}` + "\n"
	tierDetail       = `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"{name}","Action":"pull"}]}]}` + "\n"
	tierNotFound     = `{"errors":[{"code":"NOT_FOUND","message":"artifact {name}:latest not found"}]}` + "\n"
	tierUnknown      = `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Name":"{name}","Revision":""}}]}` + "\n"
)

func jsonHeader(more ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Docker-Distribution-Api-Version": {"registry/2.0"}}
	for i := 0; i+1 < len(more); i += 2 {
		h.Add(more[i], more[i+1])
	}
	return h
}

// harborAnswers are Harbor's answers to the requests of tierRequests.
var harborAnswers = []harborAnswer{
	{200, http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}, "Docker-Content-Digest": {Digest}}, `{"schemaVersion":2}`},
	{401, jsonHeader("Www-Authenticate", harborChallenge), tierUnauthorized},
	{401, jsonHeader("Www-Authenticate", harborChallenge+`,error="invalid_token"`), tierDetail},
	{401, jsonHeader("Www-Authenticate", `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry"`), tierUnauthorized},
	{401, jsonHeader("Www-Authenticate", `Basic realm="harbor"`), tierUnauthorized},
	{401, jsonHeader("Www-Authenticate", `Basic realm="harbor"`, "Www-Authenticate", harborChallenge), tierUnauthorized},
	// challenges and documents naming other repositories, or several
	{401, jsonHeader("Www-Authenticate", harborScope+`hub/other/x:pull,push"`), tierUnauthorized},
	{401, jsonHeader("Www-Authenticate", harborScope+`ghcr/library/hello:pull"`), tierUnauthorized},
	{401, jsonHeader("Www-Authenticate", harborScope+`{name}:pull repository:hub/b:pull"`), tierDetail},
	{401, jsonHeader("Www-Authenticate", harborScope+`hub/:pull"`), tierUnauthorized},
	{401, jsonHeader("Www-Authenticate", harborChallenge), `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"{name}","Action":"pull"},{"Type":"repository","Name":"hub/other/base","Action":"pull"}]}]}`},
	{403, jsonHeader(), `{"errors":[{"code":"DENIED","message":"{name}: pull denied"}]}`},
	{404, jsonHeader(), tierNotFound},
	{404, jsonHeader(), tierUnknown},
	{202, jsonHeader("Location", "http://mirror.example.com/v2/{name}/blobs/uploads/u-1?_state=x", "Docker-Upload-Uuid", "u-1"), ""},
	{307, http.Header{"Location": {"https://s3.example.com/b/{name}?sig=1"}}, ""},
	{200, http.Header{"Content-Type": {"application/json"}}, `{"token":"t","access_token":"t","expires_in":1800}`},
}

// tierRequests are the clients' requests: "{token}" stands for the token path, and each runs
// under the mirror path (and, with one, outside it too).
func tierRequests() []struct{ method, target, body string } {
	long := func(n int) string { return "a/" + strings.Repeat("b", n-len("a/")) }
	scope := func(name string) string { return strings.ReplaceAll(name, "/", "%2F") }
	form := "grant_type=password&service=harbor-registry&scope=repository%3Aother%2Fx%3Apush"
	var requests []struct{ method, target, body string }
	add := func(method, target, body string) {
		requests = append(requests, struct{ method, target, body string }{method, target, body})
	}
	for _, name := range []string{"library/hello", "hello", "owner/app", "hub/x", "hub/hub/x", "a/b/c/d", long(250), long(251), long(252)} {
		for _, query := range []string{"", "?ns=docker.io", "?ns=mirror.gcr.io", "?ns=ghcr.io", "?ns=quay.io", "?ns=docker.io&x=1"} {
			// dockerd, podman, skopeo, ggcr, containerd with its ns
			add("HEAD", "/v2/"+name+"/manifests/latest"+query, "")
			add("GET", "/v2/"+name+"/manifests/"+Digest+query, "")
			add("GET", "/v2/"+name+"/blobs/"+Digest+query, "")
		}
		// pushes
		add("PUT", "/v2/"+name+"/manifests/latest", `{"schemaVersion":2}`)
		add("POST", "/v2/"+name+"/blobs/uploads/?mount="+Digest+"&from=library%2Fbase", "")
		add("PATCH", "/v2/"+name+"/blobs/uploads/u-1?_state=x", "layer")
		add("GET", "/v2/"+name+"/tags/list?n=1", "")
		// token requests, GET and the OAuth2 POST, lane-shaped and not
		for _, query := range []string{"", "ns=docker.io&", "ns=ghcr.io&", "account=alice&"} {
			lane := "{token}?" + query + "scope=repository%3A" + scope(name) + "%3Apull&service=harbor-registry"
			add("GET", lane, "")
			add("HEAD", lane, "")
			add("POST", lane, form)
			add("DELETE", lane, "")
		}
	}
	add("GET", "/v2/", "")
	add("POST", "{token}", form)
	return requests
}
