package rewrite

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var fuzzProjects = NewProjects("hub", map[string]string{"ghcr.io": "ghcr"}, true)

// FuzzMapRequest: whatever a client sends, a request that is forwarded stays inside the project
// it was routed to, and Harbor (which decodes the query as Go's net/url does) sees no repository
// name outside it.
func FuzzMapRequest(f *testing.F) {
	for _, seed := range []struct{ path, rawPath, query string }{
		{"/v2/library/nginx/manifests/latest", "", ""},
		{"/v2/nginx/manifests/latest", "", "ns=docker.io"},
		{"/v2/owner/app/blobs/" + digestA, "", "ns=ghcr.io"},
		{"/v2/team/app/blobs/uploads/", "", "mount=" + digestA + "&from=team%2Fbase"},
		{"/v2/team/app/blobs/uploads/u-1", "", "_state=abc%3D&digest=" + digestA},
		{"/v2/_catalog", "", "n=10&last=library%2Fnginx"},
		{"/v2/../hub2/x/manifests/latest", "", ""},
		{"/v2/a/b/manifests/latest", "/v2/a%2Fb/manifests/latest", ""},
		{"/v2/x/blobs/uploads/", "", "fr%6Fm=other%2Fx&mount=" + digestA},
		{"/v2/x/tags/list", "", "n=1&last=v1;ns=ghcr.io"},
		{"/v2/_catalog", "", "x=%25&n=5"},
		{"/v2/_catalog", "", "l%61st=..%2Fteam&q=last"},
	} {
		f.Add(seed.path, seed.rawPath, seed.query)
	}
	f.Fuzz(func(t *testing.T, path, rawPath, query string) {
		req := exchangeFor()
		err := MapRequest(fuzzProjects, req, path, rawPath, query)
		filled := exchangeFor()
		if rawPath == "" {
			FillPull(fuzzProjects, filled, requestTarget(path, query), "") // must not panic on a path MapPull would not map
		}
		if pull := MapPull(fuzzProjects, path, rawPath, query); pull != "" {
			if err != nil || (req.Route.Kind != KindManifest && req.Route.Kind != KindBlob) || req.RequestURI != pull || *filled != *req {
				t.Fatalf("fast path and full mapping disagree on %q %q %q: %q, %+v\n%+v %v", path, rawPath, query, pull, filled, req, err)
			}
		}
		if err != nil {
			if err.Status < 400 || err.Status > 499 || len(err.Body()) == 0 {
				t.Fatalf("refusal %+v is not a client error", err)
			}
			return
		}
		project := req.Project.Name
		if project != "hub" && project != "ghcr" {
			t.Fatalf("routed to %q", project)
		}
		switch req.Route.Kind {
		case KindCatalog:
			if req.Path != path || req.RawQuery != "" || req.RequestURI != "/v2/_catalog" {
				t.Fatalf("catalog %q?%q forwarded as %q", path, query, req.RequestURI)
			}
		case KindBase:
			if req.Path != path {
				t.Fatalf("%q forwarded as %q", path, req.Path)
			}
		default:
			if !strings.HasPrefix(req.Path, "/v2/"+project+"/") || hasDotSegment(req.Path) || strings.Contains(req.Path, "//") {
				t.Fatalf("%q forwarded as %q, outside /v2/%s/", path, req.Path, project)
			}
			if !validName(req.MappedName) || !strings.HasPrefix(req.Path, "/v2/"+req.MappedName+"/") {
				t.Fatalf("mapped name %q does not head the path %q", req.MappedName, req.Path)
			}
			back, ok := unmapName(req.Project, req.MappedName)
			if !ok || (back != req.Route.Name && back != "library/"+req.Route.Name) {
				t.Fatalf("Unmap(%q) = %q, client sent %q", req.MappedName, back, req.Route.Name)
			}
		}
		if strings.IndexByte(req.RawQuery, ';') >= 0 {
			t.Fatalf("forwarded a literal ';' in %q", req.RawQuery)
		}
		values, _ := url.ParseQuery(req.RawQuery)
		if _, ok := values["ns"]; ok {
			t.Fatalf("ns forwarded in %q", req.RawQuery)
		}
		if req.Route.Kind == KindUpload {
			for _, from := range values["from"] {
				if !strings.HasPrefix(from, project+"/") {
					t.Fatalf("from=%q reaches outside %s in %q", from, project, req.RawQuery)
				}
			}
		}
	})
}

