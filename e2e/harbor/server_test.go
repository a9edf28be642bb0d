package harbor_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

func TestAnonymousPullFromPublicProject(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	if _, err := pullAll(t, reference(t, srv, "library/hello:latest"), authn.Anonymous); err != nil {
		t.Fatal(err)
	}
	requests := srv.Requests()
	assertAllInProject(t, requests, "library")
	var tokenRequests int
	for _, r := range requests {
		if r.Path == "/service/token" {
			tokenRequests++
			want := []harbor.Scope{{Type: "repository", Name: "library/hello", Actions: []string{"pull"}, Granted: []string{"pull"}}}
			if !reflect.DeepEqual(r.Scopes, want) {
				t.Errorf("token scopes %+v, want %+v", r.Scopes, want)
			}
		}
	}
	if tokenRequests == 0 {
		t.Error("no token request logged")
	}
}

func TestChallenges(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	realm := `Bearer realm="http://` + srv.Host + `/service/token",service="harbor-registry"`
	for _, tc := range []struct {
		method, path, authorization string
		want                        string
	}{
		{"GET", "/v2/", "", realm},
		{"GET", "/v2/library/hello/manifests/latest", "", realm + `,scope="repository:library/hello:pull"`},
		// Even for a public project a token is needed.
		{"HEAD", "/v2/library/hello/manifests/latest", "", realm + `,scope="repository:library/hello:pull"`},
		{"POST", "/v2/team/app/blobs/uploads/", "", realm + `,scope="repository:team/app:pull,push"`},
		{"POST", "/v2/team/app/blobs/uploads/?mount=sha256:" + strings.Repeat("a", 64) + "&from=library/hello", "",
			realm + `,scope="repository:team/app:pull,push repository:library/hello:pull"`},
		{"DELETE", "/v2/team/app/manifests/sha256:" + strings.Repeat("a", 64), "", realm + `,scope="repository:team/app:delete"`},
		{"GET", "/v2/hub/library/hello/manifests/latest", "", realm + `,scope="repository:hub/library/hello:pull"`},
		// Harbor answers Basic once a credential was sent, and always for the catalog.
		{"GET", "/v2/library/hello/manifests/latest", "Bearer not-a-token", `Basic realm="harbor"`},
		{"GET", "/v2/", "Basic " + basic("alice", "wrong"), `Basic realm="harbor"`},
		{"GET", "/v2/_catalog", "", `Basic realm="harbor"`},
	} {
		resp, body := send(t, tc.method, srv.URL+tc.path, tc.authorization, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s: status %d, want 401 (%s)", tc.method, tc.path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Www-Authenticate"); got != tc.want {
			t.Errorf("%s %s: Www-Authenticate\n got %s\nwant %s", tc.method, tc.path, got, tc.want)
		}
	}

	// /v2/ wants a user: an anonymous token is not enough, a named one is.
	anonymous := fetchToken(t, srv, nil, "repository:library/hello:pull")
	if resp, _ := send(t, "GET", srv.URL+"/v2/", "Bearer "+anonymous.Token, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v2/ with an anonymous token: %d, want 401", resp.StatusCode)
	}
	named := fetchToken(t, srv, alice)
	if resp, body := send(t, "GET", srv.URL+"/v2/", "Bearer "+named.Token, nil); resp.StatusCode != http.StatusOK || body != "{}" {
		t.Errorf("/v2/ with alice's token: %d %s", resp.StatusCode, body)
	}
	// A token serves its whole project (as Harbor reads it), and no other.
	if resp, _ := send(t, "GET", srv.URL+"/v2/library/other/tags/list", "Bearer "+anonymous.Token, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("token for library/hello on library/other: %d, want 404 (authorized, no such repository)", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+"/v2/hub/library/hello/tags/list", "Bearer "+anonymous.Token, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token for library/hello on hub/...: %d, want 401", resp.StatusCode)
	}

	// The realm takes the Host received and the external scheme.
	srv, _ = startHarbor(t, func(o *harbor.Options) { o.ExternalScheme = "https" })
	req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
	req.Host = "mirror.example:8443"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer realm="https://mirror.example:8443/service/token",service="harbor-registry"`
	if got := resp.Header.Get("Www-Authenticate"); got != want {
		t.Errorf("Www-Authenticate\n got %s\nwant %s", got, want)
	}
}

func TestPrivateProjectNeedsCredentials(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	ctx := context.Background()
	for _, project := range []string{"team", "secret"} {
		if err := images.Seed(ctx, srv, project, images.Single); err != nil {
			t.Fatal(err)
		}
	}
	ref := reference(t, srv, "team/single:latest")
	if _, err := pullAll(t, ref, authn.Anonymous); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("anonymous pull from a private project: %v, want 401", err)
	}
	if _, err := pullAll(t, ref, &authn.Basic{Username: "alice", Password: "wrong"}); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("pull with a wrong password: %v, want 401", err)
	}
	if _, err := pullAll(t, ref, alice); err != nil {
		t.Errorf("member pull: %v", err)
	}
	if _, err := pullAll(t, reference(t, srv, "secret/single:latest"), alice); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("pull from a project alice is not a member of: %v, want 401", err)
	}
	if _, err := pullAll(t, reference(t, srv, "secret/single:latest"), admin); err != nil {
		t.Errorf("admin pull: %v", err)
	}
	// Harbor also takes Basic credentials on the registry API itself.
	resp, body := send(t, "GET", srv.URL+"/v2/team/single/manifests/latest", "Basic "+basic("alice", alicePassword),
		http.Header{"Accept": {"application/vnd.docker.distribution.manifest.v2+json"}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("Basic GET manifest: %d %s", resp.StatusCode, body)
	}
}

func TestTokenService(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	tok := fetchToken(t, srv, alice,
		"repository:library/hello:pull repository:team/app:pull,push,delete",
		"repository:127.0.0.1:5000/team/app:pull",
		"repository:hello:pull",
		"repository:nosuch/app:pull",
		"repository:secret/app:pull,push",
		"registry:catalog:*",
	)
	if tok.Token == "" || tok.AccessToken != tok.Token || tok.ExpiresIn != 1800 || tok.IssuedAt == "" {
		t.Errorf("token response %+v", tok)
	}
	want := []tokenAccess{
		{"repository", "library/hello", []string{"pull"}},
		{"repository", "team/app", []string{"pull", "push"}},
		// host:port stays in the name; its first segment is no project here.
		{"repository", "127.0.0.1:5000/team/app", []string{}},
		{"repository", "hello", []string{}},
		{"repository", "nosuch/app", []string{}},
		{"repository", "secret/app", []string{}},
		{"registry", "catalog", []string{}},
	}
	if got := claimedAccess(t, tok.Token); !reflect.DeepEqual(got, want) {
		t.Errorf("access\n got %+v\nwant %+v", got, want)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if len(last.Scopes) != len(want) || last.Scopes[2].Name != "127.0.0.1:5000/team/app" || last.AuthScheme != "Basic" {
		t.Errorf("logged token request %+v", last)
	}

	adminToken := fetchToken(t, srv, admin, "registry:catalog:*", "repository:secret/app:pull,push,delete")
	wantAdmin := []tokenAccess{{"registry", "catalog", []string{"*"}}, {"repository", "secret/app", []string{"pull", "push", "delete"}}}
	if got := claimedAccess(t, adminToken.Token); !reflect.DeepEqual(got, wantAdmin) {
		t.Errorf("admin access\n got %+v\nwant %+v", got, wantAdmin)
	}

	for _, tc := range []struct {
		method, query, authorization string
		status                       int
	}{
		{"POST", "service=harbor-registry&scope=repository:library/hello:pull", "", http.StatusMethodNotAllowed},
		{"GET", "service=registry.docker.io&scope=repository:library/hello:pull", "", http.StatusBadRequest},
		{"GET", "scope=repository:library/hello:pull", "", http.StatusBadRequest},
		{"GET", "service=harbor-registry", "Basic " + basic("alice", "wrong"), http.StatusUnauthorized},
		{"GET", "service=harbor-registry&account=alice", "Basic " + basic("alice", alicePassword), http.StatusOK},
	} {
		resp, body := send(t, tc.method, srv.URL+"/service/token?"+tc.query, tc.authorization, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s ?%s: %d, want %d (%s)", tc.method, tc.query, resp.StatusCode, tc.status, body)
		}
	}
}

func TestProxyCacheFetchesFromHub(t *testing.T) {
	srv, hub := startHarbor(t, nil)
	hubDigest, err := pullAll(t, reference(t, srv, "library/hello:latest"), authn.Anonymous)
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetLog()
	hub.ResetLog()

	got, err := pullAll(t, reference(t, srv, "hub/library/hello:latest"), authn.Anonymous)
	if err != nil {
		t.Fatal(err)
	}
	if got != hubDigest {
		t.Errorf("digest %s, want the hub's %s", got, hubDigest)
	}
	requests := srv.Requests()
	assertAllInProject(t, requests, "hub")
	var fetched []string
	for _, r := range requests {
		if r.FetchedUpstream != "" {
			fetched = append(fetched, r.FetchedUpstream)
		}
	}
	if !reflect.DeepEqual(fetched, []string{"library/hello:latest"}) {
		t.Errorf("fetched upstream %q, want library/hello:latest once", fetched)
	}
	hubRequests := repositoryRequests(hub.Requests())
	if len(hubRequests) == 0 {
		t.Fatal("the hub saw no request")
	}
	for _, r := range hubRequests {
		if r.Repository != "library/hello" {
			t.Errorf("hub request for %q: %v", r.Repository, r)
		}
	}

	// Cached now: the hub is not asked again.
	hub.ResetLog()
	if _, err := pullAll(t, reference(t, srv, "hub/library/hello:latest"), authn.Anonymous); err != nil {
		t.Fatal(err)
	}
	if n := len(repositoryRequests(hub.Requests())); n != 0 {
		t.Errorf("second pull reached the hub %d times", n)
	}

	// A blob asked for before any manifest is fetched too.
	hello, err := images.Get(images.Single)
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Store(context.Background(), "library/single", "latest", hello); err != nil {
		t.Fatal(err)
	}
	layers, err := hello.(v1.Image).Layers()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	tok := fetchToken(t, srv, nil, "repository:hub/library/single:pull")
	srv.ResetLog()
	if resp, body := send(t, "GET", srv.URL+"/v2/hub/library/single/blobs/"+blob.String(), "Bearer "+tok.Token, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("uncached blob: %d %s", resp.StatusCode, body)
	}
	if got := srv.Requests()[0].FetchedUpstream; got != "library/single@"+blob.String() {
		t.Errorf("blob fetched upstream %q", got)
	}

	// What the hub lacks is a 404, and pushing to a proxy-cache project is refused.
	if _, err := pullAll(t, reference(t, srv, "hub/library/nosuch:latest"), authn.Anonymous); statusOf(err) != http.StatusNotFound {
		t.Errorf("missing image: %v, want 404", err)
	}
	if err := images.Push(context.Background(), srv.Host+"/hub/library/single:pushed", hello, admin); statusOf(err) != http.StatusMethodNotAllowed {
		t.Errorf("push to a proxy-cache project: %v, want 405", err)
	}
}

func TestProxyCacheConcurrentPullsFetchOnce(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			_, err := pullAll(t, reference(t, srv, "hub/library/hello:latest"), authn.Anonymous)
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	var fetched int
	for _, r := range srv.Requests() {
		if r.FetchedUpstream != "" {
			fetched++
		}
	}
	if fetched != 1 {
		t.Errorf("fetched upstream %d times, want once", fetched)
	}
}

func TestOneComponentNameRedirect(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	tok := fetchToken(t, srv, nil, "repository:hub/hello:pull")
	for _, path := range []string{
		"/manifests/latest?ns=docker.io",
		"/blobs/sha256:" + strings.Repeat("b", 64),
	} {
		resp, body := send(t, "GET", srv.URL+"/v2/hub/hello"+path, "Bearer "+tok.Token, nil)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/v2/hub/library/hello"+path {
			t.Errorf("%s: %d Location %q (%s)", path, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	// A client following the redirect gets the image.
	if _, err := pullAll(t, reference(t, srv, "hub/hello:latest"), authn.Anonymous); err != nil {
		t.Errorf("pull through the redirect: %v", err)
	}
}

func TestTagsListLink(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	ctx := context.Background()
	single, err := images.Get(images.Single)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		if err := srv.Store(ctx, "library/tagged", tag, single); err != nil {
			t.Fatal(err)
		}
	}
	tok := fetchToken(t, srv, nil, "repository:library/tagged:pull")
	resp, body := send(t, "GET", srv.URL+"/v2/library/tagged/tags/list?n=2", "Bearer "+tok.Token, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags/list: %d %s", resp.StatusCode, body)
	}
	if want := `</v2/library/tagged/tags/list?last=v2&n=2>; rel="next"`; resp.Header.Get("Link") != want {
		t.Errorf("Link %q, want %q", resp.Header.Get("Link"), want)
	}
	if want := `{"name":"library/tagged","tags":["v1","v2"]}`; strings.TrimSpace(body) != want {
		t.Errorf("body %s, want %s", body, want)
	}
	tags, err := remote.List(reference(t, srv, "library/tagged:v1").Context())
	if err != nil || !reflect.DeepEqual(tags, []string{"v1", "v2", "v3"}) {
		t.Errorf("remote.List: %v %v", tags, err)
	}
}

func TestCatalogIsAdminOnly(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	ctx := context.Background()
	if err := images.Seed(ctx, srv, "team", images.Single); err != nil {
		t.Fatal(err)
	}
	resp, body := send(t, "GET", srv.URL+"/v2/_catalog?n=1", "Basic "+basic("admin", adminPassword), nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"repositories":["library/hello"]}` {
		t.Errorf("catalog: %d %s", resp.StatusCode, body)
	}
	if want := `</v2/_catalog?last=library%2Fhello&n=1>; rel="next"`; resp.Header.Get("Link") != want {
		t.Errorf("catalog Link %q, want %q", resp.Header.Get("Link"), want)
	}
	resp, _ = send(t, "GET", srv.URL+"/v2/_catalog", "Basic "+basic("alice", alicePassword), nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("catalog as alice: %d, want 401", resp.StatusCode)
	}
}

func TestUploadLocations(t *testing.T) {
	upload := func(srv *harbor.Server) string {
		tok := fetchToken(t, srv, alice, "repository:team/app:pull,push")
		req, _ := http.NewRequest("POST", srv.URL+"/v2/team/app/blobs/uploads/", nil)
		req.Host = "mirror.example:8443"
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "elsewhere.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload POST: %d", resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}

	srv, _ := startHarbor(t, nil)
	if location := upload(srv); !strings.HasPrefix(location, "/v2/team/app/blobs/uploads/") {
		t.Errorf("default Location %q, want relative", location)
	}
	srv, _ = startHarbor(t, func(o *harbor.Options) { o.AbsoluteHTTPUploadLocations = true })
	if location := upload(srv); !strings.HasPrefix(location, "http://mirror.example:8443/v2/team/app/blobs/uploads/") {
		t.Errorf("absolute Location %q, want http://<Host received>/v2/...", location)
	}
}

func TestPush(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	ctx := context.Background()
	large, err := images.Get(images.Large)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.Push(ctx, srv.Host+"/team/large:v1", large, alice); err != nil {
		t.Fatal(err)
	}
	want, err := large.(v1.Image).Digest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := pullAll(t, reference(t, srv, "team/large:v1"), alice)
	if err != nil || got != want {
		t.Errorf("pulled %s (%v), want %s", got, err, want)
	}
	assertAllInProject(t, srv.Requests(), "team")

	hello, err := images.Get(images.Hello)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.Push(ctx, srv.Host+"/team/hello:v1", hello, admin); err != nil {
		t.Errorf("admin push of an index: %v", err)
	}
	if err := images.Push(ctx, srv.Host+"/library/pushed:v1", hello, authn.Anonymous); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("anonymous push: %v, want 401", err)
	}
}
