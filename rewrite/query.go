package rewrite

import (
	"net/url"
	"strings"
)

// CutParam removes every key=value pair named key from a raw query and returns the first value,
// decoded. The other pairs keep their bytes and order.
func CutParam(rawQuery, key string) (value, rest string, found bool) {
	if !mayHoldParam(rawQuery, key) {
		return "", rawQuery, false
	}
	if strings.HasPrefix(rawQuery, key+"=") && strings.IndexAny(rawQuery, "&%+") < 0 {
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

// MapQuery maps the parameters of a registry request that name a repository: from= on a blob
// mount and last= on a catalog page. The other pairs keep their bytes and order.
func MapQuery(rawQuery string, t *Target, kind Kind) (string, *Error) {
	switch kind {
	case KindUpload:
		return mapParam(rawQuery, "from", t, MapName)
	case KindCatalog:
		return mapCatalogLast(rawQuery, t)
	}
	return rawQuery, nil
}

// mapCatalogLast confines a catalog page to the project: Harbor lists repositories after last=,
// so a page that starts at "<project>/" begins with the project's first repository.
func mapCatalogLast(rawQuery string, t *Target) (string, *Error) {
	if !mayHoldParam(rawQuery, "last") {
		if rawQuery == "" {
			return "last=" + url.QueryEscape(t.prefix), nil
		}
		return rawQuery + "&last=" + url.QueryEscape(t.prefix), nil
	}
	return mapParam(rawQuery, "last", t, mapCatalogName)
}

func mapCatalogName(t *Target, name string) (string, *Error) {
	if name == "" {
		return t.prefix, nil
	}
	return MapName(t, name)
}

// mapParam rewrites the decoded value of every key=value pair named key.
func mapParam(rawQuery, key string, t *Target, mapValue func(*Target, string) (string, *Error)) (string, *Error) {
	if !mayHoldParam(rawQuery, key) {
		return rawQuery, nil
	}
	pairs := strings.Split(rawQuery, "&")
	for i, pair := range pairs {
		k, v := splitPair(pair)
		if k != key {
			continue
		}
		mapped, err := mapPairValue(t, key, v, mapValue)
		if err != nil {
			return "", err
		}
		pairs[i] = mapped
	}
	return strings.Join(pairs, "&"), nil
}

// mapPairValue decodes a value, maps it, and writes the pair back in canonical form.
func mapPairValue(t *Target, key, rawValue string, mapValue func(*Target, string) (string, *Error)) (string, *Error) {
	decoded, err := url.QueryUnescape(rawValue)
	if err != nil {
		return "", BadRequest("malformed " + key + " parameter")
	}
	mapped, mapErr := mapValue(t, decoded)
	if mapErr != nil {
		return "", mapErr
	}
	return key + "=" + url.QueryEscape(mapped), nil
}

// mapScopePair maps one scope=... pair of a token request.
func mapScopePair(t *Target, pair string) (string, *Error) {
	_, value := splitPair(pair)
	return mapPairValue(t, "scope", value, MapScopes)
}

// MapTokenQuery maps every scope of a token request's query (GET) or form body (OAuth2 POST).
func MapTokenQuery(rawQuery string, t *Target) (string, *Error) {
	return mapParam(rawQuery, "scope", t, MapScopes)
}

// CheckQuery refuses a query with a literal ";": Traefik's proxy turns ";" into "&" after the
// plugin has run, which would let a pair the plugin never saw reach Harbor.
func CheckQuery(rawQuery string) *Error {
	if strings.IndexByte(rawQuery, ';') >= 0 {
		return BadRequest("\";\" is not a query separator here; escape it as %3B")
	}
	return nil
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
