package rewrite

import "testing"

func TestTargetMap(t *testing.T) {
	hub := newProject("hub", true, "")
	team := newProject("team", false, "")
	tests := []struct {
		target   *Project
		name     string
		want     string
		wantCode string
	}{
		{hub, "nginx", "hub/library/nginx", ""},
		{hub, "library/nginx", "hub/library/nginx", ""},
		{hub, "bitnami/redis", "hub/bitnami/redis", ""},
		{team, "app", "team/app", ""},
		{team, "a/b/c", "team/a/b/c", ""},
		{team, "a__b.c-d---e", "team/a__b.c-d---e", ""},
		{team, "hub2/x", "team/hub2/x", ""},
		{team, "", "", "NAME_INVALID"},
		{team, "../x", "", "NAME_INVALID"},
		{team, "a/../b", "", "NAME_INVALID"},
		{team, "A", "", "NAME_INVALID"},
		{team, "a___b", "", "NAME_INVALID"},
		{team, "a/", "", "NAME_INVALID"},
		{team, "/a", "", "NAME_INVALID"},
		{team, "localhost:5000/a", "", "NAME_INVALID"},
		{team, "a b", "", "NAME_INVALID"},
		{team, "a\x00b", "", "NAME_INVALID"},
		{team, repeat("a", 251), "", "NAME_INVALID"}, // "team/" + 251 > 255
		{team, repeat("a", 250), "team/" + repeat("a", 250), ""},
	}
	for _, tt := range tests {
		got, err := mapName(tt.target, tt.name)
		if tt.wantCode != "" {
			if err == nil || err.Code != tt.wantCode || err.Status != 400 {
				t.Errorf("%+v.Map(%q) = %q, %v; want %s", tt.target, tt.name, got, err, tt.wantCode)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%+v.Map(%q) = %q, %v; want %q", tt.target, tt.name, got, err, tt.want)
		}
		if back, ok := unmapName(tt.target, got); !ok || (back != tt.name && back != "library/"+tt.name) {
			t.Errorf("Unmap(%q) = %q, %v; want the client's name back", got, back, ok)
		}
	}
}

func TestTargetUnmap(t *testing.T) {
	hub := newProject("hub", false, "")
	tests := []struct {
		full, want string
		ok         bool
	}{
		{"hub/library/nginx", "library/nginx", true},
		{"hub/x", "x", true},
		{"hub", "hub", false},
		{"hub/", "hub/", false},
		{"hubx/y", "hubx/y", false},
		{"other/hub/x", "other/hub/x", false},
	}
	for _, tt := range tests {
		if got, ok := unmapName(hub, tt.full); got != tt.want || ok != tt.ok {
			t.Errorf("Unmap(%q) = %q, %v; want %q, %v", tt.full, got, ok, tt.want, tt.ok)
		}
	}
}

func TestProjectFor(t *testing.T) {
	p := NewProjects("hub", map[string]string{"ghcr.io": "ghcr", "quay.io": "quay"}, true)
	tests := []struct {
		ns       string
		want     Project // exported fields
		wantCode string
	}{
		{"", Project{Name: "hub", Library: true}, ""},
		{"docker.io", Project{Name: "hub", Library: true, NS: "docker.io"}, ""},
		{"ghcr.io", Project{Name: "ghcr", NS: "ghcr.io"}, ""},
		{"quay.io", Project{Name: "quay", NS: "quay.io"}, ""},
		{"gcr.io", Project{}, "NAME_UNKNOWN"},
	}
	for _, tt := range tests {
		got, err := projectFor(p, tt.ns)
		if tt.wantCode != "" {
			if err == nil || err.Code != tt.wantCode || err.Status != 404 {
				t.Errorf("projectFor(%q) = %+v, %v; want %s", tt.ns, got, err, tt.wantCode)
			}
			continue
		}
		if err != nil || got.Name != tt.want.Name || got.Library != tt.want.Library || got.NS != tt.want.NS {
			t.Errorf("projectFor(%q) = %+v, %v; want %+v", tt.ns, got, err, tt.want)
		}
	}

	// docker.io listed explicitly wins over the default, and keeps the library prefix.
	listed := NewProjects("team", map[string]string{"docker.io": "hub"}, true)
	if got, _ := projectFor(listed, "docker.io"); got.Name != "hub" || !got.Library {
		t.Errorf("listed docker.io: %+v", got)
	}
	// Registries only: requests without ns have nowhere to go.
	nsOnly := NewProjects("", map[string]string{"ghcr.io": "ghcr"}, false)
	if _, err := projectFor(nsOnly, ""); err == nil || err.Code != "NAME_UNKNOWN" {
		t.Errorf("no default project: %v", err)
	}
	if _, err := projectFor(nsOnly, "docker.io"); err == nil {
		t.Errorf("docker.io without a default or a listing must be unknown")
	}
}

func TestValidProject(t *testing.T) {
	for p, want := range map[string]bool{
		"hub": true, "proxy-cache": true, "a.b_c": true, "9x": true,
		"": false, "Hub": false, "-hub": false, "hub-": false, "a/b": false, "a..b": false,
	} {
		if got := ValidProject(p); got != want {
			t.Errorf("ValidProject(%q) = %v", p, got)
		}
	}
}
