package rewrite

import (
	"strings"
	"testing"
)

// The bounds of limits.go, at and just past each, on the mapping functions themselves.
func TestLimits(t *testing.T) {
	p := NewProjects("hub", nil, true)
	scopes := func(n int, sep string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = "repository%3Ateam%2Fx%3Apull"
		}
		return "scope=" + strings.Join(s, sep)
	}
	pairs := func(n int) string { return "scope=repository%3Ax%3Apull" + strings.Repeat("&a=b", n-1) }
	tokenTests := []struct {
		name   string
		query  string
		status int // 0: mapped
	}{
		{"MaxScopes scopes in one parameter", scopes(MaxScopes, "+"), 0},
		{"one more, + separated", scopes(MaxScopes+1, "+"), 400},
		{"one more, %20 separated", scopes(MaxScopes+1, "%20"), 400},
		{"one more, over two parameters", scopes(MaxScopes/2, "+") + "&" + scopes(MaxScopes/2+1, "+"), 400},
		{"one more, with an encoded key", scopes(MaxScopes, "+") + "&sc%6Fpe=repository%3Ay%3Apull", 400},
		{"MaxQueryParams pairs", pairs(MaxQueryParams), 0},
		{"one pair more", pairs(MaxQueryParams + 1), 400},
		{"query of MaxRequestTarget bytes", "scope=repository%3Ax%3Apull&pad=" + strings.Repeat("p", MaxRequestTarget-len("scope=repository%3Ax%3Apull&pad=")), 0},
		{"one byte more", "scope=repository%3Ax%3Apull&pad=" + strings.Repeat("p", MaxRequestTarget+1-len("scope=repository%3Ax%3Apull&pad=")), 414},
	}
	for _, tt := range tokenTests {
		_, _, err := MapTokenRequest(p, tt.query)
		if status := statusOf(err); status != tt.status {
			t.Errorf("MapTokenRequest: %s: status %d, want %d (%v)", tt.name, status, tt.status, err)
		}
		if len(tt.query) > MaxRequestTarget {
			continue // a form is bounded by MaxTokenForm instead
		}
		if _, err := MapTokenForm(tt.query, p.Default); statusOf(err) != tt.status {
			t.Errorf("MapTokenForm: %s: status %d, want %d (%v)", tt.name, statusOf(err), tt.status, err)
		}
	}
	var x Exchange
	long := "/v2/team/app/blobs/uploads/u-1"
	if err := MapRequest(p, &x, long, "", "_state="+strings.Repeat("s", MaxRequestTarget-len(long)-len("_state="))); err != nil {
		t.Errorf("MapRequest at the bound: %v", err)
	}
	if err := MapRequest(p, &x, long, "", "_state="+strings.Repeat("s", MaxRequestTarget+1-len(long)-len("_state="))); statusOf(err) != 414 {
		t.Errorf("MapRequest past the bound: %v", err)
	}
	if err := MapRequest(p, &x, "/v2/_catalog", "", "n=1"+strings.Repeat("&l%61st=x", MaxQueryParams)); statusOf(err) != 400 {
		t.Errorf("MapRequest with too many pairs: %v", err)
	}
}

func statusOf(err *Error) int {
	if err == nil {
		return 0
	}
	return err.Status
}
