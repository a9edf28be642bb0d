package rewrite

import (
	"net/http"
	"strings"
)

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

// parsePath parses into r a decoded path that starts with /v2 (after any mirror path is cut off).
// The name, reference, digest and upload id are checked against the registry grammar, so a
// path that parses can only name a repository, never climb out of one. References, digests and
// upload ids hold no "/", so the last segments decide the endpoint and whatever precedes them is
// the name.
func parsePath(r *Route, p string) *Error {
	if p == "/v2" || p == "/v2/" {
		r.Kind = KindBase
		return nil
	}
	if !strings.HasPrefix(p, "/v2/") {
		return notFound("not a registry API path")
	}
	if p == "/v2/_catalog" {
		r.Kind = KindCatalog
		return nil
	}
	rest := p[len("/v2/"):]
	last := strings.LastIndexByte(rest, '/')
	if last <= 0 {
		return notFound("unknown registry API path")
	}
	sep := strings.LastIndexByte(rest[:last], '/')
	if sep <= 0 {
		return notFound("unknown registry API path")
	}
	arg := rest[last+1:]
	r.Name, r.Endpoint = rest[:sep], rest[sep:]
	switch rest[sep+1 : last] {
	case "manifests":
		r.Kind = KindManifest
		if !tagRE.MatchString(arg) && !digestRE.MatchString(arg) {
			return invalidReference()
		}
	case "blobs":
		if arg == "uploads" {
			r.Kind = KindUpload // POST /v2/<name>/blobs/uploads without the slash
			break
		}
		r.Kind = KindBlob
		if !digestRE.MatchString(arg) {
			return digestInvalid(arg)
		}
	case "referrers":
		// Harbor reads a tag here too, and answers it itself (400 with a token, 401 without).
		r.Kind = KindReferrers
		if !tagRE.MatchString(arg) && !digestRE.MatchString(arg) {
			return invalidReference()
		}
	case "tags":
		if arg != "list" {
			return notFound("unknown registry API path")
		}
		r.Kind = KindTags
	case "uploads":
		blobs := strings.LastIndexByte(r.Name, '/')
		if blobs <= 0 || r.Name[blobs:] != "/blobs" {
			return notFound("unknown registry API path")
		}
		r.Kind, r.Name, r.Endpoint = KindUpload, r.Name[:blobs], rest[blobs:]
		if arg != "" && !uploadRE.MatchString(arg) {
			return &Error{404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", "invalid upload id"}
		}
	default:
		return notFound("unknown registry API path")
	}
	// Yaegi (speed): validName, inlined.
	if len(r.Name) > maxNameLength || !nameRE.MatchString(r.Name) {
		return nameInvalid("repository name must match the OCI grammar: " + quoteDetail(r.Name))
	}
	return nil
}

// invalidReference is Harbor's answer to a manifest or referrers reference that is neither a tag
// nor a digest (its artifactinfo middleware, before any authentication): 404 NOT_FOUND, which is
// what the OCI conformance suite expects for ".INVALID_MANIFEST_NAME".
func invalidReference() *Error {
	return &Error{http.StatusNotFound, "NOT_FOUND", "invalid reference format", ""}
}

// digestInvalid refuses a blob path whose digest is not one. Harbor's own answer there is a 401
// without a challenge ("un-recognized request"), which would send a client after a token that
// cannot help; DIGEST_INVALID is the distribution spec's code.
func digestInvalid(arg string) *Error {
	return &Error{400, "DIGEST_INVALID", "provided digest did not match uploaded content", "not a digest: " + quoteDetail(arg)}
}

// unsafeEscapes reports whether an escaped path hides a "/" or "." (or a second round of
// escaping, or a backslash) that a later decoder could read as another repository than the one
// checked, or ends in a truncated escape.
// Yaegi (speed): one compiled regexp match; an interpreted loop over the escapes cost Yaegi milliseconds for a path of a few thousand.
func unsafeEscapes(escapedPath string) bool {
	return strings.IndexByte(escapedPath, '%') >= 0 && unsafeEscapeRE.MatchString(escapedPath)
}
