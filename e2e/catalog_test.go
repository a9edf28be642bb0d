package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// TestCatalogPagesThroughMirror pages real Harbor's catalog through Traefik and the plugin as an
// admin client does (Basic: Harbor answers a Bearer token on _catalog with 401 Basic), following
// each Link (with n, Harbor wants last to name an existing repository): the pages hold exactly the
// served project's repositories, named without the project, although the shared Harbor lists
// every test's projects (and a project whose name starts with the served one's), and Harbor never
// sees a query of the client's. Then tags/list, paged by Harbor itself, follows its Links in the
// client's names.
func TestCatalogPagesThroughMirror(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{Settings: teamSettings})
	// Harbor takes no push into a proxy-cache project: the served project is the private one,
	// with repositories named like the other projects, and a look-alike project next to it.
	lookalike := m.TeamProject + "-x"
	if _, _, err := m.World.Harbor.API(http.MethodPost, "/projects", map[string]any{"project_name": lookalike, "metadata": map[string]string{"public": "false"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{m.TeamProject + "/library", m.TeamProject + "/hub", m.TeamProject + "/team", m.TeamProject, lookalike + "/owner"} {
		if err := images.Seed(context.Background(), harborStore{m}, ns, images.Single, images.Hello); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"hello", "hub/hello", "hub/single", "library/hello", "library/single", "single", "team/hello", "team/single"}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(target string) (int, []string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+m.Host+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(realharbor.AdminUser, realharbor.AdminPassword)
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

	for _, n := range []string{"1", "2", "3", "8", "100"} {
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
	reqs := requests(m)
	for _, r := range reqs {
		if r.Path == "/v2/_catalog" && r.RawQuery != "" {
			t.Errorf("Harbor received a catalog query: %s", r)
		}
	}
	teamSawRequest(t, reqs, "GET", "/v2/_catalog", http.StatusOK)

	// A Bearer token does not list the catalog: Harbor wants Basic there, and says so.
	bearer := teamFetchToken(t, client, map[string]string{"realm": "http://" + m.Host + "/service/token", "service": "harbor-registry"}, teamAliceCreds(m))
	resp := teamMustDo(t, client, http.MethodGet, "http://"+m.Host+"/v2/_catalog?n=2", nil, map[string]string{"Authorization": "Bearer " + bearer.Token})
	if scheme, _ := teamChallenge(resp.Header.Get("Www-Authenticate")); resp.StatusCode != http.StatusUnauthorized || scheme != "basic" {
		t.Errorf("_catalog with a Bearer token: %s, Www-Authenticate %q; want 401 Basic", resp.Status, resp.Header.Get("Www-Authenticate"))
	}

	// tags/list of <team>/single, paged by Harbor, as alice: the Links and names are the client's.
	for _, tag := range []string{"v1", "v2", "v3", "v4"} {
		pullStoreTag(t, harborStore{m}, m.TeamProject+"/single", tag, images.Single)
	}
	reg := newTeamRegistry(t, "http://"+m.Host, nil, teamAliceCreds(m))
	var tags []string
	target, pages := "/v2/single/tags/list?n=2", 0
	for target != "" && pages < 10 {
		resp := reg.expect(http.StatusOK, http.MethodGet, "http://"+m.Host+target, nil, nil)
		var page struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if page.Name != "single" {
			t.Errorf("%s: name %q, want single", target, page.Name)
		}
		tags = append(tags, page.Tags...)
		pages++
		target = ""
		if link := resp.Header.Get("Link"); link != "" {
			next, rest, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">")
			if !ok || rest != `; rel="next"` || !strings.HasPrefix(next, "/v2/single/tags/list?") {
				t.Fatalf("tags/list Link %q, want </v2/single/tags/list?...>; rel=\"next\"", link)
			}
			target = next
		}
	}
	if want := []string{"latest", "v1", "v2", "v3", "v4"}; !slices.Equal(tags, want) || pages != 3 {
		t.Errorf("tags/list in %d pages of 2: %q, want %q in 3", pages, tags, want)
	}
	reqs = requests(m)
	assertConfined(t, reqs, m.TeamProject)
	if n := teamCount(reqs, "GET", "/v2/"+m.TeamProject+"/single/tags/list", http.StatusOK); n != 3 {
		t.Errorf("Harbor answered %d tags/list pages, want 3:\n%s", n, traceOf(reqs))
	}
}
