package rewrite

import "testing"

// mirror is the response context of a request for nginx on https://mirror.example.com, mapped
// into the Docker Hub proxy-cache project hub.
func mirror() *Exchange {
	return &Exchange{
		Origin:      "https://mirror.example.com",
		RequestHost: "mirror.example.com",
		RealmPath:   "/service/token",
		Project:     newProject("hub", true, ""),
		Route:       Route{Kind: KindManifest, Name: "nginx", Endpoint: "/manifests/latest"},
		MappedName:  "hub/library/nginx",
	}
}

// underMirrorPath is mirror() served under /hub on a shared host.
func underMirrorPath() *Exchange {
	x := mirror()
	x.MirrorPath, x.RealmPath = "/hub", "/hub/service/token"
	return x
}

func TestChallenge(t *testing.T) {
	withNS := mirror()
	withNS.Project = newProject("hub", true, "docker.io")
	underPath := underMirrorPath()
	originOnly := &Exchange{Origin: "https://harbor.example.com", RequestHost: "harbor.example.com", RealmPath: "/service/token"}

	tests := []struct {
		name string
		x    *Exchange
		in   string
		want string
	}{
		{"ping, http realm behind TLS offloading", mirror(),
			`Bearer realm="http://mirror.example.com/service/token",service="harbor-registry"`,
			`Bearer realm="https://mirror.example.com/service/token",service="harbor-registry"`},
		{"repository challenge loses the project", mirror(),
			`Bearer realm="https://harbor.internal:8443/service/token",service="harbor-registry",scope="repository:hub/library/nginx:pull"`,
			`Bearer realm="https://mirror.example.com/service/token",service="harbor-registry",scope="repository:nginx:pull"`},
		{"insufficient scope keeps error and several scopes", mirror(),
			`Bearer realm="https://h/service/token",service="harbor-registry",scope="repository:hub/library/nginx:pull,push repository:hub/library/busybox:pull",error="insufficient_scope"`,
			`Bearer realm="https://mirror.example.com/service/token",service="harbor-registry",scope="repository:nginx:pull,push repository:library/busybox:pull",error="insufficient_scope"`},
		{"ns travels in the realm", withNS,
			`Bearer realm="https://h/service/token",service="harbor-registry",scope="repository:hub/library/nginx:pull"`,
			`Bearer realm="https://mirror.example.com/service/token?ns=docker.io",service="harbor-registry",scope="repository:nginx:pull"`},
		{"mirror path prefixes the realm", underPath,
			`Bearer realm="https://h/service/token",service="harbor-registry"`,
			`Bearer realm="https://mirror.example.com/hub/service/token",service="harbor-registry"`},
		{"basic is left alone", mirror(), `Basic realm="harbor"`, `Basic realm="harbor"`},
		{"two challenges in one value", mirror(),
			`Basic realm="harbor", Bearer realm="http://h/service/token", service="harbor-registry"`,
			`Basic realm="harbor", Bearer realm="https://mirror.example.com/service/token", service="harbor-registry"`},
		{"case-insensitive names, spaces around =", mirror(),
			`bearer realm = "http://h/service/token" , Scope="repository:hub/x:pull"`,
			`bearer realm = "https://mirror.example.com/service/token" , Scope="repository:x:pull"`},
		{"token realm value", mirror(),
			`Bearer realm=harbor,service=harbor-registry`,
			`Bearer realm="https://mirror.example.com/service/token",service=harbor-registry`},
		{"malformed: unquoted URL realm", mirror(),
			`Bearer realm=http://h/t,service=harbor-registry`, `Bearer realm=http://h/t,service=harbor-registry`},
		{"escaped quotes survive", mirror(),
			`Bearer realm="http://h/t",service="a\"b"`,
			`Bearer realm="https://mirror.example.com/service/token",service="a\"b"`},
		{"scope outside the project stays", mirror(),
			`Bearer realm="http://h/t",scope="repository:other/x:pull"`,
			`Bearer realm="https://mirror.example.com/service/token",scope="repository:other/x:pull"`},
		{"origin-fix-only keeps the path and scope", originOnly,
			`Bearer realm="http://harbor.example.com/service/token",service="harbor-registry",scope="repository:team/app:pull"`,
			`Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:team/app:pull"`},
		{"malformed: unterminated quote", mirror(), `Bearer realm="http://h/t`, `Bearer realm="http://h/t`},
		{"malformed: garbage", mirror(), `=,=,"`, `=,=,"`},
		{"empty", mirror(), ``, ``},
	}
	for _, tt := range tests {
		if got := Challenge(tt.x, tt.in); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestURL(t *testing.T) {
	underPath := underMirrorPath()
	originOnly := &Exchange{Origin: "https://harbor.example.com", RequestHost: "harbor.example.com"}
	tests := []struct {
		name string
		x    *Exchange
		in   string
		want string
	}{
		{"relative upload location", mirror(),
			"/v2/hub/library/nginx/blobs/uploads/u-1?_state=abc%3D",
			"/v2/library/nginx/blobs/uploads/u-1?_state=abc%3D"},
		{"absolute http upload location behind TLS offloading", mirror(),
			"http://mirror.example.com/v2/hub/library/nginx/blobs/uploads/u-1?_state=abc",
			"https://mirror.example.com/v2/library/nginx/blobs/uploads/u-1?_state=abc"},
		{"harbor's 301 for a one-component name", mirror(),
			"/v2/hub/library/nginx/manifests/latest", "/v2/library/nginx/manifests/latest"},
		{"mirror path comes back", underPath,
			"/v2/hub/library/nginx/blobs/uploads/u-1", "/hub/v2/library/nginx/blobs/uploads/u-1"},
		{"host case and scheme-relative", mirror(),
			"//MIRROR.example.com/v2/hub/x/blobs/uploads/u", "https://mirror.example.com/v2/x/blobs/uploads/u"},
		{"object storage redirect untouched", mirror(),
			"https://s3.example.com/bucket/docker/registry/v2/blobs/sha256/ab/data?X-Amz-Signature=1",
			"https://s3.example.com/bucket/docker/registry/v2/blobs/sha256/ab/data?X-Amz-Signature=1"},
		{"other host with a registry path untouched", mirror(),
			"https://other.example.com/v2/hub/x/blobs/uploads/u", "https://other.example.com/v2/hub/x/blobs/uploads/u"},
		{"another project's path keeps its path", mirror(),
			"http://mirror.example.com/v2/other/x", "https://mirror.example.com/v2/other/x"},
		{"not a registry path", mirror(), "/c/login", "/c/login"},
		{"relative without slash untouched", mirror(), "uploads/u", "uploads/u"},
		{"origin only: host kept, scheme fixed", originOnly,
			"http://harbor.example.com/v2/team/app/blobs/uploads/u?_state=x",
			"https://harbor.example.com/v2/team/app/blobs/uploads/u?_state=x"},
		{"origin only: relative untouched", originOnly, "/v2/team/app/blobs/uploads/u", "/v2/team/app/blobs/uploads/u"},
		{"bare origin", mirror(), "http://mirror.example.com", "https://mirror.example.com/"},
		{"origin with query", mirror(), "http://mirror.example.com?x=1", "https://mirror.example.com/?x=1"},
		{"ftp untouched", mirror(), "ftp://mirror.example.com/v2/hub/x", "ftp://mirror.example.com/v2/hub/x"},
	}
	for _, tt := range tests {
		if got, keep := URL(tt.x, tt.in); got != tt.want || !keep {
			t.Errorf("%s: URL(%q) = %q, %v; want %q", tt.name, tt.in, got, keep, tt.want)
		}
	}
}

func TestLink(t *testing.T) {
	underPath := underMirrorPath()
	tests := []struct {
		name string
		x    *Exchange
		in   string
		want string
	}{
		{"tags/list next page", mirror(),
			`</v2/hub/library/nginx/tags/list?last=1.25&n=100>; rel="next"`,
			`</v2/library/nginx/tags/list?last=1.25&n=100>; rel="next"`},
		{"under a mirror path", underPath,
			`</v2/hub/library/nginx/tags/list?last=1.25&n=100>; rel="next"`,
			`</hub/v2/library/nginx/tags/list?last=1.25&n=100>; rel="next"`},
		{"catalog page inside the project", mirror(),
			`</v2/_catalog?last=hub%2Flibrary%2Fnginx&n=2>; rel="next"`,
			`</v2/_catalog?last=library%2Fnginx&n=2>; rel="next"`},
		{"catalog page past the project is dropped", mirror(),
			`</v2/_catalog?last=zeta%2Fapp&n=2>; rel="next"`, ``},
		{"several links, commas inside quotes", mirror(),
			`</v2/hub/a/referrers/sha256:ab?n=1>; rel="next"; title="a, b", <https://mirror.example.com/v2/hub/b/tags/list>; rel="x"`,
			`</v2/a/referrers/sha256:ab?n=1>; rel="next"; title="a, b", <https://mirror.example.com/v2/b/tags/list>; rel="x"`},
		{"malformed passes", mirror(), `<broken`, `<broken`},
		{"no link", mirror(), `rel="next"`, `rel="next"`},
	}
	for _, tt := range tests {
		if got := Link(tt.x, tt.in); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestBodies(t *testing.T) {
	got, ok := TagsBody([]byte(`{"name":"hub/library/nginx","tags":["1.25","latest"]}`), "nginx")
	if want := `{"name":"nginx","tags":["1.25","latest"]}`; !ok || string(got) != want {
		t.Errorf("TagsBody = %s, %v; want %s", got, ok, want)
	}
	if got, ok := TagsBody([]byte(`not json`), "nginx"); ok || string(got) != "not json" {
		t.Errorf("TagsBody(garbage) = %s, %v", got, ok)
	}
}

func TestOriginAndConfig(t *testing.T) {
	for host, ok := range map[string]bool{
		"mirror.example.com": true, "mirror.example.com:5000": true, "127.0.0.1:8080": true, "[::1]:443": true,
		"": false, "a b": false, `a"b`: false, "a/b": false, "a,b": false, "evil.com\r\nX: y": false, "a:b:c": false,
	} {
		if _, err := Origin("https", host); (err == nil) != ok {
			t.Errorf("Origin(%q): err %v, want ok=%v", host, err, ok)
		}
	}
	if o, err := ParsePublicURL("https://Mirror.example.com/"); err != nil || o != "https://Mirror.example.com" {
		t.Errorf("ParsePublicURL = %q, %v", o, err)
	}
	for _, bad := range []string{"mirror.example.com", "ftp://x", "https://x/hub", "https://x?a=1", "https://u:p@x", "https://"} {
		if _, err := ParsePublicURL(bad); err == nil {
			t.Errorf("ParsePublicURL(%q) accepted", bad)
		}
	}
	if p, err := ParseMirrorPath("/hub/"); err != nil || p != "/hub" {
		t.Errorf("ParseMirrorPath = %q, %v", p, err)
	}
	for _, bad := range []string{"hub", "/v2", "/v2/x", "/a b", "/a/../b/%2F"} {
		if _, err := ParseMirrorPath(bad); err == nil {
			t.Errorf("ParseMirrorPath(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"service/token", "/v2/token", "/a?b"} {
		if _, err := ParseTokenPath(bad); err == nil {
			t.Errorf("ParseTokenPath(%q) accepted", bad)
		}
	}
}

func TestErrorBody(t *testing.T) {
	e := nameInvalid("bad \"name\"")
	if got, want := string(e.Body()), `{"errors":[{"code":"NAME_INVALID","detail":"bad \"name\"","message":"invalid repository name"}]}`; got != want {
		t.Errorf("Body = %s, want %s", got, want)
	}
}

func TestErrorBodyNames(t *testing.T) {
	x := mirror() // nginx mapped to hub/library/nginx: every name loses exactly the project
	tests := []struct{ in, want string }{
		{`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"hub/library/nginx:latest"}]}`,
			`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"library/nginx:latest"}]}`},
		{`{"errors":[{"code":"UNAUTHORIZED","detail":[{"Type":"repository","Name":"hub/library/nginx","Action":"pull"},{"Type":"repository","Name":"hub/team/x","Action":"pull"}]}]}`,
			`{"errors":[{"code":"UNAUTHORIZED","detail":[{"Type":"repository","Name":"library/nginx","Action":"pull"},{"Type":"repository","Name":"team/x","Action":"pull"}]}]}`},
		{`{"errors":[{"code":"NAME_UNKNOWN","message":"repository hub/team/x not known"}]}`,
			`{"errors":[{"code":"NAME_UNKNOWN","message":"repository team/x not known"}]}`},
		{`{"errors":[{"code":"DENIED","message":"other/hub/x and hubx/y stay"}]}`,
			`{"errors":[{"code":"DENIED","message":"other/hub/x and hubx/y stay"}]}`},
	}
	for _, tt := range tests {
		if got := string(ErrorBody([]byte(tt.in), x)); got != tt.want {
			t.Errorf("ErrorBody:\n got %s\nwant %s", got, tt.want)
		}
	}
	// A name that begins with the project's own name keeps it: hub/x on project hub is hub/hub/x.
	own := mapPath(t, NewProjects("hub", nil, true), "/v2/hub/x/manifests/latest")
	for in, want := range map[string]string{
		`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"hub/hub/x:latest"}]}`:                         `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"hub/x:latest"}]}`,
		`{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/hub/x, action: pull"}]}`:               `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/x, action: pull"}]}`,
		`{"errors":[{"code":"UNAUTHORIZED","detail":[{"Type":"repository","Name":"hub/hub/x","Action":"pull"},{"Name":"hub/x"}]}]}`: `{"errors":[{"code":"UNAUTHORIZED","detail":[{"Type":"repository","Name":"hub/x","Action":"pull"},{"Name":"x"}]}]}`,
	} {
		if got := string(ErrorBody([]byte(in), own)); got != want {
			t.Errorf("ErrorBody of hub/x:\n got %s\nwant %s", got, want)
		}
	}
	if got := string(ErrorBody([]byte(`"hub/x"`), &Exchange{})); got != `"hub/x"` {
		t.Errorf("origin-fix-only mode changed an error body: %s", got)
	}
}
