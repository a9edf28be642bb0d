package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/harbormirror/harbormirror/e2e/images"
)

// TestCatalogPagesThroughMirror pages Harbor's catalog through Traefik and the plugin as an admin
// client does, following each Link, against a Harbor that pages its catalog as v2.15.2 does
// (with n, last must be an existing repository): the pages hold exactly the hub project's
// repositories, named without the project, and Harbor never sees a query of the client's.
func TestCatalogPagesThroughMirror(t *testing.T) {
	m := startFakeMirror(t, mirrorOptions{})
	for _, ns := range []string{"hub/library", "hub/hub", "hub/team", "team", "ghcr/owner"} {
		if err := images.Seed(context.Background(), m.Harbor, ns, images.Single, images.Hello); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"hub/hello", "hub/single", "library/hello", "library/single", "team/hello", "team/single"}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(target string) (int, []string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+m.Host+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("admin", "Harbor12345")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var page struct{ Repositories []string }
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
				t.Fatalf("%s: %v", target, err)
			}
		}
		return resp.StatusCode, page.Repositories, resp.Header.Get("Link")
	}

	for _, n := range []string{"1", "2", "4", "6", "100"} {
		var got []string
		target, pages := "/v2/_catalog?n="+n, 0
		for target != "" && pages < 10 {
			status, names, link := get(target)
			if status != http.StatusOK {
				t.Fatalf("n=%s: %s answered %d", n, target, status)
			}
			got = append(got, names...)
			pages++
			target = ""
			if link != "" {
				next, rest, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">")
				if !ok || rest != `; rel="next"` || !strings.HasPrefix(next, "/v2/_catalog?") {
					t.Fatalf("n=%s: Link %q", n, link)
				}
				target = next
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("n=%s: %d pages listed %q, want %q", n, pages, got, want)
		}
	}
	if status, names, link := get("/v2/_catalog"); status != http.StatusOK || !slices.Equal(names, want) || link != "" {
		t.Errorf("whole catalog: %d %q Link %q", status, names, link)
	}
	for _, r := range requests(m) {
		if r.Path == "/v2/_catalog" && r.RawQuery != "" {
			t.Errorf("Harbor received a catalog query: %s", r)
		}
	}
}
