package rewrite

import (
	"net/url"
	"regexp"
	"strings"
)

// The grammar of everything the plugin parses: every atom named once, the regexps built from
// them at start-up, so that a request only runs compiled matchers.
//
// Yaegi (speed): regular expressions rather than hand-written loops: under Yaegi a loop over
// bytes is interpreted, a regexp match runs compiled.

// The atoms of the registry API (the OCI distribution grammar, as distribution and Harbor read it).
const (
	// alphanumeric starts and ends every component of a name or project: lower case only.
	alphanumeric = `[a-z0-9]+`
	// separator joins the alphanumerics of a name component: one ".", one or two "_", any "-".
	separator = `(?:\.|_|__|-+)`
	// projectSeparator is Harbor's stricter one for a project name: a single ".", "_" or "-".
	projectSeparator = `[._-]`
	// tag is a manifest reference other than a digest: up to 128 characters.
	tag = `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`
	// digestAlgorithm and digestEncoded make a digest, "sha256:<hex>"; loose like distribution's,
	// so that Harbor, not the plugin, decides which algorithms exist.
	digestAlgorithm = alphanumeric + `(?:[.+_-]` + alphanumeric + `)*`
	digestEncoded   = `[a-zA-Z0-9=_-]+`
	// uploadID is the last segment of an upload's URL: Harbor's ids are UUIDs, distribution's
	// opaque; the bound keeps a path from hiding anything else there.
	uploadID = `[a-zA-Z0-9][a-zA-Z0-9=_.-]{0,255}`
	// actions are a scope's comma-separated actions as a form encodes them (pull%2Cpush).
	actions = `[a-z]+(?:%2C[a-z]+)*`
	// service is a token request's service= value when it needs no escaping.
	service = `[A-Za-z0-9._-]+`
	// quotedText is the inside of a quoted-string without escapes, as Harbor writes every
	// parameter of its challenges; a value with escapes goes to the general parser.
	quotedText = `[^"\\]*`
	// scopeChar is a character of one scope inside a quoted challenge parameter: the space
	// separates scopes.
	scopeChar = `[^"\\ ]`
	// host is a DNS name or IP literal with an optional port: nothing that could break out of a
	// quoted realm or a URL when a client's Host header is echoed into one.
	host = `(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?`
	// configuredPath is a mirrorPath or tokenPath: "/seg[/seg...]" of plain characters, which a
	// lane can quote into its regexp and a client sends unescaped.
	configuredPath = `(?:/[A-Za-z0-9._-]+)+`
	// unsafeEscape is an escape in a path that a later decoder could read as "/", "." or "\", or
	// as a second round of escaping, or an escape the path cuts short.
	unsafeEscape = `(?s)%(?:2[FfEe5]|5[Cc])|%.?$`
	// nsEscapes are the characters of a raw query that make its ns= value differ from the
	// registry name it decodes to ("%", "+") or that Traefik turns into a separator (";"): an ns
	// free of them is a byRegistry key as it stands.
	nsEscapes = "%+;"
)

// The productions built from the atoms.
var (
	// pathComponent is one "/"-separated component of a repository name.
	pathComponent = alphanumeric + repeated(separator, alphanumeric)
	// name is a repository name of one or more components; multiName of two or more, which a
	// pull's lanes and pull path take first (Docker Hub names come so), and which map the same with or
	// without "library/".
	name      = pathComponent + repeated(`/`, pathComponent)
	multiName = pathComponent + oneOrMore(`/`, pathComponent)
	// encodedMultiName is multiName inside a form-encoded scope, "/" written %2F.
	encodedMultiName = pathComponent + oneOrMore(`%2F`, pathComponent)
	projectName      = alphanumeric + repeated(projectSeparator, alphanumeric)
	digest           = digestAlgorithm + `:` + digestEncoded
	// pullEndpoint is what follows the name in a pull: a manifest by tag or digest, or a blob.
	pullEndpoint = capture(either(`/manifests/`+either(tag, digest), `/blobs/`+digest))
	// errorParam is the error= parameter Harbor adds to a challenge after a refused token.
	errorParam = `,error="` + quotedText + `"`
)

