package realharbor

import (
	"strings"
	"testing"
)

func TestRenderJinja(t *testing.T) {
	tmpl := "a={{ x }} {% if f.on %}ON{% else %}OFF{% endif %}\n{% for c in list %}{% if c == 'B' %}[{{c}}]{% endif %}{% endfor %}{{8443}}"
	got, err := renderJinja(tmpl, map[string]any{"x": 1, "f": map[string]any{"on": false}, "list": []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a=1 OFF\n[B]8443"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A branch not taken is not evaluated; a missing variable in a taken one is an error.
	if _, err := renderJinja("{% if off %}{{ a | to_json }}{% endif %}", map[string]any{"off": false}); err != nil {
		t.Errorf("untaken branch evaluated: %v", err)
	}
	if _, err := renderJinja("{{ missing }}", map[string]any{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing variable: err = %v", err)
	}
	if _, err := renderJinja("{% if x %}no end", map[string]any{"x": true}); err == nil {
		t.Error("unclosed if: no error")
	}
}
