package rewrite

import "regexp"

// The grammar of everything the plugin parses, in one place: each atom is named once, as a
// constant when several expressions use it and as its regexp otherwise, and every regexp of the
// package is built from them at start-up, so that a request only runs compiled matchers. The
// productions use the regexp's own operators: (?:...)* for repeated, (?:...)? for optional, (...)
// for a numbered group, ^...$ for anchored.
//
// Yaegi (speed): regular expressions rather than hand-written loops: under Yaegi a loop over bytes
// is interpreted, a regexp match runs compiled. And constant concatenations rather than helper
// functions composing them, and as few of those as the sharing needs: Yaegi holds every function
// and constant of the plugin in memory, 12 KiB for a one-line function and 2 KiB for a constant
// (BenchmarkYaegiHeap).

const (
	// alphanumeric starts and ends every component of a name, a project or a digest algorithm:
	// lower case only.
	alphanumeric = `[a-z0-9]+`
	// pathComponent is one "/"-separated component of a repository name: alphanumerics joined by
	// one ".", one or two "_", or any number of "-".
	pathComponent = alphanumeric + `(?:(?:\.|_|__|-+)` + alphanumeric + `)*`
	// tag is a manifest reference other than a digest: up to 128 characters.
	tag = `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`
	// digest is "<algorithm>:<encoded>", loose like distribution's, so that Harbor, not the
	// plugin, decides which algorithms exist.
	digest = alphanumeric + `(?:[.+_-]` + alphanumeric + `)*:[a-zA-Z0-9=_-]+`

	// pullPath is the path of a manifest (by tag or digest) or blob request of a name of two or
	// more components, which a pull's lanes and pull path take first (Docker Hub names come so,
	// and they map the same with or without "library/"); singlePullPath of a name of one.
	// Groups: name, endpoint.
	pullEndpoint   = `(/manifests/(?:` + tag + `|` + digest + `)|/blobs/` + digest + `)`
	pullPath       = `/v2/(` + pathComponent + `(?:/` + pathComponent + `)+)` + pullEndpoint
	singlePullPath = `/v2/(` + pathComponent + `)` + pullEndpoint

	// tokenPullQuery is the query of a pull's token request as Go's url.Values encodes it, which
	// is how docker, containerd, podman, skopeo and go-containerregistry ask for an anonymous pull
	// token: scope=repository%3A<name>%3A<actions>&service=<service>, the name's "/" as %2F, the
	// actions' "," as %2C, a service that needs no escaping. singleTokenPullQuery is that of a
	// name of one component. Groups: name, actions, service.
	tokenScopeTail       = `%3A([a-z]+(?:%2C[a-z]+)*)&service=([A-Za-z0-9._-]+)`
	tokenPullQuery       = `scope=repository%3A(` + pathComponent + `(?:%2F` + pathComponent + `)+)` + tokenScopeTail
	singleTokenPullQuery = `scope=repository%3A(` + pathComponent + `)` + tokenScopeTail

	// quotedText is the inside of a quoted-string without escapes, as Harbor writes every
	// parameter of its challenges; a value with escapes goes to the general parser.
	quotedText = `[^"\\]*`
	// errorParam is the error= parameter Harbor adds to a challenge after a refused token.
	errorParam = `,error="` + quotedText + `"`
	// laneChallengeHead and laneChallengeTail frame the project's quoted prefix in the challenge
	// lane's regexp: Harbor's challenge (harborChallengeRE) with a scope naming one repository
	// in that project, without spaces (one scope). Groups: service, the scope after the prefix,
	// the error parameter.
	laneChallengeHead = `Bearer realm="` + quotedText + `",service="(` + quotedText + `)",scope="repository:`
	laneChallengeTail = `([^"\\ :][^"\\ ]*:[^"\\ ]*)"((?:` + errorParam + `)?)`

	// alphanumericChars are the ASCII letters and digits.
	alphanumericChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// tokenChars are the characters of an RFC 9110 token (a challenge's auth-scheme, a parameter's
	// name, an unquoted value), token68Chars those of the RFC 7235 token68 a challenge may carry
	// instead of parameters (before its "=" padding), listSeparators those between the items of a
	// list (spaces, tabs and the commas).
	// Yaegi (speed): strings for strings.IndexByte, one compiled call per character rather than
	// an interpreted function.
	tokenChars     = "!#$%&'*+-.^_`|~" + alphanumericChars
	token68Chars   = "-._~+/" + alphanumericChars
	listSeparators = " \t,"

	// nsEscapes are the characters of a raw query that make its ns= value differ from the
	// registry name it decodes to ("%", "+") or that Traefik turns into a separator (";"): an ns
	// free of them is a byRegistry key as it stands.
	nsEscapes = "%+;"
	// loneNSEscapes adds "&": a query free of them is one ns= pair and nothing else.
	loneNSEscapes = "&" + nsEscapes
)

var (
	// nameRE is a repository name: path components joined by "/".
	nameRE = regexp.MustCompile(`^` + pathComponent + `(?:/` + pathComponent + `)*$`)
	// projectRE is Harbor's stricter project name: alphanumerics joined by one ".", "_" or "-".
	projectRE = regexp.MustCompile(`^` + alphanumeric + `(?:[._-]` + alphanumeric + `)*$`)
	tagRE     = regexp.MustCompile(`^` + tag + `$`)
	digestRE  = regexp.MustCompile(`^` + digest + `$`)
	// uploadRE is the last segment of an upload's URL: Harbor's ids are UUIDs, distribution's
	// opaque; the bound keeps a path from hiding anything else there.
	uploadRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9=_.-]{0,255}$`)
	// hostRE is a DNS name or IP literal with an optional port: nothing that could break out of a
	// quoted realm or a URL when a client's Host header is echoed into one.
	hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
	// pathRE is a configured mirrorPath or tokenPath: "/seg[/seg...]" of plain characters, which
	// a lane can quote into its regexp and a client sends unescaped.
	pathRE = regexp.MustCompile(`^(?:/[A-Za-z0-9._-]+)+$`)
	// unsafeEscapeRE finds an escape in a path that a later decoder could read as "/", "." or
	// "\", or as a second round of escaping, or an escape the path cuts short.
	unsafeEscapeRE = regexp.MustCompile(`(?s)%(?:2[FfEe5]|5[Cc])|%.?$`)

	// pullRE and singlePullRE are MapPull's, tokenRE and singleTokenRE MapTokenPull's.
	pullRE        = regexp.MustCompile(`^` + pullPath + `$`)
	singlePullRE  = regexp.MustCompile(`^` + singlePullPath + `$`)
	tokenRE       = regexp.MustCompile(`^` + tokenPullQuery + `$`)
	singleTokenRE = regexp.MustCompile(`^` + singleTokenPullQuery + `$`)

	// harborChallengeRE is the one shape of challenge Harbor and distribution send. Groups: realm,
	// scope.
	harborChallengeRE = regexp.MustCompile(`^Bearer realm="(` + quotedText + `)",service="` + quotedText +
		`"(?:,scope="(` + quotedText + `)")?(?:` + errorParam + `)?$`)
)
