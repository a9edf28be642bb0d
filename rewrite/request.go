package rewrite

import (
	"net/url"
	"strings"
)

// Exchange is one request handled by the mirror: how it was mapped, and what rewriting Harbor's
// response needs to know. The plugin fills one per request and passes it by pointer.
type Exchange struct {
	Route Route
	// Project is the project the request maps into; nil in origin-fix-only mode.
	Project *Project
	// Path and RawQuery are the request as forwarded to Harbor (Path decoded, sent with no RawPath).
	Path, RawQuery string
	// RequestURI is Path and RawQuery as one request target. Built by concatenation: a mapped path
	// holds only grammar characters, which need no escaping.
	RequestURI string
	// MappedName is Route.Name inside the project.
	MappedName string

	// Origin is the public origin, "scheme://host[:port]".
	Origin string
	// RequestHost is the Host the request arrived with; Harbor builds absolute URLs from it.
	RequestHost string
	// MirrorPath is prefixed to registry paths handed back; RealmPath is mirror path + token path.
	MirrorPath, RealmPath string
}

// MapRequest maps a registry API request into x: path is decoded and starts with "/v2/" (any
// mirror path already cut off), rawPath is the URL's RawPath ("" for the default encoding),
// rawQuery as sent.
func MapRequest(p *Projects, x *Exchange, path, rawPath, rawQuery string) *Error {
	if len(path)+len(rawPath)+len(rawQuery) > MaxRequestTarget {
		return TargetTooLong() // before unsafeEscapes and the query's pairs, which loop
	}
	if rawPath != "" && unsafeEscapes(rawPath) {
		return BadRequest("escaped '/', '.', '\\' or '%' in a registry path")
	}
	if err := parsePath(&x.Route, path); err != nil {
		return err
	}
	t := p.Default
	if rawQuery != "" {
		if err := checkQuery(rawQuery); err != nil {
			return err
		}
		var ns string
		var err *Error
		if ns, rawQuery, _ = cutParam(rawQuery, "ns"); ns != "" {
			if t, err = projectFor(p, ns); err != nil {
				return err
			}
		}
	}
	if t == nil {
		_, err := projectFor(p, "")
		return err
	}
	switch x.Route.Kind {
	case KindUpload:
		var err *Error
		if rawQuery, err = mapQuery(rawQuery, t, x.Route.Kind); err != nil {
			return err
		}
	case KindCatalog:
		// Nothing of the client's query reaches Harbor: the plugin pages the catalog itself
		// (CatalogPage, from the client's query).
		rawQuery = ""
	}
	x.Project, x.Path, x.RawQuery = t, path, rawQuery
	if x.Route.Name != "" {
		full := t.prefix + x.Route.Name
		if strings.IndexByte(x.Route.Name, '/') < 0 {
			full = t.singlePrefix + x.Route.Name
		}
		if len(full) > maxNameLength {
			return nameInvalid("repository name longer than 255 characters with its project")
		}
		x.MappedName, x.Path = full, "/v2/"+full+x.Route.Endpoint
	}
	x.RequestURI = x.Path
	if rawQuery != "" {
		x.RequestURI += "?" + rawQuery
	}
	return nil
}

// MapTokenRequest maps a token request's query: the ns marker the mirror put into the realm picks
// the project, and every repository scope is mapped into it.
func MapTokenRequest(p *Projects, rawQuery string) (string, *Project, *Error) {
	if len(rawQuery) > MaxRequestTarget {
		return "", nil, TargetTooLong()
	}
	if err := checkQuery(rawQuery); err != nil {
		return "", nil, err
	}
	pairs := strings.Split(rawQuery, "&")
	var ns string
	var scopes []int // indexes of the scope pairs
	count := 0       // of the scopes they hold, checked before any is mapped
	kept := pairs[:0]
	for _, pair := range pairs {
		switch key, value := splitPair(pair); key {
		case "ns":
			if ns == "" {
				ns, _ = url.QueryUnescape(value)
			}
			continue
		case "scope":
			scopes = append(scopes, len(kept))
			count += scopesIn(value)
		}
		kept = append(kept, pair)
	}
	if count > MaxScopes {
		return "", nil, tooManyScopes()
	}
	t, err := projectFor(p, ns)
	if err != nil {
		return "", nil, err
	}
	for _, i := range scopes {
		if kept[i], err = mapScopePair(t, kept[i]); err != nil {
			return "", nil, err
		}
	}
	return strings.Join(kept, "&"), t, nil
}

// MapTokenForm maps the scopes of an OAuth2 token request body (application/x-www-form-urlencoded).
// Its scopes are counted in the one loop over the pairs, before any is mapped.
func MapTokenForm(form string, t *Project) (string, *Error) {
	if err := checkQuery(form); err != nil {
		return "", err
	}
	if !mayHoldParam(form, "scope") {
		return form, nil
	}
	pairs := strings.Split(form, "&")
	var scopes []int // indexes of the scope pairs
	count := 0
	for i, pair := range pairs {
		if key, value := splitPair(pair); key == "scope" {
			scopes = append(scopes, i)
			count += scopesIn(value)
		}
	}
	if count > MaxScopes {
		return "", tooManyScopes()
	}
	for _, i := range scopes {
		mapped, err := mapScopePair(t, pairs[i])
		if err != nil {
			return "", err
		}
		pairs[i] = mapped
	}
	return strings.Join(pairs, "&"), nil
}