// The regexps of the package, each anchored.
var (
	nameRE    = regexp.MustCompile(anchored(name))
	projectRE = regexp.MustCompile(anchored(projectName))
	tagRE     = regexp.MustCompile(anchored(tag))
	digestRE  = regexp.MustCompile(anchored(digest))
	uploadRE  = regexp.MustCompile(anchored(uploadID))
	hostRE    = regexp.MustCompile(anchored(host))
	pathRE    = regexp.MustCompile(anchored(configuredPath))
	// unsafeEscapeRE searches: it is not anchored.
	unsafeEscapeRE = regexp.MustCompile(unsafeEscape)

	// pullRE and singlePullRE are MapPull's: groups name, endpoint.
	pullRE       = regexp.MustCompile(anchored(pullPath(multiName)))
	singlePullRE = regexp.MustCompile(anchored(pullPath(pathComponent)))
	// tokenRE and singleTokenRE are MapTokenPull's: groups name, actions, service.
	tokenRE       = regexp.MustCompile(anchored(tokenPullQuery(encodedMultiName)))
	singleTokenRE = regexp.MustCompile(anchored(tokenPullQuery(pathComponent)))

	// harborChallengeRE is the one shape of challenge Harbor and distribution send: groups
	// realm, scope.
	harborChallengeRE = regexp.MustCompile(anchored(`Bearer realm="`, capture(quotedText), `",service="`, quotedText, `"`,
		optional(`,scope="`, capture(quotedText), `"`), optional(errorParam)))
)

// pullPath is the path of a manifest or blob request of a name that nameExpr matches: groups
// name, endpoint.
func pullPath(nameExpr string) string { return `/v2/` + capture(nameExpr) + pullEndpoint }

// pullTemplate expands a pullPath match into the path inside the project of prefix ("hub/").
// Project names hold no "$", so the template expands only the groups.
func pullTemplate(prefix string) string { return "/v2/" + prefix + "${1}${2}" }

// tokenPullQuery is the query of a pull's token request as Go's url.Values encodes it, which is
// how docker, containerd, podman, skopeo and go-containerregistry ask for an anonymous pull token:
// scope=repository%3A<name>%3A<actions>&service=<service>. Groups name, actions, service.
func tokenPullQuery(encodedName string) string {
	return `scope=repository%3A` + capture(encodedName) + `%3A` + capture(actions) + `&service=` + capture(service)
}

// tokenTemplate expands a tokenPullQuery match into the query inside the project of prefix.
func tokenTemplate(prefix string) string {
	return "scope=repository%3A" + url.QueryEscape(prefix) + "${1}%3A${2}&service=${3}"
}

// laneChallenge is Harbor's challenge to a pull lane's request: the shape of harborChallengeRE
// with a scope naming one repository inside the project of prefix. Groups service, the scope
// after the prefix, the error parameter.
func laneChallenge(prefix string) string {
	return anchored(`Bearer realm="`, quotedText, `",service="`, capture(quotedText), `",scope="repository:`,
		literal(prefix), capture(`[^"\\ :]`+scopeChar+`*:`+scopeChar+`*`), `"`, capture(optional(errorParam)))
}

// literal quotes s for a regexp: a configured path or registry name matches only itself.
func literal(s string) string { return regexp.QuoteMeta(s) }

// optional makes the concatenation of res optional.
func optional(res ...string) string { return `(?:` + strings.Join(res, "") + `)?` }

// repeated matches the concatenation of res any number of times; oneOrMore at least once.
func repeated(res ...string) string  { return `(?:` + strings.Join(res, "") + `)*` }
func oneOrMore(res ...string) string { return `(?:` + strings.Join(res, "") + `)+` }

// either matches one of alternatives.
func either(alternatives ...string) string { return `(?:` + strings.Join(alternatives, "|") + `)` }

// capture makes the concatenation of res a numbered group.
func capture(res ...string) string { return `(` + strings.Join(res, "") + `)` }

// anchored makes the concatenation of res match a whole string.
func anchored(res ...string) string { return `^` + strings.Join(res, "") + `$` }
