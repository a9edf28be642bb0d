package rewrite

import (
	"net/url"
	"strings"
	"testing"
)

var laneProjects = NewProjects("hub", map[string]string{"ghcr.io": "ghcr", "mirror.gcr.io": "hub"}, true)

// mapByRequest is what the full mapping does with a request target: the mapped target, its
// exchange, and whether it forwards the request at all.
func mapByRequest(p *Projects, mirrorPath, target string) (string, *Exchange, bool) {
	u, err := url.ParseRequestURI(target)
	if err != nil || !strings.HasPrefix(u.Path, mirrorPath+"/v2/") {
		return "", nil, false
	}
	x := exchangeFor()
	if MapRequest(p, x, u.Path[len(mirrorPath):], u.RawPath, u.RawQuery) != nil {
		return "", nil, false
	}
	return x.RequestURI, x, true
}

// laneChallenge is the plugin's use of the challenge lane, with the realm of the exchange.
func laneChallenge(l *Lanes, value, realm string) string {
	return l.Challenge.ReplaceAllString(value, `Bearer realm="`+realm+l.ChallengeTail)
}

func TestPullLane(t *testing.T) {
	lanes := NewLanes(laneProjects, "", "/service/token")
	for _, tt := range []struct{ target, want string }{
		{"/v2/library/nginx/manifests/latest", "/v2/hub/library/nginx/manifests/latest"},
		{"/v2/library/nginx/manifests/" + digestA, "/v2/hub/library/nginx/manifests/" + digestA},
		{"/v2/library/nginx/blobs/" + digestA, "/v2/hub/library/nginx/blobs/" + digestA},
		{"/v2/library/nginx/manifests/latest?ns=docker.io", "/v2/hub/library/nginx/manifests/latest"},
		{"/v2/library/nginx/manifests/latest?ns=mirror.gcr.io", "/v2/hub/library/nginx/manifests/latest"},
		{"/v2/a/b/c/d/manifests/x", "/v2/hub/a/b/c/d/manifests/x"},
		// left to the full mapping
		{"/v2/nginx/manifests/latest", ""},                     // one component: library/
		{"/v2/owner/app/blobs/" + digestA + "?ns=ghcr.io", ""}, // another project
		{"/v2/owner/app/blobs/" + digestA + "?ns=quay.io", ""}, // unknown registry: refused there
		{"/v2/library/nginx/manifests/latest?ns=docker.io&x=1", ""},
		{"/v2/library/nginx/manifests/latest?ns=docker%2Eio", ""},
		{"/v2/library%2Fnginx/manifests/latest", ""},
		{"/v2/library/nginx/tags/list", ""},
		{"/v2/library/nginx/blobs/uploads/", ""},
		{"/v2/library/Nginx/manifests/latest", ""},
		{"/v2/library/nginx/manifests/.latest", ""},
		{"/v2/../x/y/manifests/latest", ""},
		{"/v2/library/nginx/manifests/latest/", ""},
		{"/v2/library/nginx/blobs/latest", ""},
		{"http://mirror.example.com/v2/library/nginx/manifests/latest", ""},
	} {
		got := lanes.Pull.ReplaceAllString(tt.target, lanes.PullTemplate)
		if got == tt.target {
			got = ""
		}
		if got != tt.want {
			t.Errorf("pull lane %q = %q, want %q", tt.target, got, tt.want)
			continue
		}
		if got == "" {
			continue
		}
		if full, x, ok := mapByRequest(laneProjects, "", tt.target); !ok || full != got || (x.Route.Kind != KindManifest && x.Route.Kind != KindBlob) {
			t.Errorf("MapRequest(%q) = %q, %v; the lane gave %q", tt.target, full, ok, got)
		}
	}
	// A name at the limit is measured by the full mapping.
	long := "/v2/a/" + strings.Repeat("b", MaxNameLength-len("hub/a/")) + "/manifests/latest"
	if mapped := lanes.Pull.ReplaceAllString(long, lanes.PullTemplate); len(mapped) <= lanes.MaxPull {
		t.Errorf("the lane forwards a name of %d characters", MaxNameLength)
	}
}

func TestPullLaneUnderMirrorPath(t *testing.T) {
	lanes := NewLanes(laneProjects, "/hub", "/service/token")
	if got := lanes.Pull.ReplaceAllString("/hub/v2/library/nginx/manifests/latest", lanes.PullTemplate); got != "/v2/hub/library/nginx/manifests/latest" {
		t.Errorf("under /hub: %q", got)
	}
	if target := "/v2/library/nginx/manifests/latest"; lanes.Pull.ReplaceAllString(target, lanes.PullTemplate) != target {
		t.Errorf("a request outside the mirror path took the lane")
	}
}

