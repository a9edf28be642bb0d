package rewrite

import "testing"

func TestCutParam(t *testing.T) {
	tests := []struct {
		raw, key, value, rest string
		found                 bool
	}{
		{"", "ns", "", "", false},
		{"ns=docker.io", "ns", "docker.io", "", true},
		{"n=10&ns=ghcr.io&last=x", "ns", "ghcr.io", "n=10&last=x", true},
		{"dns=1&ns=a&ns=b", "ns", "a", "dns=1", true},
		{"%6Es=docker.io&x=1", "ns", "docker.io", "x=1", true},
		{"nsx=1", "ns", "", "nsx=1", false},
		{"_state=a%2Fb%3D&digest=sha256%3Aab", "ns", "", "_state=a%2Fb%3D&digest=sha256%3Aab", false},
	}
	for _, tt := range tests {
		value, rest, found := cutParam(tt.raw, tt.key)
		if value != tt.value || rest != tt.rest || found != tt.found {
			t.Errorf("cutParam(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.raw, tt.key, value, rest, found, tt.value, tt.rest, tt.found)
		}
	}
}

func TestMapQuery(t *testing.T) {
	hub := newProject("hub", true, "")
	tests := []struct {
		raw      string
		kind     Kind
		want     string
		wantCode string
	}{
		{"", KindManifest, "", ""},
		{"mount=sha256%3Aab&from=library%2Fbusybox", KindUpload, "mount=sha256%3Aab&from=hub%2Flibrary%2Fbusybox", ""},
		{"mount=sha256:ab&from=busybox", KindUpload, "mount=sha256:ab&from=hub%2Flibrary%2Fbusybox", ""},
		{"from=team/app&mount=sha256:ab", KindUpload, "from=hub%2Fteam%2Fapp&mount=sha256:ab", ""},
		{"fr%6Fm=other/app&mount=sha256:ab", KindUpload, "from=hub%2Fother%2Fapp&mount=sha256:ab", ""},
		{"from=..%2Fother%2Fapp&mount=x", KindUpload, "", "NAME_INVALID"},
		{"from=%zz", KindUpload, "", "UNSUPPORTED"},
		{"_state=abc%3D&digest=sha256%3Aab", KindUpload, "_state=abc%3D&digest=sha256%3Aab", ""},
		{"from=x", KindManifest, "from=x", ""},                                    // only uploads read from=
		{"n=2&last=library%2Fnginx", KindCatalog, "n=2&last=library%2Fnginx", ""}, // see CatalogPage
	}
	for _, tt := range tests {
		got, err := mapQuery(tt.raw, hub, tt.kind)
		if tt.wantCode != "" {
			if err == nil || err.Code != tt.wantCode {
				t.Errorf("mapQuery(%q) = %q, %v; want %s", tt.raw, got, err, tt.wantCode)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("mapQuery(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestCheckQuery(t *testing.T) {
	if checkQuery("a=b&scope=x%3B") != nil {
		t.Error("an escaped semicolon is fine")
	}
	if err := checkQuery("a=b;scope=repository:other/x:pull"); err == nil || err.Status != 400 {
		t.Errorf("a literal semicolon must be refused, got %v", err)
	}
}

func TestMapTokenQuery(t *testing.T) {
	hub := newProject("hub", true, "")
	ghcr := newProject("ghcr", false, "ghcr.io")
	tests := []struct {
		target   *Project
		raw      string
		want     string
		wantCode string
	}{
		// dockerd
		{hub, "scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
			"scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry", ""},
		// skopeo with credentials puts account= first; the nginx recipe missed that
		{hub, "account=alice&scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
			"account=alice&scope=repository%3Ahub%2Flibrary%2Fhello%3Apull&service=harbor-registry", ""},
		// containerd: several scope parameters
		{hub, "scope=repository%3Alibrary%2Fa%3Apull&scope=repository%3Alibrary%2Fb%3Apull%2Cpush&service=harbor-registry",
			"scope=repository%3Ahub%2Flibrary%2Fa%3Apull&scope=repository%3Ahub%2Flibrary%2Fb%3Apull%2Cpush&service=harbor-registry", ""},
		// go-containerregistry: space-separated scopes in one parameter
		{hub, "scope=repository%3Anginx%3Apull+repository%3Alibrary%2Fbusybox%3Apull&service=harbor-registry",
			"scope=repository%3Ahub%2Flibrary%2Fnginx%3Apull+repository%3Ahub%2Flibrary%2Fbusybox%3Apull&service=harbor-registry", ""},
		{ghcr, "scope=repository%3Aowner%2Fapp%3Apull&service=harbor-registry",
			"scope=repository%3Aghcr%2Fowner%2Fapp%3Apull&service=harbor-registry", ""},
		{hub, "scope=registry%3Acatalog%3A%2A&service=harbor-registry", "scope=registry%3Acatalog%3A%2A&service=harbor-registry", ""},
		{hub, "scope=repository%28plugin%29%3Ax%3Apull", "scope=repository%28plugin%29%3Ahub%2Flibrary%2Fx%3Apull", ""},
		{hub, "service=harbor-registry", "service=harbor-registry", ""},
		{hub, "sc%6Fpe=repository%3Aother%2Fx%3Apull", "scope=repository%3Ahub%2Fother%2Fx%3Apull", ""},
		{hub, "scope=repository%3A..%2Fother%2Fx%3Apull", "", "NAME_INVALID"},
		{hub, "scope=repository%3Ax%3Ay%3Apull", "", "NAME_INVALID"},
		{hub, "scope=Repository%3Aother%2Fx%3Apull", "", "UNSUPPORTED"},
		{hub, "scope=repository%3Apull", "", "UNSUPPORTED"},
		{hub, "scope=repository%3Ax%0D%0AX-Evil%3A1%3Apull", "", "NAME_INVALID"},
	}
	for _, tt := range tests {
		got, err := mapTokenQuery(tt.raw, tt.target)
		if tt.wantCode != "" {
			if err == nil || err.Code != tt.wantCode || err.Status != 400 {
				t.Errorf("mapTokenQuery(%q) = %q, %v; want %s", tt.raw, got, err, tt.wantCode)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("mapTokenQuery(%q)\n got %q, %v\nwant %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestUnmapScope(t *testing.T) {
	hub := newProject("hub", true, "")
	tests := []struct {
		scope, client, mapped, want string
	}{
		{"repository:hub/library/nginx:pull", "nginx", "hub/library/nginx", "repository:nginx:pull"},
		{"repository:hub/library/nginx:pull", "library/nginx", "hub/library/nginx", "repository:library/nginx:pull"},
		{"repository:hub/library/busybox:pull", "nginx", "hub/library/nginx", "repository:library/busybox:pull"},
		{"repository:other/x:pull", "x", "hub/x", "repository:other/x:pull"},
		{"registry:catalog:*", "", "", "registry:catalog:*"},
		{"repository(plugin):hub/x:pull,push", "", "", "repository(plugin):x:pull,push"},
		{"garbage", "", "", "garbage"},
	}
	for _, tt := range tests {
		if got := unmapScope(hub, tt.scope, tt.client, tt.mapped); got != tt.want {
			t.Errorf("unmapScope(%q) = %q, want %q", tt.scope, got, tt.want)
		}
	}
}
