package rewrite

import "testing"

func TestParsePath(t *testing.T) {
	digest := "sha256:" + repeat("ab", 32)
	tests := []struct {
		path     string
		want     Route
		wantCode string
	}{
		{"/v2", Route{Kind: KindBase}, ""},
		{"/v2/", Route{Kind: KindBase}, ""},
		{"/v2/_catalog", Route{Kind: KindCatalog}, ""},
		{"/v2/nginx/manifests/latest", Route{KindManifest, "nginx", "/manifests/latest"}, ""},
		{"/v2/library/nginx/manifests/1.25-alpine", Route{KindManifest, "library/nginx", "/manifests/1.25-alpine"}, ""},
		{"/v2/library/nginx/manifests/" + digest, Route{KindManifest, "library/nginx", "/manifests/" + digest}, ""},
		{"/v2/a/b/c/blobs/" + digest, Route{KindBlob, "a/b/c", "/blobs/" + digest}, ""},
		{"/v2/team/app/blobs/uploads/", Route{KindUpload, "team/app", "/blobs/uploads/"}, ""},
		{"/v2/team/app/blobs/uploads", Route{KindUpload, "team/app", "/blobs/uploads"}, ""},
		{"/v2/team/app/blobs/uploads/6c1a-4f=_.x", Route{KindUpload, "team/app", "/blobs/uploads/6c1a-4f=_.x"}, ""},
		{"/v2/team/app/tags/list", Route{KindTags, "team/app", "/tags/list"}, ""},
		{"/v2/team/app/referrers/" + digest, Route{KindReferrers, "team/app", "/referrers/" + digest}, ""},
		// Endpoint words are fine as name components: the endpoint is found from the right.
		{"/v2/manifests/blobs/manifests/v1", Route{KindManifest, "manifests/blobs", "/manifests/v1"}, ""},
		{"/v2/tags/list/tags/list", Route{KindTags, "tags/list", "/tags/list"}, ""},
		{"/v2/x/blobs/uploads/blobs/uploads/", Route{KindUpload, "x/blobs/uploads", "/blobs/uploads/"}, ""},

		{"/v3/x/manifests/latest", Route{}, "NOT_FOUND"},
		{"/v2/x", Route{}, "NOT_FOUND"},
		{"/v2/x/unknown/thing", Route{}, "NOT_FOUND"},
		{"/v2/x/uploads/abc", Route{}, "NOT_FOUND"},
		{"/v2/tags/list", Route{}, "NOT_FOUND"},
		{"/v2//manifests/latest", Route{}, "NOT_FOUND"},
		{"/v2/../hub2/x/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/./x/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/a//b/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/Upper/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/a\\b/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/a..b/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/-a/manifests/latest", Route{}, "NAME_INVALID"},
		{"/v2/x/manifests/", Route{}, "NOT_FOUND"},
		{"/v2/x/manifests/.hidden", Route{}, "NOT_FOUND"},
		{"/v2/x/manifests/.INVALID_MANIFEST_NAME", Route{}, "NOT_FOUND"},
		{"/v2/x/manifests/" + repeat("t", 129), Route{}, "NOT_FOUND"},
		{"/v2/x/blobs/latest", Route{}, "DIGEST_INVALID"},
		{"/v2/x/blobs/sha256:", Route{}, "DIGEST_INVALID"},
		{"/v2/x/referrers/latest", Route{KindReferrers, "x", "/referrers/latest"}, ""},
		{"/v2/x/referrers/.hidden", Route{}, "NOT_FOUND"},
		{"/v2/x/referrers/sha256:", Route{}, "NOT_FOUND"},
		{"/v2/x/blobs/uploads/a%2Fb", Route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/v2/x/blobs/uploads/..", Route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/v2/x/blobs/uploads/.", Route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/v2/" + repeat("a", 256) + "/manifests/latest", Route{}, "NAME_INVALID"},
	}
	for _, tt := range tests {
		var got Route
		err := parsePath(&got, tt.path)
		if tt.wantCode != "" {
			if err == nil || err.Code != tt.wantCode {
				t.Errorf("parsePath(%q) = %+v, %v; want error %s", tt.path, got, err, tt.wantCode)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v", tt.path, got, err, tt.want)
		}
	}
}

func TestUnsafeEscapes(t *testing.T) {
	tests := map[string]bool{
		"/v2/a/b/manifests/latest":          false,
		"/v2/a/manifests/sha256%3Aabc":      false,
		"/v2/a%2Fb/manifests/latest":        true,
		"/v2/a%2fb/manifests/latest":        true,
		"/v2/%2E%2E/hub2/manifests/latest":  true,
		"/v2/a/manifests/%2e":               true,
		"/v2/a%252Fb/manifests/latest":      true,
		"/v2/a%5Cb/manifests/latest":        true,
		"/v2/a/manifests/latest%":           true,
		"/v2/a/manifests/latest%2":          true,
		"/v2/a/blobs/uploads/x%3Dy%3D%3D":   false,
		"/v2/library/hello/manifests/v1%2D": false,
	}
	for p, want := range tests {
		if got := unsafeEscapes(p); got != want {
			t.Errorf("unsafeEscapes(%q) = %v, want %v", p, got, want)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}
