package rewrite

import "strings"

// mapScopes maps each space-separated scope in one scope parameter.
func mapScopes(t *Project, scopes string) (string, *Error) {
	if strings.IndexByte(scopes, ' ') < 0 {
		return mapScope(t, scopes)
	}
	parts := strings.Split(scopes, " ")
	for i, s := range parts {
		mapped, err := mapScope(t, s)
		if err != nil {
			return "", err
		}
		parts[i] = mapped
	}
	return strings.Join(parts, " "), nil
}

// mapScope maps one scope, type[(class)]:name:actions. The name sits between the first and the
// last colon, as Harbor's token service reads it. Repository scopes are mapped into the project;
// registry scopes (registry:catalog:*) pass; any other type is refused rather than forwarded
// unmapped, so no scope can reach another project.
func mapScope(t *Project, scope string) (string, *Error) {
	if scope == "" {
		return scope, nil
	}
	typ, name, actions, ok := splitScope(scope)
	if !ok {
		return "", BadRequest("scope must be type:name:actions: " + quoteDetail(scope))
	}
	switch {
	case typ == "registry":
		return scope, nil
	case isRepositoryType(typ):
		mapped, err := mapName(t, name)
		if err != nil {
			return "", err
		}
		return typ + ":" + mapped + ":" + actions, nil
	}
	return "", BadRequest("unsupported scope type: " + quoteDetail(typ))
}

// unmapScope turns a scope in Harbor's names back into the client's: the request's own name when
// it is the one mapped, otherwise the name with the project stripped. A scope it cannot place is
// returned as it is.
func unmapScope(t *Project, scope, clientName, mappedName string) string {
	typ, name, actions, ok := splitScope(scope)
	if !ok || !isRepositoryType(typ) {
		return scope
	}
	if name == mappedName && clientName != "" {
		return typ + ":" + clientName + ":" + actions
	}
	if stripped, inProject := unmapName(t, name); inProject {
		return typ + ":" + stripped + ":" + actions
	}
	return scope
}

func splitScope(scope string) (typ, name, actions string, ok bool) {
	first := strings.IndexByte(scope, ':')
	last := strings.LastIndexByte(scope, ':')
	if first <= 0 || last <= first+1 {
		return "", "", "", false
	}
	return scope[:first], scope[first+1 : last], scope[last+1:], true
}

// isRepositoryType accepts "repository" and "repository(<class>)", e.g. repository(plugin).
func isRepositoryType(typ string) bool {
	return typ == "repository" || (strings.HasPrefix(typ, "repository(") && strings.HasSuffix(typ, ")"))
}
