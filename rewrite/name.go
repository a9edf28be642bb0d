package rewrite

import (
	"net/url"
	"strings"
)

// maxNameLength is Harbor's cap on a full repository name, project included.
const maxNameLength = 255

// ValidProject reports whether p obeys Harbor's project-name rules.
func ValidProject(p string) bool { return len(p) <= maxNameLength && projectRE.MatchString(p) }

// validName reports whether name is a repository name in the OCI grammar.
func validName(name string) bool { return len(name) <= maxNameLength && nameRE.MatchString(name) }

// Project is a Harbor project that requests map into.
// Yaegi (speed): newProject precomputes the strings the per-request path needs, so that as little
// as possible is interpreted there.
type Project struct {
	Name string
	// Library puts a one-component name under "library/", as Docker Hub content is named.
	Library bool
	// NS is the upstream registry the client named with containerd's ?ns=, "" if none. It travels
	// in the realm handed to the client, so that the token request maps to the same project.
	NS string

	prefix       string // "hub/"
	singlePrefix string // prefix of a one-component name: "hub/library/" or "hub/"
	realmQuery   string // "?ns=docker.io" or ""

	pullTemplate, singlePullTemplate string // MapPull's replacements: "/v2/hub/${1}${2}"
	// MapTokenPull's: "scope=repository%3Ahub%2F${1}%3A${2}&service=${3}"
	tokenTemplate, singleTokenTemplate string
	// errorNames strips the project from the names in an error document, where a JSON string or
	// a word starts with one: exactly one prefix, as a Replacer does not rescan what it replaced.
	errorNames *strings.Replacer
}

// newProject describes a project that requests map into.
func newProject(project string, library bool, ns string) *Project {
	t := &Project{Name: project, Library: library, NS: ns, prefix: project + "/"}
	t.singlePrefix = t.prefix
	if library {
		t.singlePrefix += "library/"
	}
	// Project names hold no "$", so the templates expand only the groups (of pullPath and
	// tokenPullQuery, grammar.go).
	t.pullTemplate = "/v2/" + t.prefix + "${1}${2}"
	t.singlePullTemplate = "/v2/" + t.singlePrefix + "${1}${2}"
	t.tokenTemplate = "scope=repository%3A" + url.QueryEscape(t.prefix) + "${1}%3A${2}&service=${3}"
	t.singleTokenTemplate = "scope=repository%3A" + url.QueryEscape(t.singlePrefix) + "${1}%3A${2}&service=${3}"
	if ns != "" {
		t.realmQuery = "?ns=" + url.QueryEscape(ns)
	}
	t.errorNames = strings.NewReplacer(`"`+t.prefix, `"`, " "+t.prefix, " ")
	return t
}

// mapName turns a client's repository name into the Harbor name inside t's project.
func mapName(t *Project, name string) (string, *Error) {
	if !validName(name) {
		return "", nameInvalid("repository name must match the OCI grammar: " + quoteDetail(name))
	}
	return mapValidName(t, name)
}

// mapValidName is mapName for a name already checked against the grammar.
func mapValidName(t *Project, name string) (string, *Error) {
	full := t.prefix + name
	if strings.IndexByte(name, '/') < 0 {
		full = t.singlePrefix + name
	}
	if len(full) > maxNameLength {
		return "", nameInvalid("repository name longer than 255 characters with its project")
	}
	return full, nil
}

// unmapName strips t's project from a Harbor name; ok is false for a name outside the project.
func unmapName(t *Project, full string) (name string, ok bool) {
	if len(full) > len(t.prefix) && strings.HasPrefix(full, t.prefix) {
		return full[len(t.prefix):], true
	}
	return full, false
}

// quoteDetail keeps hostile input short and printable in an error detail.
func quoteDetail(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
