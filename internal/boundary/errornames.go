package boundary

import (
	"net/http"
	"strconv"
)

// A repository whose name begins with the project's own name (hub/x on project hub, hub/hub/x in
// Harbor) loses exactly one project prefix in Harbor's error documents, and the pull lane and the
// general path answer the same 401 with the same body.
const (
	harborOwnNameUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/hub/x, action: pull"}]}` + "\n"
	clientOwnNameUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: hub/x, action: pull"}]}` + "\n"
	harborOwnNameNotFound     = `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":[{"Name":"hub/hub/x"},{"Name":"hub/hub/hub/y"}]}]}`
	clientOwnNameNotFound     = `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":[{"Name":"hub/x"},{"Name":"hub/hub/y"}]}]}`
)

func ownNameUnauthorized(name, target, forwarded string) Exchange {
	return Exchange{name: name, method: "GET", target: target,
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"},
			"Content-Length":   {strconv.Itoa(len(harborOwnNameUnauthorized))},
			"Www-Authenticate": {RealmIn + `,scope="repository:hub/hub/x:pull"`}},
		harborBody: harborOwnNameUnauthorized,
		forwarded:  forwarded, status: 401,
		header2: map[string]string{"Content-Length": strconv.Itoa(len(clientOwnNameUnauthorized)),
			"Www-Authenticate": `Bearer realm="http://mirror.example.com/service/token",service="harbor-registry",scope="repository:hub/x:pull"`},
		bodyHas: clientOwnNameUnauthorized}
}

var OwnNameExchanges = []Exchange{
	ownNameUnauthorized("401 to hub/x by the pull lane", "/v2/hub/x/manifests/latest", "/v2/hub/hub/x/manifests/latest"),
	ownNameUnauthorized("401 to hub/x by the general path", "/v2/hub/x/manifests/latest?x=1", "/v2/hub/hub/x/manifests/latest?x=1"),
	{name: "404 to hub/x names every repository without one project prefix",
		method: "GET", target: "/v2/hub/x/manifests/latest?x=1",
		harborStatus: 404, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(harborOwnNameNotFound))}},
		harborBody: harborOwnNameNotFound,
		forwarded:  "/v2/hub/hub/x/manifests/latest?x=1", status: 404,
		header2: map[string]string{"Content-Length": strconv.Itoa(len(clientOwnNameNotFound))},
		bodyHas: clientOwnNameNotFound},
}
