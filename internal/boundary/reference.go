package boundary

import (
	"strings"
)

// harborInvalidReference is Harbor v2.15.2's answer to a manifest reference that is neither a tag
// nor a digest (src/server/middleware/artifactinfo: 404 NOT_FOUND, before authentication), less
// the newline Harbor's encoder adds.
const harborInvalidReference = `{"errors":[{"code":"NOT_FOUND","message":"invalid reference format"}]}`

// Invalid references are answered as Harbor answers them, without forwarding anything: the OCI
// conformance suite asks for .INVALID_MANIFEST_NAME and expects 404.
var ReferenceExchanges = []Exchange{
	{name: "GET of the conformance suite's nonexistent manifest", method: "GET", target: "/v2/library/hello/manifests/.INVALID_MANIFEST_NAME",
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "HEAD of the conformance suite's nonexistent manifest", method: "HEAD", target: "/v2/library/hello/manifests/.INVALID_MANIFEST_NAME",
		status: 404, header2: registryErrorHeaders},
	{name: "DELETE of an invalid reference", method: "DELETE", target: "/v2/team/app/manifests/.bad",
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "one-component name, invalid reference", method: "GET", target: "/v2/hello/manifests/-x",
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "ns-routed, invalid reference", method: "GET", target: "/v2/owner/app/manifests/a:b:c?ns=docker.io",
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "dot-dot reference still refused", method: "GET", target: "/v2/library/hello/manifests/..",
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "reference of 129 characters", method: "GET", target: "/v2/library/hello/manifests/" + strings.Repeat("t", 129),
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "referrers by tag forwarded: Harbor answers it", method: "GET", target: "/v2/library/hello/referrers/latest",
		forwarded: "/v2/hub/library/hello/referrers/latest", status: 200},
	{name: "referrers, invalid reference", method: "GET", target: "/v2/library/hello/referrers/sha256:zz!",
		status: 404, header2: registryErrorHeaders, bodyHas: harborInvalidReference},
	{name: "blob digest still DIGEST_INVALID", method: "GET", target: "/v2/library/hello/blobs/latest",
		status: 400, header2: registryErrorHeaders, bodyHas: `"code":"DIGEST_INVALID"`},
}
