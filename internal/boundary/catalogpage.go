package boundary

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// harborCatalog is Harbor's whole catalog as an admin gets it: every project, sorted.
const harborCatalog = `{"repositories":["alpha/x","ghcr/owner/app","hub/hub/x","hub/library/hello","hub/team/app","hub0/x","team/secret"]}` + "\n"

func catalogExchange(name, target string) Exchange {
	return Exchange{name: name, method: "GET", target: target,
		harborStatus: 200, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		harborBody: harborCatalog, forwarded: "/v2/_catalog", status: 200}
}

func withCatalogAnswer(e Exchange, status int, body string, link string) Exchange {
	e.bodyHas = body
	e.header2 = map[string]string{"Link": link, "Content-Type": "application/json; charset=utf-8"}
	if status != 200 {
		e.status, e.header2 = status, registryErrorHeaders
	}
	return e
}

// CatalogExchanges: the catalog is paged by the plugin over Harbor's whole list; Harbor gets no
// query of the client's, whatever the client sends, and the client gets only the project's names.
var CatalogExchanges = []Exchange{
	withCatalogAnswer(catalogExchange("whole list", "/v2/_catalog"), 200,
		`{"repositories":["hub/x","library/hello","team/app"]}`+"\n", ""),
	withCatalogAnswer(catalogExchange("first page", "/v2/_catalog?n=1"), 200,
		`{"repositories":["hub/x"]}`+"\n", `</v2/_catalog?last=hub%2Fx&n=1>; rel="next"`),
	withCatalogAnswer(catalogExchange("a page from the Link", "/v2/_catalog?last=hub%2Fx&n=1"), 200,
		`{"repositories":["library/hello"]}`+"\n", `</v2/_catalog?last=library%2Fhello&n=1>; rel="next"`),
	withCatalogAnswer(catalogExchange("last page", "/v2/_catalog?last=library%2Fhello&n=1"), 200,
		`{"repositories":["team/app"]}`+"\n", ""),
	withCatalogAnswer(catalogExchange("a percent in another parameter", "/v2/_catalog?x=%25&n=5"), 200,
		`{"repositories":["hub/x","library/hello","team/app"]}`+"\n", ""),
	withCatalogAnswer(catalogExchange("the word last in another parameter", "/v2/_catalog?q=last&n=2"), 200,
		`{"repositories":["hub/x","library/hello"]}`+"\n", `</v2/_catalog?last=library%2Fhello&n=2>; rel="next"`),
	withCatalogAnswer(catalogExchange("an encoded last naming another project", "/v2/_catalog?l%61st=..%2Fteam&n=1"), 200,
		`{"repositories":["hub/x"]}`+"\n", `</v2/_catalog?last=hub%2Fx&n=1>; rel="next"`),
	withCatalogAnswer(catalogExchange("n not a number: Harbor's 400", "/v2/_catalog?n=ten"), 400, `"code":"BAD_REQUEST"`, ""),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("ns-routed: the Link keeps ns", "/v2/_catalog?ns=ghcr.io&n=5"), 200,
			`{"repositories":["owner/app"]}`+"\n", "")
		e.settings = map[string]interface{}{"project": "hub", "registries": map[string]interface{}{"ghcr.io": "ghcr"}}
		return e
	}(),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("mirrorPath: the Link under it", "/hub/v2/_catalog?n=2"), 200,
			`{"repositories":["hub/x","library/hello"]}`+"\n", `</hub/v2/_catalog?last=library%2Fhello&n=2>; rel="next"`)
		e.settings = map[string]interface{}{"project": "hub", "mirrorPath": "/hub"}
		return e
	}(),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("Harbor's Link and length are replaced", "/v2/_catalog?n=1"), 200,
			`{"repositories":["hub/x"]}`+"\n", `</v2/_catalog?last=hub%2Fx&n=1>; rel="next"`)
		e.harborHeader = http.Header{"Link": {`</v2/_catalog?last=alpha%2Fx&n=1>; rel="next"`}, "Content-Length": {"999"}, "X-Request-Id": {"r1"}}
		e.header2["X-Request-Id"] = "r1"
		e.header2["Content-Length"] = strconv.Itoa(len(`{"repositories":["hub/x"]}` + "\n"))
		return e
	}(),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("without Content-Type it is still filtered", "/v2/_catalog"), 200,
			`{"repositories":["hub/x","library/hello","team/app"]}`+"\n", "")
		e.harborHeader = http.Header{}
		return e
	}(),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("gzip-encoded: refused, never passed", "/v2/_catalog"), 502, `"code":"UNKNOWN"`, "")
		e.harborHeader = http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
		e.harborBody = gzipped(harborCatalog)
		return e
	}(),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("not a catalog: refused", "/v2/_catalog"), 502, `"code":"UNKNOWN"`, "")
		e.harborBody = "team/secret"
		return e
	}(),
	func() Exchange {
		e := withCatalogAnswer(catalogExchange("over the limit: refused, never passed", "/v2/_catalog"), 502, `"code":"UNKNOWN"`, "")
		e.harborBody = `{"repositories":["team/secret","` + strings.Repeat("a", documentLimit) + `"]}`
		return e
	}(),
	{name: "Harbor's 401: the general rules", method: "GET", target: "/v2/_catalog?n=1&last=team%2Fsecret",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Basic realm="harbor"`}, "Content-Type": {"application/json"}},
		harborBody: `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to list catalog"}]}`,
		forwarded:  "/v2/_catalog", status: 401,
		header2: map[string]string{"Www-Authenticate": `Basic realm="harbor"`},
		bodyHas: `unauthorized to list catalog`},
	{name: "Harbor's 401 with a Bearer challenge: realm rewritten", method: "GET", target: "/v2/_catalog",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {RealmIn + `,scope="registry:catalog:*"`}},
		forwarded: "/v2/_catalog", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="registry:catalog:*"`}},
	{name: "HEAD forwarded without the query", method: "HEAD", target: "/v2/_catalog?n=1&last=x",
		forwarded: "/v2/_catalog", status: 200},
}

func gzipped(s string) string {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	_, _ = z.Write([]byte(s))
	_ = z.Close()
	return b.String()
}
