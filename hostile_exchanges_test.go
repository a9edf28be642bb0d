package harbormirror

import (
	"net/http"
	"testing"
)

// hostileExchanges are the plugin-level cases of issue #13's classes (bounds, parameters read from
// the body, encoded bodies, challenge lists, origin-fix-only realms), compiled and under Yaegi.
var hostileExchanges = []exchange{
	// Class 5: a Www-Authenticate value is an RFC 7235 list.
	{name: "challenge list: token68 scheme before Harbor's Bearer challenge",
		method: "GET", target: "/v2/library/hello/manifests/latest", header: map[string]string{"X-Forwarded-Proto": "https"},
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Negotiate YWJjZA==, ` + realmIn + `,scope="repository:hub/library/hello:pull"`}},
		forwarded: "/v2/hub/library/hello/manifests/latest", status: 401,
		header2: map[string]string{"Www-Authenticate": `Negotiate YWJjZA==, Bearer realm="https://mirror.example.com/service/token",service="harbor-registry",scope="repository:library/hello:pull"`}},
	{name: "challenge list: two Bearer challenges and a quoted comma",
		method: "GET", target: "/v2/team/app/tags/list",
		harborStatus: 401, harborHeader: http.Header{"Www-Authenticate": {`Digest realm="a, Bearer realm=\"x\"", ` + realmIn + `,scope="repository:hub/team/app:pull", Bearer realm="http://harbor-core:8080/service/token"`}},
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

func TestHostileExchanges(t *testing.T)      { runExchangeTable(t, buildCompiled, hostileExchanges) }
func TestYaegiHostileExchanges(t *testing.T) { runExchangeTable(t, buildYaegi, hostileExchanges) }