// FuzzMapTokenQuery: Harbor's token service grants by the first segment of each repository name
// it parses; every such name it can parse from a forwarded query is inside the project.
func FuzzMapTokenQuery(f *testing.F) {
	for _, seed := range []string{
		"scope=repository%3Alibrary%2Fhello%3Apull&service=harbor-registry",
		"ns=docker.io&scope=repository%3Ahello%3Apull%2Cpush&service=harbor-registry",
		"ns=ghcr.io&scope=repository%3Aowner%2Fapp%3Apull",
		"account=a&scope=repository%3Ax%3Apull+repository%3Ay%3Apush%2Cpull",
		"scope=registry%3Acatalog%3A%2A",
		"sc%6Fpe=repository%3Aother%2Fx%3Apull",
		"scope=repository(plugin)%3Ax%3Apull",
		"scope=repository%3Ax%3Ay%3Apull",
		"a=b;scope=repository:other/x:pull",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// The form's one-pass mapping agrees with the query's, bounds apart.
		if form, err := MapTokenForm(raw, fuzzProjects.Default); err == nil {
			if q, qerr := mapTokenQuery(raw, fuzzProjects.Default); qerr != nil || q != form {
				t.Fatalf("MapTokenForm %q and mapTokenQuery %q (%v) disagree on %q", form, q, qerr, raw)
			}
		}
		query, target, err := MapTokenRequest(fuzzProjects, raw)
		if pull := MapTokenPull(fuzzProjects, raw); pull != "" && (err != nil || query != pull) {
			t.Fatalf("fast path and full mapping disagree on %q: %q, %q %v", raw, pull, query, err)
		}
		if err != nil {
			return
		}
		values, _ := url.ParseQuery(query)
		for _, param := range values["scope"] {
			for _, scope := range strings.Split(param, " ") {
				first, last := strings.Index(scope, ":"), strings.LastIndex(scope, ":")
				if first < 0 || last <= first {
					continue // Harbor ignores it
				}
				typ, name := scope[:first], scope[first+1:last]
				if typ == "registry" {
					continue
				}
				if !strings.HasPrefix(name, target.Name+"/") || !validName(name) {
					t.Fatalf("scope %q forwarded from %q", scope, raw)
				}
			}
		}
	})
}

