package rewrite

// Request is a registry API request as it is forwarded to Harbor.
type Request struct {
	Path     string // decoded; the plugin forwards it with no RawPath
	RawQuery string
	Route    Route
	Target   Target
	// MappedName is Route.Name inside the project ("" for /v2/ and _catalog).
	MappedName string
}

// MapRequest maps a registry API request: path is decoded and starts with /v2 (any mirror path
// already cut off), rawPath is the URL's RawPath ("" when the default encoding), rawQuery as sent.
func (p Projects) MapRequest(path, rawPath, rawQuery string) (Request, *Error) {
	if rawPath != "" && UnsafeEscapes(rawPath) {
		return Request{}, BadRequest("escaped '/', '.', '\\' or '%' in a registry path")
	}
	if err := CheckQuery(rawQuery); err != nil {
		return Request{}, err
	}
	route, err := ParsePath(path)
	if err != nil {
		return Request{}, err
	}
	ns, query, _ := CutParam(rawQuery, "ns")
	target, err := p.Target(ns)
	if err != nil {
		return Request{}, err
	}
	req := Request{Path: path, Route: route, Target: target}
	if route.Name != "" {
		if req.MappedName, err = target.Map(route.Name); err != nil {
			return Request{}, err
		}
		req.Path = "/v2/" + req.MappedName + route.Endpoint
	}
	if req.RawQuery, err = MapQuery(query, target, route.Kind); err != nil {
		return Request{}, err
	}
	return req, nil
}

// MapTokenRequest maps a token request's query: the ns marker the mirror put into the realm picks
// the project, and every repository scope is mapped into it.
func (p Projects) MapTokenRequest(rawQuery string) (query string, target Target, err *Error) {
	if err = CheckQuery(rawQuery); err != nil {
		return "", Target{}, err
	}
	ns, query, _ := CutParam(rawQuery, "ns")
	if target, err = p.Target(ns); err != nil {
		return "", Target{}, err
	}
	if query, err = MapTokenQuery(query, target); err != nil {
		return "", Target{}, err
	}
	return query, target, nil
}

// MapTokenForm maps the scopes of an OAuth2 token request body (application/x-www-form-urlencoded).
func MapTokenForm(form string, target Target) (string, *Error) {
	if err := CheckQuery(form); err != nil {
		return "", err
	}
	return MapTokenQuery(form, target)
}
