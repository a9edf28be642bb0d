package rewrite

import (
	"encoding/json"
	"net/url"
	"strings"
)

// realm is the token endpoint handed to clients. In mirror mode it is always the mirror's own,
// carrying the request's ns so the token request maps into the same project. In
// origin-fix-only mode a realm on this host (or a relative one) keeps its path and gets the public
// origin; a realm on another host is left as it is.
func realm(x *Exchange, harborRealm string) string {
	if x.Project == nil {
		// Only a realm on this host moves: a token service on another host is not ours to change.
		if origin, rest, ok := splitOrigin(harborRealm); ok && (origin == "" || isLocal(x, hostOf(origin))) {
			return x.Origin + rest
		}
		return harborRealm
	}
	return x.Origin + x.RealmPath + x.Project.realmQuery
}

// URL rewrites a Location or Link target. URLs on other hosts (object-storage redirects)
// and forms it does not recognise are returned unchanged. The second result is false when the
// URL must be dropped: a catalog page link that continues past the project.
func URL(x *Exchange, raw string) (string, bool) {
	origin, rest, ok := splitOrigin(raw)
	if !ok || (origin != "" && !isLocal(x, hostOf(origin))) {
		return raw, true
	}
	path, suffix := rest, ""
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		path, suffix = rest[:i], rest[i:]
	}
	if x.Project != nil {
		path, suffix, ok = unmapPath(x, path, suffix)
		if !ok {
			return "", false
		}
	}
	if origin == "" {
		return path + suffix, true
	}
	return x.Origin + path + suffix, true
}

// Link rewrites every <URL> in a Link header value, dropping links that must not be followed.
func Link(x *Exchange, value string) string {
	if strings.IndexByte(value, '<') < 0 {
		return value
	}
	var links []string
	for _, link := range splitLinks(value) {
		open := strings.IndexByte(link, '<')
		end := strings.IndexByte(link, '>')
		if open < 0 || end < open {
			links = append(links, link)
			continue
		}
		target, keep := URL(x, link[open+1:end])
		if keep {
			links = append(links, link[:open+1]+target+link[end:])
		}
	}
	return strings.Join(links, ",")
}

// splitLinks splits a Link value on the commas between links, not those inside <...> or quotes.
func splitLinks(value string) []string {
	var links []string
	start, inURL, inQuote := 0, false, false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == '<' && !inQuote:
			inURL = true
		case c == '>' && !inQuote:
			inURL = false
		case c == '"' && !inURL:
			inQuote = !inQuote
		case c == ',' && !inURL && !inQuote:
			links = append(links, value[start:i])
			start = i + 1
		}
	}
	return append(links, value[start:])
}

// unmapPath strips the project from a registry path and puts the mirror path back in front.
func unmapPath(x *Exchange, path, suffix string) (string, string, bool) {
	switch {
	case strings.HasPrefix(path, "/v2/") && strings.HasPrefix(path[len("/v2/"):], x.Project.prefix):
		path = "/v2/" + path[len("/v2/")+len(x.Project.prefix):]
	case path == "/v2/_catalog":
		var ok bool
		suffix, ok = unmapCatalogLast(x.Project, suffix)
		if !ok {
			return "", "", false
		}
	default:
		return path, suffix, true
	}
	return x.MirrorPath + path, suffix, true
}

// unmapCatalogLast turns last=<project>/<name> back into the client's name. A last= outside the
// project means Harbor's listing has moved past it, so the page link is dropped.
func unmapCatalogLast(t *Project, suffix string) (string, bool) {
	if !strings.HasPrefix(suffix, "?") {
		return suffix, true
	}
	last, rest, found := cutParam(suffix[1:], "last")
	if !found {
		return suffix, true
	}
	name, inProject := unmapName(t, last)
	if !inProject {
		return "", false
	}
	if rest != "" {
		rest = "&" + rest
	}
	return "?last=" + url.QueryEscape(name) + rest, true
}

func isLocal(x *Exchange, host string) bool {
	return strings.EqualFold(host, hostOf(x.Origin)) || strings.EqualFold(host, x.RequestHost)
}

// splitOrigin splits "scheme://host/rest" or "//host/rest" into its origin and "/rest", and
// accepts "/rest" with an empty origin. Anything else (a path without a leading slash, an
// opaque URI) is not ok.
func splitOrigin(raw string) (origin, rest string, ok bool) {
	if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
		return "", raw, true
	}
	hostStart := 0
	if strings.HasPrefix(raw, "//") {
		hostStart = 2
	} else if i := strings.Index(raw, "://"); i > 0 && isScheme(raw[:i]) {
		hostStart = i + 3
	} else {
		return "", "", false
	}
	end := strings.IndexAny(raw[hostStart:], "/?#")
	if end < 0 {
		return raw, "/", true
	}
	end += hostStart
	if raw[end] != '/' {
		return raw[:end], "/" + raw[end:], true
	}
	return raw[:end], raw[end:], true
}

func isScheme(s string) bool {
	return strings.EqualFold(s, "http") || strings.EqualFold(s, "https")
}

// hostOf returns the host[:port] of an origin.
func hostOf(origin string) string {
	if i := strings.Index(origin, "//"); i >= 0 {
		return origin[i+2:]
	}
	return origin
}

// ErrorBody puts the client's names back into a registry error document: Harbor's messages and
// the 401 detail name repositories with their project, the request's own and a mount's from=.
// Every name of the project loses exactly one project prefix, where a JSON string or a word
// starts with it: the one rule of Project.errorNames, which the pull lane applies too, so that
// "hub/hub/x" on project hub becomes "hub/x" on every path.
func ErrorBody(body []byte, x *Exchange) []byte {
	if x.Project == nil {
		return body
	}
	return []byte(x.Project.errorNames.Replace(string(body)))
}

// TagsBody puts the client's name into a tags/list document in place of Harbor's.
func TagsBody(body []byte, clientName string) ([]byte, bool) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil || doc["name"] == nil {
		return body, false
	}
	// Yaegi (correctness): a local, not doc["name"], _ = ...; a tuple assigned into a map index
	// is dropped.
	name, _ := json.Marshal(clientName)
	doc["name"] = name
	out, err := json.Marshal(doc)
	return out, err == nil
}