// FuzzChallenge: a rewritten challenge never sends the client's token request to another origin.
func FuzzChallenge(f *testing.F) {
	for _, seed := range []string{
		`Bearer realm="http://h/service/token",service="harbor-registry",scope="repository:hub/x:pull"`,
		`Basic realm="harbor", Bearer realm="http://h/t"`,
		`Bearer realm=harbor`,
		`Bearer realm="a\"b",scope="x"`,
		`bearer REALM="x", realm="y"`,
		`Bearer realm="http://h/t",service="s",scope="repository:ghcr/owner/app:pull,push"`,
		`Bearer realm="http://h/t",service="s",scope="repository:ghcr/owner/app:x:pull"`,
		`Negotiate YWJjZA==, Bearer realm="http://h/t",scope="repository:ghcr/owner/app:pull", Bearer realm="https://auth.example.org/t"`,
		`Digest realm="a, Bearer realm=\"http://evil/\"", nonce="x", Bearer realm="http://harbor.example.com/t"`,
		// A scope list alone reaches unmapScopes' own-scope branch in the first comparison below.
		`repository:ghcr/owner/app:pull`,
		`repository:ghcr/owner/app:pull,push`,
		`repository:ghcr/owner/app:x:pull`,
		`repository:ghcr/owner/app:pull repository:ghcr/owner/base:pull`,
		`repository:ghcr/owner/apps:pull`,
	} {
		f.Add(seed)
	}
	x := mirror()
	x.Project = newProject("ghcr", false, "ghcr.io")
	x.Route.Name, x.MappedName = "owner/app", "ghcr/owner/app"
	originOnly := &Exchange{Origin: "https://harbor.example.com", RequestHost: "harbor.example.com", RealmPath: "/service/token"}
	f.Fuzz(func(t *testing.T, value string) {
		if own, general := unmapScopes(x, value), unmapScopesGeneral(x, value); own != general {
			t.Fatalf("the request's own scope %q, the general rule %q, from %q", own, general, value)
		}
		out := Challenge(x, value)
		if general := challengeGeneral(x, value); general != out {
			t.Fatalf("fast path %q and general parser %q disagree on %q", out, general, value)
		}
		if out == value {
			return
		}
		realms, ok := bearerRealms(out)
		if _, parsed := bearerRealms(value); !ok || !parsed {
			t.Fatalf("%q rewritten to %q, which is not a challenge list (input parsed: %v)", value, out, parsed)
		}
		for _, realm := range realms {
			if !strings.HasPrefix(realm, x.Origin+"/") {
				t.Fatalf("realm %q in %q (from %q)", realm, out, value)
			}
		}
		// Origin-fix-only: a realm may only move from this host (or a relative one) to its origin.
		before, _ := bearerRealms(value)
		after, _ := bearerRealms(Challenge(originOnly, value))
		if len(before) != len(after) {
			t.Fatalf("origin-fix-only: realms %q became %q", before, after)
		}
		for i := range before {
			origin, rest, ok := splitOrigin(before[i])
			local := ok && (origin == "" || strings.EqualFold(hostOf(origin), originOnly.RequestHost))
			if local && after[i] != originOnly.Origin+rest || !local && after[i] != before[i] {
				t.Fatalf("origin-fix-only: realm %q became %q", before[i], after[i])
			}
		}
	})
}

// bearerRealms lists the realm of every Bearer challenge in a header value, parsed as an RFC 7235
// list by regular expressions (another reading than the parser under test); ok is false when the
// value is not such a list.
func bearerRealms(value string) (realms []string, ok bool) {
	inBearer := false
	rest := value
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return realms, true
		}
		if m := fuzzParamRE.FindStringSubmatch(rest); m != nil {
			if inBearer && strings.EqualFold(m[1], "realm") {
				v := m[2]
				if strings.HasPrefix(v, `"`) {
					v = fuzzUnescapeRE.ReplaceAllString(v[1:len(v)-1], "$1")
				}
				realms = append(realms, v)
			}
			rest = rest[len(m[0]):]
			continue
		}
		m := fuzzSchemeRE.FindStringSubmatch(rest)
		if m == nil {
			return realms, false
		}
		inBearer = strings.EqualFold(m[1], "bearer")
		rest = rest[len(m[0]):]
	}
}

var (
	// an auth-param, up to the end of its list item
	fuzzParamRE = regexp.MustCompile(`^([!#$%&'*+.^_` + "`" + `|~0-9A-Za-z-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\(?s:.))*"|[!#$%&'*+.^_` + "`" + `|~0-9A-Za-z-]+)[ \t]*(?:,|$)`)
	// an auth-scheme, with its token68 if it has one
	fuzzSchemeRE   = regexp.MustCompile(`^([!#$%&'*+.^_` + "`" + `|~0-9A-Za-z-]+)(?:[ \t]+[A-Za-z0-9._~+/-]+=*[ \t]*(?:,|$)|[ \t]*(?:,|$)|[ \t]+)`)
	fuzzUnescapeRE = regexp.MustCompile(`\\((?s:.))`)
)

