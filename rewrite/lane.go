package rewrite

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Lanes recognise, check and map the two requests a pull is made of, each in one compiled regexp
// call over the request target exactly as the client sent it (path and query together, escapes
// included). Yaegi (speed): a single ReplaceAllString costs less than the few interpreted
// statements it replaces. Anything a lane does not match takes the pull path (MapPull and
// MapTokenPull), then the general path (MapRequest and MapTokenRequest), which maps whatever a lane
// matches to the same request target (TestTiersAgree and FuzzTiers check it at the plugin boundary).
type Lanes struct {
	// Pull matches a manifest or blob request of a name of two or more components in the default
	// project: no query, or only the ?ns= of a registry that the default project serves.
	Pull *regexp.Regexp
	// PullTemplate expands a Pull match into the path for Harbor: "/v2/hub/${1}${2}".
	PullTemplate string
	// Token matches the anonymous-style GET token request of such a pull as every client sends it:
	// <mirror path><token path>?[ns=<registry>&]scope=repository%3A<name>%3A<actions>&service=<s>.
	Token *regexp.Regexp
	// TokenTemplate expands a Token match into the request target for Harbor's token service.
	TokenTemplate string
	// Challenge matches Harbor's challenge to a Pull request (the one shape harborChallengeRE
	// knows) whose scope names a repository inside the default project; ChallengeTail follows the
	// realm in its replacement: Challenge.ReplaceAllString(value, `Bearer realm="`+realm+ChallengeTail)
	// gives what Challenge gives for that exchange.
	Challenge     *regexp.Regexp
	ChallengeTail string
	// Host is what Origin accepts as a Host header.
	Host *regexp.Regexp
	// ErrorNames is ErrorBody for an error document of a Pull request.
	ErrorNames *strings.Replacer
	// MaxPull and MaxToken bound what a lane forwards: a mapped request target no longer than that holds a
	// name within maxNameLength. A longer one takes the general path, which measures the name.
	MaxPull, MaxToken int
}

// NewLanes builds the lanes of a configuration; nil without a default project, as then every
// request names its registry with ?ns= or none maps.
func NewLanes(p *Projects, mirrorPath, tokenPath string) *Lanes {
	if p.Default == nil {
		return nil
	}
	t := p.Default
	ns := sameProjectNS(p)
	pullQuery, tokenQuery := "", ""
	if ns != "" {
		pullQuery = `(?:\?ns=(?:` + ns + `))?`
		tokenQuery = `(?:ns=(?:` + ns + `)&)?`
	}
	return &Lanes{
		Pull:          regexp.MustCompile(`^` + regexp.QuoteMeta(mirrorPath) + pullPath + pullQuery + `$`),
		PullTemplate:  t.pullTemplate,
		Token:         regexp.MustCompile(`^` + regexp.QuoteMeta(mirrorPath+tokenPath) + `\?` + tokenQuery + tokenPullQuery + `$`),
		TokenTemplate: tokenPath + "?" + t.tokenTemplate,
		Challenge:     regexp.MustCompile(`^` + laneChallengeHead + regexp.QuoteMeta(t.prefix) + laneChallengeTail + `$`),
		ChallengeTail: `",service="${1}",scope="repository:${2}"${3}`,
		Host:          hostRE,
		ErrorNames:    t.errorNames,
		MaxPull:       maxPullPath,
		MaxToken:      len(tokenPath) + len("?") + maxNameLength,
	}
}

// sameProjectNS is the alternation of the ns values, as a query holds them unescaped, that route
// to the default project: a name of several components maps the same way with or without them.
func sameProjectNS(p *Projects) string {
	var names []string
	for ns, t := range p.byNS {
		if t.Name == p.Default.Name && url.QueryEscape(ns) == ns {
			names = append(names, regexp.QuoteMeta(ns))
		}
	}
	sort.Strings(names)
	return strings.Join(names, "|")
}
