package rewrite

import (
	"strings"
	"testing"
)

// The requests of a pull take the fast path, mapped as MapRequest maps them; anything else is
// left to MapRequest.
func TestMapPull(t *testing.T) {
	projects := NewProjects("hub", map[string]string{"ghcr.io": "ghcr"}, true)
	for _, tt := range []struct{ path, rawPath, query, want string }{
		{"/v2/library/nginx/manifests/latest", "", "", "/v2/hub/library/nginx/manifests/latest"},
		{"/v2/nginx/manifests/1.27-alpine", "", "", "/v2/hub/library/nginx/manifests/1.27-alpine"},
		{"/v2/library/nginx/manifests/" + digestA, "", "ns=docker.io", "/v2/hub/library/nginx/manifests/" + digestA},
		{"/v2/library/nginx/blobs/" + digestA, "", "", "/v2/hub/library/nginx/blobs/" + digestA},
		{"/v2/owner/app/blobs/" + digestA, "", "ns=ghcr.io", "/v2/ghcr/owner/app/blobs/" + digestA},
		{"/v2/app/manifests/v1", "", "ns=ghcr.io", "/v2/ghcr/app/manifests/v1"},
		{"/v2/a/b/c/d/manifests/x", "", "", "/v2/hub/a/b/c/d/manifests/x"},
		// left to MapRequest
		{"/v2/owner/app/blobs/" + digestA, "", "ns=quay.io", ""},
		{"/v2/library/nginx/manifests/latest", "", "ns=docker.io&x=1", ""},
		{"/v2/library/nginx/manifests/latest", "/v2/library%2Fnginx/manifests/latest", "", ""},
		{"/v2/library/nginx/tags/list", "", "", ""},
		{"/v2/library/nginx/blobs/uploads/", "", "", ""},
		{"/v2/library/nginx/blobs/uploads/" + digestA, "", "", ""},
		{"/v2/library/Nginx/manifests/latest", "", "", ""},
		{"/v2/library/nginx/manifests/.latest", "", "", ""},
		{"/v2/../x/manifests/latest", "", "", ""},
		{"/v2/library/nginx/manifests/latest/", "", "", ""},
		{"/v2/library/nginx/blobs/latest", "", "", ""},
	} {
		got := MapPull(projects, tt.path, tt.rawPath, tt.query)
		if got != tt.want {
			t.Errorf("MapPull(%q, %q, %q) = %q, want %q", tt.path, tt.rawPath, tt.query, got, tt.want)
			continue
		}
		if got == "" {
			continue
		}
		x, filled := exchangeFor(), exchangeFor()
		if err := MapRequest(projects, x, tt.path, tt.rawPath, tt.query); err != nil || x.RequestURI != got {
			t.Errorf("MapRequest(%q, %q) = %q, %v; MapPull gave %q", tt.path, tt.query, x.RequestURI, err, got)
		}
		if FillPull(projects, filled, requestTarget(tt.path, tt.query), ""); *filled != *x {
			t.Errorf("FillPull(%q, %q) = %+v, MapRequest gave %+v", tt.path, tt.query, filled, x)
		}
	}
	// A name at the limit: MapPull leaves it to MapRequest, which measures it.
	long := "/v2/a/" + strings.Repeat("b", maxNameLength-len("hub/a/")) + "/manifests/latest"
	if got := MapPull(projects, long, "", ""); got != "" {
		t.Errorf("MapPull mapped a name of %d characters", maxNameLength)
	}
}