// FuzzURL: a rewritten Location is relative, on the public origin, or left exactly as it was.
func FuzzURL(f *testing.F) {
	for _, seed := range []string{
		"/v2/hub/library/nginx/blobs/uploads/u?_state=x",
		"http://mirror.example.com/v2/hub/x/blobs/uploads/u",
		"https://s3.example.com/bucket/v2/hub/x",
		"//mirror.example.com/v2/hub/x",
		"http://mirror.example.com",
		"/v2/_catalog?last=hub%2Fx&n=1",
	} {
		f.Add(seed)
	}
	x := underMirrorPath()
	f.Fuzz(func(t *testing.T, loc string) {
		out, keep := URL(x, loc)
		if !keep || out == loc {
			return
		}
		relative := strings.HasPrefix(out, "/") && !strings.HasPrefix(out, "//")
		if !relative && !strings.HasPrefix(out, x.Origin+"/") {
			t.Fatalf("URL(%q) = %q: neither relative nor on %s", loc, out, x.Origin)
		}
		Link(x, "<"+loc+`>; rel="next"`) // must not panic either
	})
}

// FuzzCatalogPage: whatever the client asks and whatever Harbor answers, a catalog page holds
// only the project's repositories, without the project, sorted, after last, at most n, and its
// Link continues from the page's last name.
func FuzzCatalogPage(f *testing.F) {
	for _, seed := range []struct{ body, page string }{
		{`{"repositories":["alpha/x","hub/library/nginx","hub/team/app","hub0/y"]}`, "n=1"},
		{`{"repositories":["hub/b","hub/a","hub/hub/c","ghcr/x"]}`, "n=2&last=a"},
		{`{"repositories":["hub/a"]}`, "last=%ZZ&n=-1"},
		{`{"repositories":null}`, ""},
		{`{"repositories":["hub/b","hub/a","hub/b"]}`, "n=1"},
		{`not json`, "n=0"},
	} {
		f.Add(seed.body, seed.page)
	}
	t := newProject("hub", true, "docker.io")
	f.Fuzz(func(tt *testing.T, harbor, page string) {
		body, link, err := CatalogPage([]byte(harbor), t, page, "/hub")
		if err != nil {
			if len(err.Body()) == 0 || (err.Status != 400 && err.Status != 502) {
				tt.Fatalf("refusal %+v", err)
			}
			return
		}
		var in, out struct{ Repositories []string }
		_ = json.Unmarshal([]byte(harbor), &in)
		if json.Unmarshal(body, &out) != nil || out.Repositories == nil {
			tt.Fatalf("page %q is not a catalog document", body)
		}
		values, _ := url.ParseQuery(page)
		last := values.Get("last")
		for i, name := range out.Repositories {
			if !slices.Contains(in.Repositories, "hub/"+name) || name == "" {
				tt.Fatalf("page holds %q, which Harbor did not list in hub (%q)", name, harbor)
			}
			if (last != "" && name <= last) || (i > 0 && name <= out.Repositories[i-1]) {
				tt.Fatalf("page %q not sorted after last %q", out.Repositories, last)
			}
		}
		if n, convErr := strconv.Atoi(values.Get("n")); convErr == nil && len(out.Repositories) > n {
			tt.Fatalf("page of %d for n=%d", len(out.Repositories), n)
		}
		if link != "" {
			next := url.Values{"n": {values.Get("n")}, "last": {out.Repositories[len(out.Repositories)-1]}, "ns": {"docker.io"}}
			if want := "</hub/v2/_catalog?" + next.Encode() + `>; rel="next"`; link != want {
				tt.Fatalf("Link %q, want %q", link, want)
			}
		}
	})
}

// hasDotSegment reports a "." or ".." path segment, which a server would resolve away.
func hasDotSegment(path string) bool {
	for _, segment := range strings.Split(path, "/") {
		if segment == "." || segment == ".." {
			return true
		}
	}
	return false
}
