package rewrite

import "testing"

// Challenges as RFC 7235 lists (issue #13, class 5) and the realm of origin-fix-only mode (class 7):
// every Bearer challenge of a list is rewritten, every other challenge keeps its bytes, and in
// origin-fix-only mode only a realm on this host changes.
func TestChallengeList(t *testing.T) {
	originOnly := &Exchange{Origin: "https://harbor.example.com", RequestHost: "harbor.example.com", RealmPath: "/service/token"}
	const mirrored = `Bearer realm="https://mirror.example.com/service/token"`
	tests := []struct {
		name string
		x    *Exchange
		in   string
		want string
	}{
		{"token68 challenge first", mirror(),
			`Negotiate YWJjZA==, Bearer realm="http://h/service/token",service="harbor-registry",scope="repository:hub/library/nginx:pull"`,
			`Negotiate YWJjZA==, ` + mirrored + `,service="harbor-registry",scope="repository:nginx:pull"`},
		{"token68 without padding, with + and /", mirror(),
			`Custom a+b/c.d~e-f_g, Bearer realm="http://h/t"`,
			`Custom a+b/c.d~e-f_g, ` + mirrored},
		{"token68 after the Bearer challenge", mirror(),
			`Bearer realm="http://h/t", Negotiate YWJjZA==`,
			mirrored + `, Negotiate YWJjZA==`},
		{"two Bearer challenges", mirror(),
			`Bearer realm="http://h/t",scope="repository:hub/x:pull", Bearer realm="http://h2/t"`,
			mirrored + `,scope="repository:x:pull", ` + mirrored},
		{"a Bearer challenge of token68 form is kept", mirror(),
			`Bearer abc==, Bearer realm="http://h/t"`,
			`Bearer abc==, ` + mirrored},
		{"quoted commas and escapes of another scheme are not challenges", mirror(),
			`Digest realm="a, Bearer realm=\"http://evil/\"", nonce="x,y", Bearer realm="http://h/t"`,
			`Digest realm="a, Bearer realm=\"http://evil/\"", nonce="x,y", ` + mirrored},
		{"empty list elements", mirror(),
			`, Bearer realm="http://h/t" ,, Basic realm="x",`,
			`, ` + mirrored + ` ,, Basic realm="x",`},
		{"scheme without parameters between", mirror(),
			`Basic, Bearer realm="http://h/t"`,
			`Basic, ` + mirrored},
		{"a parameter before any scheme is not a challenge list", mirror(),
			`realm="http://h/t", Bearer realm="http://h/t"`, `realm="http://h/t", Bearer realm="http://h/t"`},
		{"junk after a parameter value", mirror(),
			`Bearer realm="http://h/t" x, Basic`, `Bearer realm="http://h/t" x, Basic`},
		{"origin-fix-only: a realm on another host stays", originOnly,
			`Bearer realm="https://auth.example.org/token",service="harbor-registry"`,
			`Bearer realm="https://auth.example.org/token",service="harbor-registry"`},
		{"origin-fix-only: this host in other case changes", originOnly,
			`Bearer realm="http://HARBOR.example.com/service/token",service="harbor-registry"`,
			`Bearer realm="https://harbor.example.com/service/token",service="harbor-registry"`},
		{"origin-fix-only: a realm on another port of this host name stays", originOnly,
			`Bearer realm="http://harbor.example.com:8080/service/token"`,
			`Bearer realm="http://harbor.example.com:8080/service/token"`},
		{"origin-fix-only: user info is another host", originOnly,
			`Bearer realm="http://harbor.example.com@evil.example/service/token"`,
			`Bearer realm="http://harbor.example.com@evil.example/service/token"`},
		{"origin-fix-only: a relative realm gets this origin", originOnly,
			`Bearer realm="/service/token"`, `Bearer realm="https://harbor.example.com/service/token"`},
		{"origin-fix-only: list with a foreign and a local realm", originOnly,
			`Negotiate YWJjZA==, Bearer realm="https://auth.example.org/token", Bearer realm="http://harbor.example.com/service/token"`,
			`Negotiate YWJjZA==, Bearer realm="https://auth.example.org/token", Bearer realm="https://harbor.example.com/service/token"`},
	}
	for _, tt := range tests {
		if got := Challenge(tt.x, tt.in); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
