package rewrite

import "strings"

// Kind is which registry API endpoint a path addresses.
type Kind int

// The endpoints of the distribution API that the mirror maps.
const (
	KindBase      Kind = iota // /v2/
	KindCatalog               // /v2/_catalog
	KindManifest              // /v2/<name>/manifests/<reference>
	KindBlob                  // /v2/<name>/blobs/<digest>
	KindUpload                // /v2/<name>/blobs/uploads/ and /v2/<name>/blobs/uploads/<id>
	KindTags                  // /v2/<name>/tags/list
	KindReferrers             // /v2/<name>/referrers/<digest>
)

// Route is a parsed registry API path.
type Route struct {
	Kind Kind
	// Name is the repository name as the client wrote it; empty for KindBase and KindCatalog.
	Name string
	// Endpoint is the path after the name, starting with "/", e.g. "/manifests/latest".
	Endpoint string
}

// ParsePath parses a decoded path that starts with /v2 (after any mirror path is cut off).
// The name, reference, digest and upload id are checked against the registry grammar, so a
// path that parses can only name a repository, never climb out of one.
func ParsePath(p string) (Route, *Error) {
	if p == "/v2" || p == "/v2/" {
		return Route{Kind: KindBase}, nil
	}
	if !strings.HasPrefix(p, "/v2/") {
		return Route{}, notFound("not a registry API path")
	}
	if p == "/v2/_catalog" {
		return Route{Kind: KindCatalog}, nil
	}
	rest := p[len("/v2/"):]
	route, err := splitEndpoint(rest)
	if err != nil {
		return Route{}, err
	}
	if !ValidName(route.Name) {
		return Route{}, nameInvalid("repository name must match the OCI grammar: " + quoteDetail(route.Name))
	}
	return route, nil
}

// splitEndpoint finds the endpoint from the right: references, digests and upload ids hold no
// "/", so the last segments decide, and whatever precedes them is the name.
func splitEndpoint(rest string) (Route, *Error) {
	for _, e := range fixedEndpoints {
		if strings.HasSuffix(rest, e.suffix) && len(rest) > len(e.suffix) {
			return Route{Kind: e.kind, Name: rest[:len(rest)-len(e.suffix)], Endpoint: e.suffix}, nil
		}
	}
	last := strings.LastIndexByte(rest, '/')
	if last <= 0 {
		return Route{}, notFound("unknown registry API path")
	}
	arg := rest[last+1:]
	before := rest[:last]
	sep := strings.LastIndexByte(before, '/')
	if sep <= 0 {
		return Route{}, notFound("unknown registry API path")
	}
	name, endpoint := before[:sep], rest[sep:]
	switch before[sep+1:] {
	case "manifests":
		if !tagRE.MatchString(arg) && !digestRE.MatchString(arg) {
			return Route{}, &Error{400, "MANIFEST_INVALID", "invalid manifest reference", "not a tag or digest: " + quoteDetail(arg)}
		}
		return Route{Kind: KindManifest, Name: name, Endpoint: endpoint}, nil
	case "blobs":
		if !digestRE.MatchString(arg) {
			return Route{}, digestInvalid(arg)
		}
		return Route{Kind: KindBlob, Name: name, Endpoint: endpoint}, nil
	case "referrers":
		if !digestRE.MatchString(arg) {
			return Route{}, digestInvalid(arg)
		}
		return Route{Kind: KindReferrers, Name: name, Endpoint: endpoint}, nil
	case "uploads":
		blobs := strings.LastIndexByte(name, '/')
		if blobs <= 0 || name[blobs+1:] != "blobs" {
			return Route{}, notFound("unknown registry API path")
		}
		if !uploadRE.MatchString(arg) {
			return Route{}, &Error{404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", "invalid upload id"}
		}
		return Route{Kind: KindUpload, Name: name[:blobs], Endpoint: rest[blobs:]}, nil
	}
	return Route{}, notFound("unknown registry API path")
}

var fixedEndpoints = []struct {
	suffix string
	kind   Kind
}{
	{"/tags/list", KindTags},
	{"/blobs/uploads/", KindUpload},
	{"/blobs/uploads", KindUpload},
}

func digestInvalid(arg string) *Error {
	return &Error{400, "DIGEST_INVALID", "provided digest did not match uploaded content", "not a digest: " + quoteDetail(arg)}
}

// UnsafeEscapes reports whether an escaped path hides a "/" or "." (or a second round of
// escaping) that a later decoder could read as a different repository than the one checked.
func UnsafeEscapes(escapedPath string) bool {
	for i := strings.IndexByte(escapedPath, '%'); i >= 0; i = nextPercent(escapedPath, i) {
		if i+2 >= len(escapedPath) {
			return true
		}
		switch escapedPath[i+1 : i+3] {
		case "2F", "2f", "2E", "2e", "25", "5C", "5c":
			return true
		}
	}
	return false
}

func nextPercent(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '%')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
