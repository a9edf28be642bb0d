package rewrite

import (
	"net/url"
	"strconv"
	"strings"
)

// cutParam removes every key=value pair named key from a raw query and returns the first value,
// decoded. The other pairs keep their bytes and order.
func cutParam(rawQuery, key string) (value, rest string, found bool) {
	if !mayHoldParam(rawQuery, key) {
		return "", rawQuery, false
	}
	if strings.HasPrefix(rawQuery, key+"=") && !strings.ContainsAny(rawQuery, "&%+") {
		return rawQuery[len(key)+1:], "", true // containerd's lone ns=docker.io
	}
	var kept []string
	for _, pair := range strings.Split(rawQuery, "&") {
		k, v := splitPair(pair)
		if k != key {
			kept = append(kept, pair)
			continue
		}
		if !found {
			value, _ = url.QueryUnescape(v)
			found = true
		}
	}
	return value, strings.Join(kept, "&"), found
}

// mapQuery maps the parameters of a registry request that name a repository: from= on a blob
// mount. The other pairs keep their bytes and order. (A catalog request forwards no query at all:
// see CatalogPage.)
func mapQuery(rawQuery string, t *Project, kind Kind) (string, *Error) {
	if kind == KindUpload {
		return mapParam(rawQuery, "from", t)
	}
	return rawQuery, nil
}

// mapParam rewrites the decoded value of every key=value pair named key.
func mapParam(rawQuery, key string, t *Project) (string, *Error) {
	if !mayHoldParam(rawQuery, key) {
		return rawQuery, nil
	}
	pairs := strings.Split(rawQuery, "&")
	for i, pair := range pairs {
		k, v := splitPair(pair)
		if k != key {
			continue
		}
		mapped, err := mapPairValue(t, key, v)
		if err != nil {
			return "", err
		}
		pairs[i] = mapped
	}
	return strings.Join(pairs, "&"), nil
}

// mapPairValue decodes the value of a scope or from pair, maps it, and writes the pair back
// in canonical form.
// Yaegi (correctness): a switch on the key rather than a mapping function passed in; an
// interpreted function used as a value races on its first concurrent calls.
func mapPairValue(t *Project, key, rawValue string) (string, *Error) {
	decoded, err := url.QueryUnescape(rawValue)
	if err != nil {
		return "", BadRequest("malformed " + key + " parameter")
	}
	var mapped string
	var mapErr *Error
	switch {
	case key == "scope":
		mapped, mapErr = mapScopes(t, decoded)
	default:
		mapped, mapErr = mapName(t, decoded)
	}
	if mapErr != nil {
		return "", mapErr
	}
	return key + "=" + url.QueryEscape(mapped), nil
}

// mapScopePair maps one scope=... pair of a token request.
func mapScopePair(t *Project, pair string) (string, *Error) {
	_, value := splitPair(pair)
	return mapPairValue(t, "scope", value)
}

// mapTokenQuery maps every scope of a token request's query (GET) or form body (OAuth2 POST).
func mapTokenQuery(rawQuery string, t *Project) (string, *Error) {
	return mapParam(rawQuery, "scope", t)
}

// checkQuery refuses a query with a literal ";": Traefik's proxy turns ";" into "&" after the
// plugin has run, which would let a pair the plugin never saw reach Harbor. It also refuses more
// than MaxQueryParams pairs, counted by one compiled call before any loop over them.
func checkQuery(rawQuery string) *Error {
	if strings.IndexByte(rawQuery, ';') >= 0 {
		return BadRequest("\";\" is not a query separator here; escape it as %3B")
	}
	if strings.Count(rawQuery, "&") >= MaxQueryParams {
		return BadRequest("a query or token form is limited to " + strconv.Itoa(MaxQueryParams) + " parameters")
	}
	return nil
}

// scopesIn counts the scopes of a raw scope value: one more than its spaces ("+", "%20" or, in a
// form, " "), counted by compiled calls.
func scopesIn(rawValue string) int {
	return 1 + strings.Count(rawValue, "+") + strings.Count(rawValue, "%20") + strings.Count(rawValue, " ")
}

func tooManyScopes() *Error {
	return BadRequest("a token request is limited to " + strconv.Itoa(MaxScopes) + " scopes")
}

// mayHoldParam is a cheap pre-check: a key can only be present literally (with or without "=")
// or percent-encoded.
func mayHoldParam(rawQuery, key string) bool {
	return strings.Contains(rawQuery, key) || strings.IndexByte(rawQuery, '%') >= 0
}

// splitPair splits key=value and decodes the key, as the servers behind Traefik will: an encoded
// key such as sc%6Fpe must not slip past the mapping.
func splitPair(pair string) (key, value string) {
	key, value, _ = strings.Cut(pair, "=")
	if strings.IndexByte(key, '%') >= 0 || strings.IndexByte(key, '+') >= 0 {
		if decoded, err := url.QueryUnescape(key); err == nil {
			key = decoded
		}
	}
	return key, value
}
