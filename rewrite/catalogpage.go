package rewrite

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// The catalog is paged by the mirror itself. Harbor lists every project's repositories, sorted,
// and with n= it wants last= to be one of them (src/server/registry/catalog.go: 400 otherwise),
// so no last= of the mirror's can start a page at the project. The plugin therefore asks Harbor
// for /v2/_catalog with no query at all (the whole list, which only admins get), keeps the
// project's repositories, and applies the client's n and last itself, as Harbor pages tags/list:
// the names after last, at most n of them, and a Link to the next page when more follow. No
// parameter of the client's reaches Harbor, and only names of the project reach the client.

// catalogDocument is Harbor's (and distribution's) catalog answer.
type catalogDocument struct {
	Repositories []string `json:"repositories"`
}

// CatalogPage answers a catalog request from Harbor's whole catalog: page is the client's query,
// of which only n and last count, mirrorPath goes in front of the Link. It returns the document, the Link ("" on the
// last page) or the error to answer instead: Harbor's own 400 for a bad n, 502 for a catalog
// that is not one.
func CatalogPage(harborBody []byte, t *Project, page, mirrorPath string) (body []byte, link string, err *Error) {
	n, last, err := parseCatalogPage(page)
	if err != nil {
		return nil, "", err
	}
	var doc catalogDocument
	if json.Unmarshal(harborBody, &doc) != nil {
		return nil, "", badCatalog("Harbor's answer is not a catalog document")
	}
	sort.Strings(doc.Repositories)
	names := make([]string, 0, len(doc.Repositories))
	for i, full := range doc.Repositories {
		if name, inProject := unmapName(t, full); inProject && (i == 0 || full != doc.Repositories[i-1]) {
			names = append(names, name) // sorted and unique, as Harbor's own lists
		}
	}
	names, next := pickPage(names, n, last)
	body, _ = json.Marshal(catalogDocument{Repositories: names}) // a slice of strings always marshals
	if next != "" {
		link = catalogLink(t, mirrorPath, n, next)
	}
	return append(body, '\n'), link, nil
}

// parseCatalogPage reads n and last as Harbor does (the first of each; n absent or empty is no
// limit, -1 here).
func parseCatalogPage(page string) (n int, last string, err *Error) {
	values, _ := url.ParseQuery(page) // like Harbor's URL.Query(): a malformed pair is skipped
	n = -1
	if v := values.Get("n"); v != "" {
		var convErr error
		if n, convErr = strconv.Atoi(v); convErr != nil || n < 0 {
			return 0, "", &Error{http.StatusBadRequest, "BAD_REQUEST", "the N must be a positive int type", ""}
		}
	}
	return n, values.Get("last"), nil
}

// pickPage is Harbor's pickItems (src/server/registry/util): the sorted names after last, at most
// n of them (n < 0: all), and the page's last name when more follow.
func pickPage(names []string, n int, last string) ([]string, string) {
	if len(names) == 0 || n == 0 {
		return []string{}, ""
	}
	// Yaegi (correctness): SearchStrings, not Search with a closure; an interpreted function
	// handed to compiled code races on its first concurrent calls.
	i := 0
	if last != "" {
		if i = sort.SearchStrings(names, last); i < len(names) && names[i] == last {
			i++
		}
	}
	j := len(names)
	if n > 0 && i+n < j {
		j = i + n
	}
	page := names[i:j]
	if n < 0 || len(page) == 0 || j == len(names) {
		return page, ""
	}
	return page, page[len(page)-1]
}

// catalogLink is the next page's Link, relative as Harbor's, with the ns the request came with.
func catalogLink(t *Project, mirrorPath string, n int, next string) string {
	query := url.Values{"n": {strconv.Itoa(n)}, "last": {next}}
	if t.NS != "" {
		query.Set("ns", t.NS)
	}
	return "<" + mirrorPath + "/v2/_catalog?" + query.Encode() + `>; rel="next"`
}

func badCatalog(detail string) *Error {
	return &Error{http.StatusBadGateway, "UNKNOWN", "the mirror cannot list this project's repositories", detail}
}

// CatalogTooLarge refuses a Harbor catalog over the limit the plugin reads.
func CatalogTooLarge(limit int) *Error {
	return badCatalog("Harbor's catalog is over " + strconv.Itoa(limit) + " bytes")
}

// CatalogEncoded refuses a Harbor catalog sent with a Content-Encoding: the plugin reads only
// plain JSON, and passes nothing it could not read.
func CatalogEncoded(encoding string) *Error {
	return badCatalog("Harbor's catalog came with Content-Encoding " + quoteDetail(strings.TrimSpace(encoding)))
}
