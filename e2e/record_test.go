package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

var updateTestdata = flag.Bool("update", false, "re-record the real-Harbor exchanges in <repo>/testdata/harbor-v2.15.2")

// recordedHost is the Host every recorded request carries: Harbor builds realms and
// Locations from it, so the recordings do not depend on the test's ports.
const recordedHost = "harbor.example.test"

// TestRealHarborExchanges sends one request of each kind the plugin rewrites to a real Harbor
// v2.15.2 (its nginx, as Traefik would: Host of the client, X-Forwarded-Proto https) and holds
// the answers to the recordings in <repo>/testdata/harbor-v2.15.2/<kind>.http. With -update it
// writes them. Each file is the request then the response in HTTP/1.1 wire format (bodies
// with Content-Length, no Date): http.ReadRequest then http.ReadResponse read it back.
// Without -update the test fails when Harbor's status, or which of the headers the plugin
// rewrites it sends, differs from the recording.
func TestRealHarborExchanges(t *testing.T) {
	h := realharbor.Shared(t)
	dir := filepath.Join(harness.RepoRoot(t), "testdata", "harbor-v2.15.2")
	ctx := context.Background()

	// Content: an upstream image behind hub, images in team and a referrer of one.
	single := testImage(t, images.Single)
	if err := h.DockerHub.Store(ctx, "library/recorded", "latest", single); err != nil {
		t.Fatal(err)
	}
	alice := &authn.Basic{Username: realharbor.Alice, Password: realharbor.AlicePassword}
	// Two tags and two repositories: pages of one (n=1) then have a next page, and a Link.
	for _, ref := range []string{"team/recorded:v1", "team/recorded:v2", "team/recorded-too:v1"} {
		if err := images.Push(ctx, h.Host+"/"+ref, single, alice); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	subject, err := partial.Descriptor(single)
	if err != nil {
		t.Fatal(err)
	}
	// An OCI manifest (Docker's has no subject) whose config type names an artifact type.
	artifact := mutate.MediaType(mutate.ConfigMediaType(single, "application/vnd.example.sbom"), types.OCIManifestSchema1)
	referrer := mutate.Subject(artifact, *subject).(v1.Image)
	referrerDigest, err := referrer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := images.Push(ctx, h.Host+"/team/recorded@"+referrerDigest.String(), referrer, alice); err != nil {
		t.Fatalf("push the referrer: %v", err)
	}
	configDigest, err := single.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	anonToken := harborToken(t, h, "", "", "repository:hub/library/recorded:pull")
	aliceToken := harborToken(t, h, realharbor.Alice, realharbor.AlicePassword, "repository:team/recorded:pull,push")
	const manifestTypes = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
	exchanges := []struct {
		kind, method, target, auth, accept, body, contentType string
	}{
		{"challenge-base", "GET", "/v2/", "", "", "", ""},
		{"challenge-repository", "GET", "/v2/hub/library/recorded/manifests/latest", "", manifestTypes, "", ""},
		{"token-get", "GET", "/service/token?scope=repository%3Ahub%2Flibrary%2Frecorded%3Apull&service=harbor-registry", "", "", "", ""},
		{"token-post", "POST", "/service/token", "", "", url.Values{
			"grant_type": {"password"}, "service": {"harbor-registry"}, "client_id": {"harbormirror-test"},
			"username": {realharbor.Alice}, "password": {realharbor.AlicePassword}, "scope": {"repository:team/recorded:pull"},
		}.Encode(), "application/x-www-form-urlencoded"},
		{"manifest", "GET", "/v2/hub/library/recorded/manifests/latest", "Bearer " + anonToken, manifestTypes, "", ""},
		{"blob", "GET", "/v2/hub/library/recorded/blobs/" + configDigest.String(), "Bearer " + anonToken, "", "", ""},
		{"one-component-name", "GET", "/v2/hub/recorded/manifests/latest", "Bearer " + anonToken, manifestTypes, "", ""},
		{"manifest-unknown", "GET", "/v2/team/recorded/manifests/missing", "Bearer " + aliceToken, manifestTypes, "", ""},
		{"upload-start", "POST", "/v2/team/recorded/blobs/uploads/", "Bearer " + aliceToken, "", "", ""},
		{"tags-list-page", "GET", "/v2/team/recorded/tags/list?n=1", "Bearer " + aliceToken, "", "", ""},
		{"catalog-page", "GET", "/v2/_catalog?n=1", basicAuth(realharbor.AdminUser, realharbor.AdminPassword), "", "", ""},
		{"catalog-bearer", "GET", "/v2/_catalog?n=1", "Bearer " + aliceToken, "", "", ""},
		{"referrers", "GET", "/v2/team/recorded/referrers/" + subject.Digest.String(), "Bearer " + aliceToken, "application/vnd.oci.image.index.v1+json", "", ""},
	}
	if *updateTestdata {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range exchanges {
		req, err := http.NewRequest(x.method, h.URL+x.target, strings.NewReader(x.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = recordedHost
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("User-Agent", "harbormirror-e2e")
		for k, v := range map[string]string{"Authorization": x.auth, "Accept": x.accept, "Content-Type": x.contentType} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		if x.body == "" {
			req.Body, req.ContentLength = nil, 0
		} else {
			// For the dump: the client writes Content-Length from req.ContentLength, not the header.
			req.Header.Set("Content-Length", fmt.Sprint(len(x.body)))
		}
		wire, resp := recordExchange(t, req)
		path := filepath.Join(dir, x.kind+".http")
		if *updateTestdata {
			if _, _, err := readRecordedExchange(wire); err != nil {
				t.Fatalf("%s: the recording does not read back: %v", x.kind, err)
			}
			if err := os.WriteFile(path, wire, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s %s -> %d", path, x.method, x.target, resp.StatusCode)
			continue
		}
		recorded, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (record with go test -run TestRealHarborExchanges -update)", x.kind, err)
			continue
		}
		_, old, err := readRecordedExchange(recorded)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if old.StatusCode != resp.StatusCode || rewrittenHeaders(old.Header) != rewrittenHeaders(resp.Header) {
			t.Errorf("%s: Harbor now answers %d with %s; recorded %d with %s (re-record with -update if Harbor changed)",
				x.kind, resp.StatusCode, rewrittenHeaders(resp.Header), old.StatusCode, rewrittenHeaders(old.Header))
		}
	}
}

// recordExchange sends req and returns the request and its response in wire format, the
// response with its whole body behind a Content-Length and without Date.
func recordExchange(t *testing.T, req *http.Request) ([]byte, *http.Response) {
	t.Helper()
	reqWire, err := httputil.DumpRequest(req, true)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Del("Date")
	resp.TransferEncoding = nil
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	respWire, err := httputil.DumpResponse(resp, true)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return append(reqWire, respWire...), resp
}

// readRecordedExchange parses a recording written by TestRealHarborExchanges.
func readRecordedExchange(wire []byte) (*http.Request, *http.Response, error) {
	br := bufio.NewReader(bytes.NewReader(wire))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, fmt.Errorf("request: %w", err)
	}
	if _, err := io.ReadAll(req.Body); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("response: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("response body: %w", err)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		return nil, nil, fmt.Errorf("%d bytes after the response", len(rest))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return req, resp, nil
}

// rewrittenHeaders names which of the response headers the plugin rewrites are present.
func rewrittenHeaders(h http.Header) string {
	var names []string
	for _, k := range []string{"Www-Authenticate", "Location", "Link", "Content-Type", "Docker-Content-Digest"} {
		if h.Get(k) != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return "[" + strings.Join(names, " ") + "]"
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// harborToken asks Harbor's token service (through nginx, Host recordedHost) for a token of
// scope, anonymous when user is empty.
func harborToken(t *testing.T, h *realharbor.Harbor, user, password, scope string) string {
	t.Helper()
	q := url.Values{"service": {"harbor-registry"}, "scope": {scope}}
	req, err := http.NewRequest(http.MethodGet, h.URL+"/service/token?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = recordedHost
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		t.Fatalf("token for %s as %q: %v (status %d)", scope, user, err, resp.StatusCode)
	}
	return tok.Token
}
