package rewrite

import (
	"strings"
	"testing"
)

// step is one exchange of a real client with the mirror, as seen in the registry logs of
// ../shared/notes/clients.md: the request the client sends and what Harbor must receive, or a
// header Harbor answers with and what the client must receive.
type step struct {
	request, forwarded   string // "/path?query" for registry requests, "?query" for token requests
	challenge, toClient  string // a Www-Authenticate value from Harbor and after rewriting
	location, toLocation string
}

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	harbor  = `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry"`
)

func TestClientSequences(t *testing.T) {
	projects := NewProjects("hub", map[string]string{"ghcr.io": "ghcr"}, true)
	clients := map[string][]step{
		"dockerd registry-mirrors pull hello": {
			{request: "/v2/", forwarded: "/v2/"},
			{challenge: harbor, toClient: `Bearer realm="https://mirror.example.com/service/token",service="harbor-registry"`},
			{request: "?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
				forwarded: "?scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
			{request: "/v2/library/hello/manifests/latest", forwarded: "/v2/hub/library/hello/manifests/latest"},
			{request: "/v2/library/hello/manifests/" + digestA, forwarded: "/v2/hub/library/hello/manifests/" + digestA},
			{request: "/v2/library/hello/blobs/" + digestB, forwarded: "/v2/hub/library/hello/blobs/" + digestB},
		},
		"containerd hosts.toml mirror, docker.io": {
			// no /v2/ ping; ns on every registry request
			{request: "/v2/library/hello/manifests/latest?ns=docker.io", forwarded: "/v2/hub/library/hello/manifests/latest"},
			{challenge: harbor + `,scope="repository:hub/library/hello:pull"`,
				toClient: `Bearer realm="https://mirror.example.com/service/token?ns=docker.io",service="harbor-registry",scope="repository:library/hello:pull"`},
			// containerd merges the challenge scope with its own: both are library/hello, so one
			// scope, never hub/hub/...
			{request: "?ns=docker.io&scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
				forwarded: "?scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
			{request: "/v2/library/hello/manifests/" + digestA + "?ns=docker.io", forwarded: "/v2/hub/library/hello/manifests/" + digestA},
			{request: "/v2/library/hello/blobs/" + digestB + "?ns=docker.io", forwarded: "/v2/hub/library/hello/blobs/" + digestB},
		},
		"containerd hosts.toml mirror, ghcr.io": {
			{request: "/v2/owner/app/manifests/v1?ns=ghcr.io", forwarded: "/v2/ghcr/owner/app/manifests/v1"},
			{challenge: harbor + `,scope="repository:ghcr/owner/app:pull"`,
				toClient: `Bearer realm="https://mirror.example.com/service/token?ns=ghcr.io",service="harbor-registry",scope="repository:owner/app:pull"`},
			{request: "?ns=ghcr.io&scope=repository%3Aowner%2Fapp%3Apull&service=harbor-registry",
				forwarded: "?scope=repository%3Aghcr%2Fowner%2Fapp%3Apull&service=harbor-registry"},
			// one-component names are not Docker Hub's library/ outside docker.io
			{request: "/v2/app/manifests/v1?ns=ghcr.io", forwarded: "/v2/ghcr/app/manifests/v1"},
		},
		"podman registry.mirror": {
			{request: "/v2/", forwarded: "/v2/"},
			{request: "/v2/library/hello/manifests/latest", forwarded: "/v2/hub/library/hello/manifests/latest"},
			{request: "/v2/library/hello/blobs/" + digestB, forwarded: "/v2/hub/library/hello/blobs/" + digestB},
		},
		"skopeo copy with credentials": {
			{request: "/v2/", forwarded: "/v2/"},
			{request: "?account=alice&scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
				forwarded: "?account=alice&scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
			{request: "/v2/library/hello/manifests/latest", forwarded: "/v2/hub/library/hello/manifests/latest"},
			{request: "/v2/library/hello/manifests/" + digestA, forwarded: "/v2/hub/library/hello/manifests/" + digestA},
		},
		"go-containerregistry pull of a one-component name": {
			{request: "/v2/", forwarded: "/v2/"},
			{request: "?scope=repository%3Ahello%3Apull&service=harbor-registry",
				forwarded: "?scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
			{request: "/v2/hello/manifests/latest", forwarded: "/v2/hub/library/hello/manifests/latest"},
			{challenge: harbor + `,scope="repository:hub/library/hello:pull"`,
				toClient: `Bearer realm="https://mirror.example.com/service/token",service="harbor-registry",scope="repository:hello:pull"`},
		},
		"go-containerregistry push with a cross-repository mount": {
			{request: "?scope=repository%3Ateam%2Fapp%3Apush%2Cpull+repository%3Ateam%2Fbase%3Apull&service=harbor-registry",
				forwarded: "?scope=repository%3Ahub%2Fteam%2Fapp%3Apush%2Cpull+repository%3Ahub%2Fteam%2Fbase%3Apull&service=harbor-registry"},
			{request: "/v2/team/app/blobs/uploads/?mount=" + digestB + "&from=team%2Fbase",
				forwarded: "/v2/hub/team/app/blobs/uploads/?mount=" + digestB + "&from=hub%2Fteam%2Fbase"},
			{request: "/v2/team/app/blobs/uploads/", forwarded: "/v2/hub/team/app/blobs/uploads/"},
			// behind TLS offloading Harbor answers with an absolute http:// upload URL
			{location: "http://mirror.example.com/v2/hub/team/app/blobs/uploads/u-1?_state=s%3D",
				toLocation: "https://mirror.example.com/v2/team/app/blobs/uploads/u-1?_state=s%3D"},
			{request: "/v2/team/app/blobs/uploads/u-1?_state=s%3D", forwarded: "/v2/hub/team/app/blobs/uploads/u-1?_state=s%3D"},
			{request: "/v2/team/app/blobs/uploads/u-1?_state=s%3D&digest=" + digestA,
				forwarded: "/v2/hub/team/app/blobs/uploads/u-1?_state=s%3D&digest=" + digestA},
			{request: "/v2/team/app/manifests/v1", forwarded: "/v2/hub/team/app/manifests/v1"},
		},
	}
	for client, steps := range clients {
		var last *Exchange
		for i, s := range steps {
			switch {
			case strings.HasPrefix(s.request, "/"):
				path, query, _ := strings.Cut(s.request, "?")
				last = exchangeFor()
				if err := MapRequest(projects, last, path, "", query); err != nil {
					t.Errorf("%s step %d: %v", client, i, err)
					continue
				}
				if got := joinQuery(last.Path, last.RawQuery); got != s.forwarded {
					t.Errorf("%s step %d: %s forwarded as %s, want %s", client, i, s.request, got, s.forwarded)
				}
			case strings.HasPrefix(s.request, "?"):
				query, _, err := MapTokenRequest(projects, s.request[1:])
				if err != nil || "?"+query != s.forwarded {
					t.Errorf("%s step %d: token %s forwarded as ?%s (%v), want %s", client, i, s.request, query, err, s.forwarded)
				}
			case s.challenge != "":
				if got := Challenge(last, s.challenge); got != s.toClient {
					t.Errorf("%s step %d:\n got %s\nwant %s", client, i, got, s.toClient)
				}
			case s.location != "":
				if got, _ := URL(last, s.location); got != s.toLocation {
					t.Errorf("%s step %d: Location %s, want %s", client, i, got, s.toLocation)
				}
			}
		}
	}
}

func TestTokenForm(t *testing.T) {
	form := "grant_type=password&service=harbor-registry&client_id=containerd-client&username=alice&password=p%26ss%3Dw&scope=repository%3Alibrary%2Fhello%3Apull+repository%3Ateam%2Fapp%3Apull%2Cpush"
	want := "grant_type=password&service=harbor-registry&client_id=containerd-client&username=alice&password=p%26ss%3Dw&scope=repository%3Ahub%2Flibrary%2Fhello%3Apull+repository%3Ahub%2Fteam%2Fapp%3Apull%2Cpush"
	got, err := MapTokenForm(form, newProject("hub", true, ""))
	if err != nil || got != want {
		t.Errorf("MapTokenForm:\n got %s (%v)\nwant %s", got, err, want)
	}
	if _, err := MapTokenForm("a=b;scope=repository:other/x:pull", newProject("hub", false, "")); err == nil {
		t.Error("a literal semicolon in the form must be refused")
	}
}

func TestMapRequestRefusals(t *testing.T) {
	projects := NewProjects("hub", nil, true)
	tests := []struct {
		path, rawPath, query string
		status               int
	}{
		{"/v2/a/b/manifests/latest", "/v2/a%2Fb/manifests/latest", "", 400},
		{"/v2/x/manifests/latest", "", "ns=gcr.io", 404},
		{"/v2/x/manifests/latest", "", "a=b;c=d", 400},
		{"/v2/x/blobs/uploads/", "", "mount=" + digestA + "&from=..%2Fother", 400},
		{"/v2/x/nothing", "", "", 404},
	}
	for _, tt := range tests {
		if err := MapRequest(projects, exchangeFor(), tt.path, tt.rawPath, tt.query); err == nil || err.Status != tt.status {
			t.Errorf("MapRequest(%q, %q, %q) = %v; want status %d", tt.path, tt.rawPath, tt.query, err, tt.status)
		}
	}
}

// exchangeFor is a fresh exchange on https://mirror.example.com, as the plugin starts one.
func exchangeFor() *Exchange {
	return &Exchange{Origin: "https://mirror.example.com", RequestHost: "mirror.example.com", RealmPath: "/service/token"}
}

// mapPath is the exchange MapRequest gives a path that must map.
func mapPath(t *testing.T, p *Projects, path string) *Exchange {
	x := exchangeFor()
	if err := MapRequest(p, x, path, "", ""); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return x
}

func joinQuery(path, query string) string {
	if query == "" {
		return path
	}
	return path + "?" + query
}

// requestTarget is the request target a client sends for a path and query.
func requestTarget(path, rawQuery string) string {
	if rawQuery == "" {
		return path
	}
	return path + "?" + rawQuery
}
