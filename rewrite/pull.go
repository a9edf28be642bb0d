package rewrite

import (
	"net/url"
	"strings"
)

// maxPullPath is the longest mapped path MapPull returns: one whose name is certainly within
// maxNameLength. Longer ones go to MapRequest, which measures the name itself.
const maxPullPath = len("/v2/") + maxNameLength

// MapPull is the pull path for the requests of a pull: a manifest or blob with no query but
// containerd's lone ns=. It returns the path to send to Harbor, or "" for any other request,
// which MapRequest then maps; where MapPull maps, MapRequest gives the same path (the fuzz tests
// check it).
//
// Yaegi (speed): one compiled regexp call parses, checks and maps the path; each interpreted
// statement costs about as much as the whole match.
func MapPull(p *Projects, path, rawPath, rawQuery string) string {
	t := p.Default
	if rawQuery != "" {
		t = pullProject(p, rawQuery)
	}
	if t == nil || rawPath != "" {
		return ""
	}
	// ReplaceAllString returns its input when nothing matches; a mapped path is always longer.
	// Names of several components are tried first: that is how clients send Docker Hub names.
	mapped := pullRE.ReplaceAllString(path, t.pullTemplate)
	if len(mapped) == len(path) {
		mapped = singlePullRE.ReplaceAllString(path, t.singlePullTemplate)
	}
	if len(mapped) == len(path) || len(mapped) > maxPullPath {
		return ""
	}
	return mapped
}

// FillPull fills x for a pull that a lane or MapPull mapped, as MapRequest would, from the
// client's request target as received (requestTarget: Go's Request.RequestURI, mirrorPath
// included) and one regexp match: the plugin needs x only for some responses, a 401 or an error.
// A request MapPull would not map is filled in by MapRequest itself (x keeps what it got on a
// refusal): a miss must never panic in the middle of a response.
func FillPull(p *Projects, x *Exchange, requestTarget, mirrorPath string) {
	// Parsed as Go's server parses it; Request.URL was that parse before the plugin mapped it.
	u, err := url.ParseRequestURI(requestTarget)
	if err != nil || !strings.HasPrefix(u.Path, mirrorPath) {
		return // the server would not have served it, or not a mirror's request: MapPull never saw it
	}
	path, rawPath, rawQuery := u.Path[len(mirrorPath):], u.RawPath, u.RawQuery
	t := p.Default
	if rawQuery != "" {
		t = pullProject(p, rawQuery)
	}
	single := false
	m := pullRE.FindStringSubmatchIndex(path)
	if m == nil {
		single = true
		m = singlePullRE.FindStringSubmatchIndex(path)
	}
	if t == nil || m == nil || rawPath != "" {
		_ = MapRequest(p, x, path, rawPath, rawQuery)
		return
	}
	prefix := t.prefix
	if single {
		prefix = t.singlePrefix
	}
	x.Route.Kind = KindBlob
	if path[m[4]+1] == 'm' {
		x.Route.Kind = KindManifest
	}
	x.Route.Name = path[m[2]:m[3]]
	x.Route.Endpoint = path[m[4]:]
	x.Project = t
	x.MappedName = prefix + x.Route.Name
	x.Path = "/v2/" + x.MappedName + x.Route.Endpoint
	x.RequestURI = x.Path
	x.RawQuery = ""
}

// pullProject is the project of a pull whose query is containerd's lone ns=<registry>.
func pullProject(p *Projects, rawQuery string) *Project {
	if strings.HasPrefix(rawQuery, "ns=") && !strings.ContainsAny(rawQuery, loneNSEscapes) {
		return p.byNS[rawQuery[len("ns="):]]
	}
	return nil
}

// MapTokenPull is the pull path for the token request of a pull: a GET query with containerd's
// ns= (if any), one repository scope and the service, as above. It returns the query to send to
// Harbor, or "" for any other request, which MapTokenRequest then maps; where MapTokenPull maps,
// MapTokenRequest gives the same query (the fuzz tests check it).
func MapTokenPull(p *Projects, rawQuery string) string {
	t := p.Default
	query := rawQuery
	if strings.HasPrefix(query, "ns=") {
		t, query = tokenProject(p, query)
	}
	if t == nil {
		return ""
	}
	// Yaegi (speed): as in MapPull, written out rather than shared; a call costs about 1 µs.
	mapped := tokenRE.ReplaceAllString(query, t.tokenTemplate)
	if len(mapped) == len(query) {
		mapped = singleTokenRE.ReplaceAllString(query, t.singleTokenTemplate)
	}
	// A query no longer than a name may be keeps the mapped name within maxNameLength.
	if len(mapped) == len(query) || len(mapped) > maxNameLength {
		return ""
	}
	return mapped
}

// tokenProject cuts a leading ns=<registry>& from a token query and returns its project.
func tokenProject(p *Projects, rawQuery string) (*Project, string) {
	pair, rest, _ := strings.Cut(rawQuery, "&")
	if strings.ContainsAny(pair, nsEscapes) {
		return nil, ""
	}
	return p.byNS[pair[len("ns="):]], rest
}
