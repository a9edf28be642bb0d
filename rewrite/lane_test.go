package rewrite

import (
	"strings"
	"testing"
)

var laneProjects = NewProjects("hub", map[string]string{"ghcr.io": "ghcr", "mirror.gcr.io": "hub"}, true)

// Which targets take the lanes. That a lane forwards and answers what the other tiers would is
// checked at the plugin boundary, with the plugin's own cuts and limits (tiers_test.go).
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
		}
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

// The error documents Harbor and its registry send with a 401: the lane's names are ErrorBody's.
func TestErrorNamesLane(t *testing.T) {
	lanes := NewLanes(laneProjects, "", "/service/token")
	for _, target := range []string{"/v2/library/hello/manifests/latest", "/v2/hub/x/manifests/latest", "/v2/hub/hub/x/manifests/latest"} {
		x := mapPath(t, laneProjects, target)
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
	x := mapPath(t, laneProjects, "/v2/library/hello/manifests/latest")
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
