package rewrite

import "strings"

// Challenge rewrites the Bearer challenges in one Www-Authenticate value: realm becomes the
// mirror's token endpoint and each scope loses the project. Every other parameter, every other
// scheme (Basic) and the separators keep their bytes. A value it cannot parse is returned as is.
//
// Yaegi (speed): Harbor's one shape (harborChallengeRE) is matched in a single compiled call; the
// general parser walks the value byte by byte, which under Yaegi costs tens of microseconds.
func Challenge(x *Exchange, value string) string {
	m := harborChallengeRE.FindStringSubmatchIndex(value)
	if m == nil {
		return challengeGeneral(x, value)
	}
	out := value[:m[2]] + realm(x, value[m[2]:m[3]])
	if m[4] < 0 || x.Project == nil {
		return out + value[m[3]:]
	}
	return out + value[m[3]:m[4]] + unmapScopes(x, value[m[4]:m[5]]) + value[m[5]:]
}

// challengeGeneral is Challenge for any well-formed value: an RFC 7235 list of challenges, each
// an auth-scheme followed by a token68 or by auth-params (token or quoted-string values, other
// parameter orders, escapes). Every Bearer challenge of the list is rewritten; the rest of the
// value keeps its bytes. A value that is not such a list is returned as is.
func challengeGeneral(x *Exchange, value string) string {
	var out strings.Builder
	copied := 0 // value[:copied] is already in out
	inBearer := false
	inChallenge := false // a parameter before the first auth-scheme makes the value unparseable
	i := 0
	for {
		for i < len(value) && strings.IndexByte(listSeparators, value[i]) >= 0 {
			i++
		}
		if i >= len(value) {
			break
		}
		end := scanToken(value, i)
		if end == i {
			return value
		}
		name := value[i:end]
		eq := skipSpaces(value, end)
		if eq >= len(value) || value[eq] != '=' {
			// A token not followed by "=" is the auth-scheme of the next challenge, which may
			// carry a token68 instead of parameters.
			// Yaegi (correctness): separate assignments; Yaegi v0.16.1 drops the call's value in a
			// tuple assignment.
			inBearer = strings.EqualFold(name, "Bearer")
			inChallenge = true
			i = skipToken68(value, end)
			continue
		}
		start := skipSpaces(value, eq+1)
		param, stop, ok := scanParamValue(value, start)
		if !ok || !inChallenge || !endsListItem(value, stop) {
			return value
		}
		i = stop
		if !inBearer {
			continue
		}
		var replacement string
		switch {
		case strings.EqualFold(name, "realm"):
			replacement = realm(x, param)
		case strings.EqualFold(name, "scope") && x.Project != nil:
			replacement = unmapScopes(x, param)
		default:
			continue
		}
		out.WriteString(value[copied:start])
		out.WriteString(quote(replacement))
		copied = stop
	}
	if copied == 0 {
		return value
	}
	out.WriteString(value[copied:])
	return out.String()
}

// skipToken68 returns the end of the token68 that follows an auth-scheme at i (after its
// spaces), or i when what follows is not one: auth-params, a comma, or the end.
func skipToken68(s string, i int) int {
	j := skipSpaces(s, i)
	if j == i || j >= len(s) {
		return i
	}
	end := j
	for end < len(s) && strings.IndexByte(token68Chars, s[end]) >= 0 {
		end++
	}
	if end == j {
		return i
	}
	for end < len(s) && s[end] == '=' {
		end++
	}
	if !endsListItem(s, end) {
		return i // "realm=..." is a parameter, not a token68
	}
	return end
}

// endsListItem says whether only spaces stand between i and the next comma or the end.
func endsListItem(s string, i int) bool {
	i = skipSpaces(s, i)
	return i >= len(s) || s[i] == ','
}

func unmapScopes(x *Exchange, scopes string) string {
	// The challenge of a 401 names the request's own repository: one scope, quickly placed.
	own := len("repository:") + len(x.MappedName)
	if x.MappedName != "" && x.Route.Name != "" && len(scopes) > own && scopes[own] == ':' &&
		strings.HasPrefix(scopes, "repository:") && scopes[len("repository:"):own] == x.MappedName &&
		!strings.ContainsAny(scopes[own+1:], ": ") {
		return "repository:" + x.Route.Name + scopes[own:]
	}
	return unmapScopesGeneral(x, scopes)
}

func unmapScopesGeneral(x *Exchange, scopes string) string {
	if strings.IndexByte(scopes, ' ') < 0 {
		return unmapScope(x.Project, scopes, x.Route.Name, x.MappedName)
	}
	parts := strings.Split(scopes, " ")
	for i, s := range parts {
		parts[i] = unmapScope(x.Project, s, x.Route.Name, x.MappedName)
	}
	return strings.Join(parts, " ")
}

func skipSpaces(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// scanToken returns the end of the RFC 9110 token starting at i.
func scanToken(s string, i int) int {
	for i < len(s) && strings.IndexByte(tokenChars, s[i]) >= 0 {
		i++
	}
	return i
}

// scanParamValue reads a token or a quoted-string at i and returns it unquoted.
func scanParamValue(s string, i int) (value string, end int, ok bool) {
	if i >= len(s) {
		return "", i, false
	}
	if s[i] != '"' {
		end = scanToken(s, i)
		return s[i:end], end, end > i
	}
	closing := strings.IndexAny(s[i+1:], "\"\\")
	if closing < 0 {
		return "", i, false
	}
	if s[i+1+closing] == '"' {
		return s[i+1 : i+1+closing], i + 2 + closing, true
	}
	// Slow path: backslash escapes.
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
			if j >= len(s) {
				return "", i, false
			}
			b.WriteByte(s[j])
		case '"':
			return b.String(), j + 1, true
		default:
			b.WriteByte(s[j])
		}
	}
	return "", i, false
}

// quote writes a quoted-string, escaping what must be escaped.
func quote(s string) string {
	if !strings.ContainsAny(s, "\"\\") {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
