package rewrite

import (
	"regexp"
	"strings"
)

// MaxNameLength is Harbor's cap on a full repository name, project included.
const MaxNameLength = 255

// The OCI distribution grammar. Regular expressions rather than hand-written loops: under Yaegi
// a loop over bytes is interpreted, a regexp match runs compiled.
var (
	nameRE    = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	projectRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	tagRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE  = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	uploadRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9=_.-]{0,255}$`)
)

// ValidProject reports whether p obeys Harbor's project-name rules.
func ValidProject(p string) bool { return len(p) <= MaxNameLength && projectRE.MatchString(p) }

// ValidName reports whether name is a repository name in the OCI grammar.
func ValidName(name string) bool { return len(name) <= MaxNameLength && nameRE.MatchString(name) }

// Target is the Harbor project one request maps into, and how.
type Target struct {
	Project string
	// Library puts a one-component name under "library/", as Docker Hub content is named.
	Library bool
	// NS is the upstream registry the client named with containerd's ?ns=, "" if none. It travels
	// in the realm handed to the client, so that the token request maps to the same project.
	NS string
}

// Map turns a client's repository name into the Harbor name inside t.Project.
func (t Target) Map(name string) (string, *Error) {
	if !ValidName(name) {
		return "", nameInvalid("repository name must match the OCI grammar: " + quoteDetail(name))
	}
	if t.Library && strings.IndexByte(name, '/') < 0 {
		name = "library/" + name
	}
	full := t.Project + "/" + name
	if len(full) > MaxNameLength {
		return "", nameInvalid("repository name longer than 255 characters with its project")
	}
	return full, nil
}

// Unmap strips t.Project from a Harbor name; ok is false for a name outside the project.
func (t Target) Unmap(full string) (name string, ok bool) {
	if len(full) > len(t.Project)+1 && full[len(t.Project)] == '/' && strings.HasPrefix(full, t.Project) {
		return full[len(t.Project)+1:], true
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
