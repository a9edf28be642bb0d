package boundary

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// ScopeParams is n scope=repository:team/r<i>:pull parameters; ScopeList is n such scopes in one
// parameter, space-separated.
func ScopeParams(n int) string {
	pairs := make([]string, n)
	for i := range pairs {
		pairs[i] = fmt.Sprintf("scope=repository%%3Ateam%%2Fr%d%%3Apull", i)
	}
	return strings.Join(pairs, "&")
}

func ScopeList(n int) string {
	scopes := make([]string, n)
	for i := range scopes {
		scopes[i] = fmt.Sprintf("repository%%3Ateam%%2Fr%d%%3Apull", i)
	}
	return "scope=" + strings.Join(scopes, "+")
}

// mappedScopeParams is ScopeParams as Harbor must receive it.
func mappedScopeParams(n int) string {
	return strings.ReplaceAll(ScopeParams(n), "repository%3Ateam", "repository%3Ahub%2Fteam")
}

var gzipJSON = http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}

var formHeader = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

// HostileExchanges are the plugin-level cases of issue #13's classes (bounds, parameters read from
// the body, encoded bodies, challenge lists, origin-fix-only realms), compiled and under Yaegi.
var HostileExchanges = []Exchange{
	// Class 1: bounded work per request; refused before any per-parameter work.
	{name: "bounds: token GET with MaxScopes scope parameters is mapped",
		method: "GET", target: "/service/token?service=harbor-registry&" + ScopeParams(rewrite.MaxScopes),
		forwarded: "/service/token?service=harbor-registry&" + mappedScopeParams(rewrite.MaxScopes), status: 200},
	{name: "bounds: token GET with one scope parameter too many",
		method: "GET", target: "/service/token?service=harbor-registry&" + ScopeParams(rewrite.MaxScopes+1),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: token GET with one space-separated scope too many",
		method: "GET", target: "/service/token?service=harbor-registry&" + ScopeList(rewrite.MaxScopes+1),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: token GET with %20-separated scopes over the bound",
		method: "GET", target: "/service/token?service=harbor-registry&" + strings.ReplaceAll(ScopeList(rewrite.MaxScopes+1), "+", "%20"),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: token GET with too many parameters",
		method: "GET", target: "/service/token?scope=repository%3Ateam%2Fx%3Apull" + strings.Repeat("&a=b", rewrite.MaxQueryParams),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: token GET target over the bound",
		method: "GET", target: "/service/token?scope=repository%3Ateam%2Fx%3Apull&pad=" + strings.Repeat("p", rewrite.MaxRequestTarget),
		status: 414, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: token POST form with too many scopes",
		method: "POST", target: "/service/token", header: formHeader, body: "grant_type=password&service=harbor-registry&" + ScopeList(rewrite.MaxScopes+1),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: token POST form with too many parameters",
		method: "POST", target: "/service/token", header: formHeader, body: "grant_type=password" + strings.Repeat("&a=b", rewrite.MaxQueryParams),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: catalog with too many parameters",
		method: "GET", target: "/v2/_catalog?n=1" + strings.Repeat("&%6C%61%73%74=x", rewrite.MaxQueryParams),
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: pull with a query over the bound",
		method: "GET", target: "/v2/library/hello/manifests/latest?ns=docker.io&pad=" + strings.Repeat("p", rewrite.MaxRequestTarget),
		status: 414, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: upload path of escapes over the bound",
		method: "PATCH", target: "/v2/team/app/blobs/uploads/" + strings.Repeat("%41", rewrite.MaxRequestTarget/3+1),
		status: 414, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: upload PUT with a long _state within the bound is mapped",
		method: "PUT", target: "/v2/team/app/blobs/uploads/u-1?_state=" + strings.Repeat("s", 4<<10) + "&digest=" + Digest,
		forwarded: "/v2/hub/team/app/blobs/uploads/u-1?_state=" + strings.Repeat("s", 4<<10) + "&digest=" + Digest, status: 200},

	{name: "bounds: a Host longer than a DNS name is not echoed into a realm",
		method: "GET", target: "/v2/library/hello/manifests/latest", host: strings.Repeat("a.", 129) + "bc",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 400, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "bounds: a Host of a DNS name's length and a port is echoed",
		method: "GET", target: "/v2/", host: strings.Repeat("a.", 126) + "b:65535",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {RealmIn}},
		forwarded: "/v2/", status: 401, header2: map[string]string{"Www-Authenticate": `Bearer realm="http://` + strings.Repeat("a.", 126) + `b:65535/service/token",service="harbor-registry"`}},

	// Class 2: the registry reads mount, from, digest and _state with FormValue, so from a form body
	// too (before the query); Harbor's permission check reads only the query.
	{name: "form body: upload POST with from= in a urlencoded body",
		method: "POST", target: "/v2/team/app/blobs/uploads/?mount=" + Digest + "&from=team%2Fbase", header: formHeader,
		body:   "from=other%2Fsecret&mount=" + Digest,
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "form body: upload POST with a form type in odd case and parameters",
		method: "POST", target: "/v2/team/app/blobs/uploads/", header: map[string]string{"Content-Type": `Application/X-WWW-Form-Urlencoded; charset="utf-8"`},
		body:   "from=other%2Fsecret&mount=" + Digest,
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "form body: upload POST with an invalid media parameter (Go still reads the form)",
		method: "POST", target: "/v2/team/app/blobs/uploads/", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; =x"},
		body:   "from=other%2Fsecret&mount=" + Digest,
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "form body: upload POST with a multipart form",
		method: "POST", target: "/v2/team/app/blobs/uploads/", header: map[string]string{"Content-Type": "multipart/form-data; boundary=b"},
		body:   "--b\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nother/secret\r\n--b--\r\n",
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "form body: upload PUT with digest= in the body",
		method: "PUT", target: "/v2/team/app/blobs/uploads/u-1?_state=abc%3D&digest=" + Digest, header: formHeader,
		body:   "digest=sha256:1111111111111111111111111111111111111111111111111111111111111111",
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "form body: upload PATCH of form type",
		method: "PATCH", target: "/v2/team/app/blobs/uploads/u-1?_state=abc%3D", header: formHeader, body: "_state=x",
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "form body: a monolithic upload of octet-stream passes",
		method: "POST", target: "/v2/team/app/blobs/uploads/?digest=" + Digest, header: map[string]string{"Content-Type": "application/octet-stream"},
		body: "from=other%2Fsecret", forwarded: "/v2/hub/team/app/blobs/uploads/?digest=" + Digest, forwardedBody: "from=other%2Fsecret", status: 200},

	// Class 3: encoded bodies are decoded within bounds or refused.
	{name: "encoded: token POST with Content-Encoding gzip",
		method: "POST", target: "/service/token", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
		body:   "scope=repository%3Aother%2Fsecret%3Apull",
		status: 415, header2: registryErrorHeaders, bodyHas: `"code":"UNSUPPORTED"`},
	{name: "encoded: token POST with Content-Encoding identity is mapped",
		method: "POST", target: "/service/token", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "identity"},
		body: "scope=repository%3Ateam%2Fx%3Apull", forwarded: "/service/token", forwardedBody: "scope=repository%3Ahub%2Fteam%2Fx%3Apull", status: 200},

	{name: "encoded: a gzip tags/list is decoded and names the client's repository",
		method: "GET", target: "/v2/library/hello/tags/list",
		harborHeader: gzipJSON, harborBody: gzipped(`{"name":"hub/library/hello","tags":["latest"]}`),
		forwarded: "/v2/hub/library/hello/tags/list", status: 200,
		header2: map[string]string{"Content-Encoding": "", "Content-Length": "42"}, bodyHas: `{"name":"library/hello","tags":["latest"]}`},
	{name: "encoded: a gzip _catalog is refused (the catalog page reads only plain JSON)",
		method: "GET", target: "/v2/_catalog",
		harborHeader: gzipJSON, harborBody: gzipped(`{"repositories":["hub/library/hello","other/secret"]}`),
		forwarded: "/v2/_catalog", status: 502, header2: registryErrorHeaders},
	{name: "encoded: a gzip error document of the general path loses the project",
		method: "GET", target: "/v2/library/nope/tags/list",
		harborStatus: 404, harborHeader: gzipJSON, harborBody: gzipped(`{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":"hub/library/nope"}]}`),
		forwarded: "/v2/hub/library/nope/tags/list", status: 404,
		header2: map[string]string{"Content-Encoding": ""}, bodyHas: `"detail":"library/nope"`},
	{name: "encoded: a gzip error document of a pull lane's 401 loses the project",
		method: "GET", target: "/v2/library/hello/manifests/latest",
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Content-Encoding": {"gzip"},
			"Www-Authenticate": {RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		harborBody: gzipped(HarborUnauthorized),
		forwarded:  "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Content-Encoding": "", "Www-Authenticate": `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`},
		bodyHas: clientUnauthorized},
	{name: "encoded: an encoding the plugin cannot decode is refused",
		method: "GET", target: "/v2/library/hello/tags/list",
		harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"br"}}, harborBody: `{"name":"hub/library/hello","tags":[]}`,
		forwarded: "/v2/hub/library/hello/tags/list", status: 502, header2: registryErrorHeaders},
	{name: "encoded: a gzip document decoding past MaxRewrittenBody is refused",
		method: "GET", target: "/v2/_catalog",
		harborHeader: gzipJSON, harborBody: gzipped(`{"repositories":["other/secret"],"pad":"` + strings.Repeat(" ", rewrite.MaxRewrittenBody) + `"}`),
		forwarded: "/v2/_catalog", status: 502, header2: registryErrorHeaders},
	{name: "encoded: corrupt gzip is refused",
		method: "GET", target: "/v2/_catalog",
		harborHeader: gzipJSON, harborBody: gzipped(`{"repositories":["other/secret"]}`)[:20],
		forwarded: "/v2/_catalog", status: 502, header2: registryErrorHeaders},
	{name: "content type: a _catalog without Content-Type is filtered",
		method: "GET", target: "/v2/_catalog",
		harborBody: `{"repositories":["hub/library/hello","other/secret"]}`,
		forwarded:  "/v2/_catalog", status: 200, bodyHas: `{"repositories":["library/hello"]}`},
	{name: "content type: a _catalog of Application/JSON is filtered",
		method: "GET", target: "/v2/_catalog",
		harborHeader: http.Header{"Content-Type": {"Application/JSON"}}, harborBody: `{"repositories":["hub/library/hello","other/secret"]}`,
		forwarded: "/v2/_catalog", status: 200, bodyHas: `{"repositories":["library/hello"]}`},
	{name: "content type: a _catalog that is not JSON is refused",
		method: "GET", target: "/v2/_catalog",
		harborHeader: http.Header{"Content-Type": {"text/plain"}}, harborBody: `hub/library/hello other/secret`,
		forwarded: "/v2/_catalog", status: 502, header2: registryErrorHeaders},
	{name: "content type: a tags/list that is not JSON and names the project is refused",
		method: "GET", target: "/v2/library/hello/tags/list",
		harborHeader: http.Header{"Content-Type": {"text/html"}}, harborBody: `<p>hub/library/hello</p>`,
		forwarded: "/v2/hub/library/hello/tags/list", status: 502, header2: registryErrorHeaders},
	{name: "content type: a pull lane's 401 with an untyped error document loses the project",
		method: "GET", target: "/v2/library/hello/manifests/latest",
		harborStatus: 401, harborHeader: http.Header{"Content-Length": {strconv.Itoa(len(HarborUnauthorized))},
			"Www-Authenticate": {RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		harborBody: HarborUnauthorized, forwarded: "/v2/hub/library/hello/manifests/latest", status: 401, bodyHas: clientUnauthorized,
		header2: map[string]string{"Content-Length": strconv.Itoa(len(clientUnauthorized)), "Www-Authenticate": `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "content type: a pull lane's 401 with an Application/Json error document loses the project",
		method: "GET", target: "/v2/library/hello/manifests/latest",
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"Application/Json"}, "Content-Length": {strconv.Itoa(len(HarborUnauthorized))},
			"Www-Authenticate": {RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		harborBody: HarborUnauthorized, forwarded: "/v2/hub/library/hello/manifests/latest", status: 401, bodyHas: clientUnauthorized},
	{name: "content type: an error document of APPLICATION/JSON loses the project",
		method: "GET", target: "/v2/nope/manifests/latest",
		harborStatus: 404, harborHeader: http.Header{"Content-Type": {"APPLICATION/JSON; charset=utf-8"}, "Content-Length": {strconv.Itoa(len(harborNotFound))}},
		harborBody: harborNotFound, forwarded: "/v2/hub/library/nope/manifests/latest", status: 404, bodyHas: clientLibraryNotFound},

	// Class 5: a Www-Authenticate value is an RFC 7235 list.
	{name: "challenge list: token68 scheme before Harbor's Bearer challenge",
		method: "GET", target: "/v2/library/hello/manifests/latest", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Negotiate YWJjZA==, ` + RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Negotiate YWJjZA==, Bearer realm="https://mirror.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "challenge list: two Bearer challenges and a quoted comma",
		method: "GET", target: "/v2/team/app/tags/list",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Digest realm="a, Bearer realm=\"x\"", ` + RealmIn + `,scope="repository:hub/team/app:pull", Bearer realm="http://harbor-core:8080/service/token"`}},
		forwarded: "/v2/hub/team/app/tags/list", status: 401,
		header2: map[string]string{"Www-Authenticate": `Digest realm="a, Bearer realm=\"x\"", Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="repository:team/app:pull", Bearer realm="http://mirror.example.com/service/token"`}},

	// Class 7: origin-fix-only mode changes only this host's URLs.
	{name: "origin-fix-only: a realm on another host stays",
		settings: map[string]interface{}{}, host: "harbor.example.com",
		method: "GET", target: "/v2/team/app/manifests/v1", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Bearer realm="https://auth.example.org/token",service="harbor-registry",scope="repository:team/app:pull"`}},
		forwarded: "/v2/team/app/manifests/v1", status: 401,
		header2: map[string]string{"Www-Authenticate": `Bearer realm="https://auth.example.org/token",service="harbor-registry",scope="repository:team/app:pull"`}},
	{name: "origin-fix-only: a list with a token68 challenge and this host's realm",
		settings: map[string]interface{}{}, host: "harbor.example.com",
		method: "GET", target: "/v2/", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Negotiate YWJjZA==, Bearer realm="http://harbor.example.com/service/token",service="harbor-registry"`}},
		forwarded: "/v2/", status: 401,
		header2: map[string]string{"Www-Authenticate": `Negotiate YWJjZA==, Bearer realm="https://harbor.example.com/service/token",service="harbor-registry"`}},
}