// FillPull reads the client's request target as Go's server parses it, mirror path included,
// and fills x as MapRequest does from that server's URL; on a target it cannot read, x stays as
// it was, and nothing panics.
func TestFillPull(t *testing.T) {
	projects := NewProjects("hub", map[string]string{"ghcr.io": "ghcr"}, true)
	for _, tt := range []struct{ target, mirrorPath, path, rawPath, query string }{
		{"/hub/v2/library/nginx/manifests/latest", "/hub", "/v2/library/nginx/manifests/latest", "", ""},
		{"/hub/v2/app/blobs/" + digestA + "?ns=ghcr.io", "/hub", "/v2/app/blobs/" + digestA, "", "ns=ghcr.io"},
		{"http://mirror.example.com/v2/nginx/manifests/latest", "", "/v2/nginx/manifests/latest", "", ""},
		{"/v2/library%2Fnginx/manifests/latest", "", "/v2/library/nginx/manifests/latest", "/v2/library%2Fnginx/manifests/latest", ""},
		{"/v2/%6Eginx/manifests/latest?ns=docker.io", "", "/v2/nginx/manifests/latest", "/v2/%6Eginx/manifests/latest", "ns=docker.io"},
		{"/v2/nginx/tags/list?n=1", "", "/v2/nginx/tags/list", "", "n=1"},
	} {
		want, filled := exchangeFor(), exchangeFor()
		err := MapRequest(projects, want, tt.path, tt.rawPath, tt.query)
		if FillPull(projects, filled, tt.target, tt.mirrorPath); *filled != *want {
			t.Errorf("FillPull(%q, %q) = %+v\nMapRequest gave %+v (%v)", tt.target, tt.mirrorPath, filled, want, err)
		}
	}
	for _, tt := range []struct{ target, mirrorPath string }{
		{"/v2/library/nginx/manifests/latest", "/hub"},
		{"/hu", "/hub"},
		{"", ""},
		{"*", ""},
		{"/v2/a\x7f/manifests/latest", ""},
		{"v2/nginx/manifests/latest", ""},
	} {
		filled := exchangeFor()
		if FillPull(projects, filled, tt.target, tt.mirrorPath); filled.Project != nil || filled.RequestURI != "" {
			t.Errorf("FillPull(%q, %q) filled %+v", tt.target, tt.mirrorPath, filled)
		}
	}
}

// The token request of an anonymous pull takes the fast path, mapped as MapTokenRequest maps it.
func TestMapTokenPull(t *testing.T) {
	projects := NewProjects("hub", map[string]string{"ghcr.io": "ghcr"}, true)
	for _, tt := range []struct{ query, want string }{
		{"scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry", "scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
		{"scope=repository%3Ahello%3Apull&service=harbor-registry", "scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry"},
		{"ns=docker.io&scope=repository%3Alibrary%2Fhello%3Apull%2Cpush&service=h", "scope=repository%3Ahub%2Flibrary%2Fhello%3Apull%2Cpush&service=h"},
		{"ns=ghcr.io&scope=repository%3Aapp%3Apull&service=h", "scope=repository%3Aghcr%2Fapp%3Apull&service=h"},
		// left to MapTokenRequest
		{"ns=quay.io&scope=repository%3Aapp%3Apull&service=h", ""},
		{"ns=ghcr%2Eio&scope=repository%3Aapp%3Apull&service=h", ""},
		{"account=u&scope=repository%3Aapp%3Apull&service=h", ""},
		{"scope=repository%3Aapp%3Apull&scope=repository%3Aother%3Apull&service=h", ""},
		{"scope=repository:app:pull&service=h", ""},
		{"scope=repository%3Aapp%3Apull,push&service=h", ""},
		{"scope=repository%3AApp%3Apull&service=h", ""},
		{"scope=registry%3Acatalog%3A%2A&service=h", ""},
		{"service=h&scope=repository%3Aapp%3Apull", ""},
		{"scope=repository%3Aapp%3Apull&service=h&scope=repository%3Aother%3Apull", ""},
	} {
		got := MapTokenPull(projects, tt.query)
		if got != tt.want {
			t.Errorf("MapTokenPull(%q) = %q, want %q", tt.query, got, tt.want)
			continue
		}
		if full, _, err := MapTokenRequest(projects, tt.query); got != "" && (err != nil || full != got) {
			t.Errorf("MapTokenRequest(%q) = %q, %v; MapTokenPull gave %q", tt.query, full, err, got)
		}
	}
}