func TestTokenLane(t *testing.T) {
	for _, mirrorPath := range []string{"", "/hub"} {
		lanes := NewLanes(laneProjects, mirrorPath, "/service/token")
		for _, tt := range []struct{ query, want string }{
			{"scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", "scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
			{"ns=docker.io&scope=repository%3Alibrary%2Fhello%3Apull%2Cpush&service=h", "scope=repository%3Ahub%2Flibrary%2Fhello%3Apull%2Cpush&service=h"},
			// left to MapTokenRequest
			{"scope=repository%3Ahello%3Apull&service=harbor-registry", ""},
			{"ns=ghcr.io&scope=repository%3Aowner%2Fapp%3Apull&service=h", ""},
			{"ns=quay.io&scope=repository%3Aowner%2Fapp%3Apull&service=h", ""},
			{"account=u&scope=repository%3Aa%2Fb%3Apull&service=h", ""},
			{"scope=repository%3Aa%2Fb%3Apull&scope=repository%3Aother%2Fx%3Apull&service=h", ""},
			{"scope=repository:a/b:pull&service=h", ""},
			{"scope=repository%3Aa%2FB%3Apull&service=h", ""},
			{"service=h&scope=repository%3Aa%2Fb%3Apull", ""},
		} {
			target := mirrorPath + "/service/token?" + tt.query
			got := lanes.Token.ReplaceAllString(target, lanes.TokenTemplate)
			if got == target {
				got = ""
			}
			want := tt.want
			if want != "" {
				want = "/service/token?" + want
			}
			if got != want {
				t.Errorf("token lane %q = %q, want %q", target, got, want)
				continue
			}
			if got == "" {
				continue
			}
			if full, _, err := MapTokenRequest(laneProjects, tt.query); err != nil || "/service/token?"+full != got {
				t.Errorf("MapTokenRequest(%q) = %q, %v; the lane gave %q", tt.query, full, err, got)
			}
		}
	}
}

// Harbor's challenge to a lane's request: the lane gives what the general rules give.
func TestChallengeLane(t *testing.T) {
	lanes := NewLanes(laneProjects, "", "/service/token")
	harbor := `Bearer realm="http://harbor/service/token",service="harbor-registry"`
	for _, tt := range []struct {
		target, value string
		lane          bool
	}{
		{"/v2/library/hello/manifests/latest", harbor + `,scope="repository:hub/library/hello:pull"`, true},
		{"/v2/library/hello/manifests/latest?ns=docker.io", harbor + `,scope="repository:hub/library/hello:pull"`, true},
		{"/v2/library/hello/blobs/" + digestA, harbor + `,scope="repository:hub/library/hello:pull",error="insufficient_scope"`, true},
		{"/v2/library/hello/manifests/latest", harbor + `,scope="repository:hub/other/x:pull,push"`, true},
		// left to the general rules, which agree where they change something
		{"/v2/library/hello/manifests/latest", harbor, false},
		{"/v2/library/hello/manifests/latest", harbor + `,scope="repository:ghcr/library/hello:pull"`, false},
		{"/v2/library/hello/manifests/latest", harbor + `,scope="repository:hub/a:pull repository:hub/b:pull"`, false},
		{"/v2/library/hello/manifests/latest", `Basic realm="harbor"`, false},
		{"/v2/library/hello/manifests/latest", harbor + `,scope="repository:hub/:pull"`, false},
	} {
		_, x, ok := mapByRequest(laneProjects, "", tt.target)
		if !ok {
			t.Fatalf("%q does not map", tt.target)
		}
		_, query, _ := strings.Cut(tt.target, "?")
		if query != "" {
			query = "?" + query
		}
		if query != x.Target.realmQuery {
			t.Errorf("%q: the lane's query %q is not the target's realm query %q", tt.target, query, x.Target.realmQuery)
		}
		got := laneChallenge(lanes, tt.value, x.Origin+x.RealmPath+query)
		if (got != tt.value) != tt.lane {
			t.Errorf("%q took the lane: %v, want %v", tt.value, got != tt.value, tt.lane)
		}
		if want := Challenge(x, tt.value); tt.lane && got != want {
			t.Errorf("lane %q, general rules %q, from %q", got, want, tt.value)
		}
	}
}

// The error documents Harbor and its registry send with a 401: the lane's names are ErrorBody's.
func TestErrorNamesLane(t *testing.T) {
	lanes := NewLanes(laneProjects, "", "/service/token")
	for _, target := range []string{"/v2/library/hello/manifests/latest", "/v2/hub/x/manifests/latest", "/v2/hub/hub/x/manifests/latest"} {
		_, x, _ := mapByRequest(laneProjects, "", target)
		if lanes.Pull.FindString(target) == "" {
			t.Fatalf("%s does not take the lane", target)
		}
		own := x.Route.Name
		body := `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: ` + x.MappedName + `, action: pull","detail":[{"Name":"` + x.MappedName + `"}]}]}`
		got, want := lanes.ErrorNames.Replace(body), string(ErrorBody([]byte(body), x))
		if got != want || strings.Count(got, own) != 2 || strings.Contains(got, x.MappedName) {
			t.Errorf("%s: lane %s\ngeneral %s\nwant each name as %s", target, got, want, own)
		}
	}
	_, x, _ := mapByRequest(laneProjects, "", "/v2/library/hello/manifests/latest")
	for _, body := range []string{
		`{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/library/hello, action: pull: unauthorized to access repository: hub/library/hello, action: pull"}]}`,
		`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"hub/library/hello","Action":"pull"}]}]}`,
		`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"hub/library/hello","Action":"pull"},{"Type":"repository","Name":"hub/other/base","Action":"pull"}]}]}`,
	} {
		got, want := lanes.ErrorNames.Replace(body), string(ErrorBody([]byte(body), x))
		if got != want || strings.Contains(got, "hub/") {
			t.Errorf("lane %s\ngeneral %s", got, want)
		}
	}
}

func TestLanesWithoutDefaultProject(t *testing.T) {
	if lanes := NewLanes(NewProjects("", map[string]string{"docker.io": "hub"}, true), "", "/service/token"); lanes != nil {
		t.Errorf("lanes %+v for a configuration without a default project", lanes)
	}
}

// FuzzLanes: whatever a lane maps, the full mapping maps to the same target, and Harbor's
// challenge to it comes back as the general rules give it.
func FuzzLanes(f *testing.F) {
	harbor := `Bearer realm="http://harbor/service/token",service="harbor-registry",scope="repository:hub/library/nginx:pull"`
	for _, seed := range []struct{ target, challenge string }{
		{"/v2/library/nginx/manifests/latest", harbor},
		{"/v2/library/nginx/blobs/" + digestA + "?ns=docker.io", harbor + `,error="invalid_token"`},
		{"/v2/owner/app/blobs/" + digestA + "?ns=ghcr.io", harbor},
		{"/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", harbor},
		{"/service/token?ns=docker.io&scope=repository%3Aa%2Fb%3Apull%2Cpush&service=h", harbor},
		{"/v2/a/b/manifests/latest?ns=mirror.gcr.io", `Bearer realm="x",service="y",scope="repository:hub/a/b:x:pull"`},
	} {
		f.Add(seed.target, seed.challenge)
	}
	lanes := NewLanes(laneProjects, "", "/service/token")
	f.Fuzz(func(t *testing.T, target, challenge string) {
		if mapped := lanes.Pull.ReplaceAllString(target, lanes.PullTemplate); mapped != target && len(mapped) <= lanes.MaxPull {
			full, x, ok := mapByRequest(laneProjects, "", target)
			if !ok || full != mapped || (x.Route.Kind != KindManifest && x.Route.Kind != KindBlob) {
				t.Fatalf("pull lane %q → %q; full mapping %q, %v", target, mapped, full, ok)
			}
			_, query, _ := strings.Cut(target, "?")
			if query != "" {
				query = "?" + query
			}
			if query != x.Target.realmQuery {
				t.Fatalf("%q: lane query %q, realm query %q", target, query, x.Target.realmQuery)
			}
			if got := laneChallenge(lanes, challenge, x.Origin+x.RealmPath+query); got != challenge && got != Challenge(x, challenge) {
				t.Fatalf("challenge lane %q, general rules %q, from %q", got, Challenge(x, challenge), challenge)
			}
		}
		if mapped := lanes.Token.ReplaceAllString(target, lanes.TokenTemplate); mapped != target && len(mapped) <= lanes.MaxToken {
			_, query, _ := strings.Cut(target, "?")
			full, _, err := MapTokenRequest(laneProjects, query)
			if err != nil || "/service/token?"+full != mapped {
				t.Fatalf("token lane %q → %q; full mapping %q, %v", target, mapped, full, err)
			}
		}
	})
}
