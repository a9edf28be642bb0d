package rewrite

import "testing"

func TestCatalogPage(t *testing.T) {
	harbor := []byte(`{"repositories":["alpha/x","hub/team/app","hub/hub/x","hub/library/nginx","hub0/y","hub/","hub/team/app"]}` + "\n")
	hub, ghcr := newProject("hub", true, ""), newProject("hub", true, "ghcr.io")
	tests := []struct {
		name, page, mirrorPath string
		target                 *Project
		body, link, code       string
	}{
		{name: "whole list, sorted, project only", page: "",
			body: `{"repositories":["hub/x","library/nginx","team/app"]}` + "\n"},
		{name: "first page", page: "n=1",
			body: `{"repositories":["hub/x"]}` + "\n", link: `</v2/_catalog?last=hub%2Fx&n=1>; rel="next"`},
		{name: "next page", page: "last=hub%2Fx&n=1",
			body: `{"repositories":["library/nginx"]}` + "\n", link: `</v2/_catalog?last=library%2Fnginx&n=1>; rel="next"`},
		{name: "last page has no Link", page: "n=1&last=library/nginx",
			body: `{"repositories":["team/app"]}` + "\n"},
		{name: "a last between names, as tags/list", page: "n=5&last=k",
			body: `{"repositories":["library/nginx","team/app"]}` + "\n"},
		{name: "last past the end", page: "n=5&last=zzz", body: `{"repositories":[]}` + "\n"},
		{name: "n=0", page: "n=0", body: `{"repositories":[]}` + "\n"},
		{name: "last alone: the rest", page: "last=hub/x", body: `{"repositories":["library/nginx","team/app"]}` + "\n"},
		{name: "other parameters ignored", page: "x=%25&q=last&n=2",
			body: `{"repositories":["hub/x","library/nginx"]}` + "\n", link: `</v2/_catalog?last=library%2Fnginx&n=2>; rel="next"`},
		{name: "Link keeps mirror path and ns", page: "n=2", mirrorPath: "/hub", target: ghcr,
			body: `{"repositories":["hub/x","library/nginx"]}` + "\n", link: `</hub/v2/_catalog?last=library%2Fnginx&n=2&ns=ghcr.io>; rel="next"`},
		{name: "n negative, as Harbor", page: "n=-1", code: "BAD_REQUEST"},
		{name: "n not a number, as Harbor", page: "n=ten", code: "BAD_REQUEST"},
	}
	for _, tt := range tests {
		target := tt.target
		if target == nil {
			target = hub
		}
		body, link, err := CatalogPage(harbor, target, tt.page, tt.mirrorPath)
		if tt.code != "" {
			if err == nil || err.Code != tt.code || err.Status != 400 {
				t.Errorf("%s: %s %q, %v; want %s", tt.name, body, link, err, tt.code)
			}
			continue
		}
		if err != nil || string(body) != tt.body || link != tt.link {
			t.Errorf("%s:\n got %s %q %v\nwant %s %q", tt.name, body, link, err, tt.body, tt.link)
		}
	}
	for _, bad := range []string{"", "not json", `{"repositories":"hub/x"}`, "\x1f\x8b\x08"} {
		if _, _, err := CatalogPage([]byte(bad), hub, "", ""); err == nil || err.Status != 502 {
			t.Errorf("Harbor body %q: %v, want 502", bad, err)
		}
	}
}
