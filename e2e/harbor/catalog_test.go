package harbor_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/harbormirror/harbormirror/e2e/images"
)

// The fake pages its catalog as Harbor v2.15.2 does (src/server/registry/catalog.go): with n,
// last must name an existing repository, so "last=<project>/" is a 400; without n, the whole
// list, whatever last says.
func TestCatalogPagesAsHarbor(t *testing.T) {
	srv, _ := startHarbor(t, nil)
	ctx := context.Background()
	for _, ns := range []string{"library", "team", "hub/library"} {
		if err := images.Seed(ctx, srv, ns, images.Single); err != nil {
			t.Fatal(err)
		}
	}
	auth := "Basic " + basic("admin", adminPassword)
	all := `{"repositories":["hub/library/single","library/hello","library/single","team/single"]}`
	for _, tt := range []struct{ query, body, link string }{
		{"", all, ""},
		{"?last=nothing", all, ""},
		{"?n=1", `{"repositories":["hub/library/single"]}`, `</v2/_catalog?last=hub%2Flibrary%2Fsingle&n=1>; rel="next"`},
		{"?n=2&last=hub%2Flibrary%2Fsingle", `{"repositories":["library/hello","library/single"]}`, `</v2/_catalog?last=library%2Fsingle&n=2>; rel="next"`},
		{"?n=5&last=library%2Fsingle", `{"repositories":["team/single"]}`, ""},
		{"?n=5&last=hub%2F", `{"errors":[{"code":"BAD_REQUEST","message":"the last: hub/ should be a valid repository name."}]}`, ""},
		{"?n=x", `{"errors":[{"code":"BAD_REQUEST","message":"the N must be a positive int type"}]}`, ""},
	} {
		resp, body := send(t, "GET", srv.URL+"/v2/_catalog"+tt.query, auth, nil)
		wantStatus := http.StatusOK
		if strings.Contains(tt.body, "errors") {
			wantStatus = http.StatusBadRequest
		}
		if resp.StatusCode != wantStatus || strings.TrimSpace(body) != tt.body || resp.Header.Get("Link") != tt.link {
			t.Errorf("%s: %d %s Link %q\nwant %d %s Link %q", tt.query, resp.StatusCode, body, resp.Header.Get("Link"), wantStatus, tt.body, tt.link)
		}
	}
}
