package realharbor

import (
	"fmt"
	"sort"
	"strings"
)

// renderJinja renders the subset of Jinja that Harbor's prepare templates use in the branches
// a plain-HTTP, single-host install takes: {{ name }} (dotted names, or an integer literal),
// {% if name %} / {% if name == 'literal' %} with {% else %}, and {% for x in name %} over a
// list of strings. Branches not taken are skipped unevaluated (they hold filters and
// expressions this subset does not know). A name missing from vars is an error, so a template
// that grew a variable fails loudly instead of rendering an empty value.
func renderJinja(tmpl string, vars map[string]any) (string, error) {
	nodes, rest, err := parseJinja(tmpl, "")
	if err != nil {
		return "", err
	}
	if rest != "" {
		return "", fmt.Errorf("jinja: unexpected %q", firstLine(rest))
	}
	var b strings.Builder
	if err := execJinja(&b, nodes, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

type jinjaNode struct {
	text      string // plain text
	expr      string // {{ expr }}
	cond      string // {% if cond %}
	loopVar   string // {% for loopVar in loopList %}
	loopList  string
	then, alt []jinjaNode
}

// parseJinja parses until one of the end tags in stop ("endif", "else|endif", "endfor") and
// returns the nodes and the input from that tag on.
func parseJinja(s, stop string) ([]jinjaNode, string, error) {
	var nodes []jinjaNode
	for s != "" {
		i := nextJinjaTag(s)
		if i < 0 {
			nodes = append(nodes, jinjaNode{text: s})
			return nodes, "", nil
		}
		if i > 0 {
			nodes = append(nodes, jinjaNode{text: s[:i]})
		}
		s = s[i:]
		if strings.HasPrefix(s, "{{") {
			end := strings.Index(s, "}}")
			if end < 0 {
				return nil, "", fmt.Errorf("jinja: unclosed {{ in %q", firstLine(s))
			}
			nodes = append(nodes, jinjaNode{expr: strings.TrimSpace(s[2:end])})
			s = s[end+2:]
			continue
		}
		end := strings.Index(s, "%}")
		if end < 0 {
			return nil, "", fmt.Errorf("jinja: unclosed {%% in %q", firstLine(s))
		}
		fields := strings.Fields(s[2:end])
		if len(fields) == 0 {
			return nil, "", fmt.Errorf("jinja: empty tag")
		}
		switch tag := fields[0]; tag {
		case "endif", "else", "endfor":
			if !strings.Contains("|"+stop+"|", "|"+tag+"|") {
				return nil, "", fmt.Errorf("jinja: unexpected {%% %s %%}", tag)
			}
			return nodes, s, nil
		case "if":
			n := jinjaNode{cond: strings.Join(fields[1:], " ")}
			var rest string
			var err error
			if n.then, rest, err = parseJinja(s[end+2:], "else|endif"); err != nil {
				return nil, "", err
			}
			if strings.HasPrefix(rest, "{%") && strings.Fields(rest[2:])[0] == "else" {
				e := strings.Index(rest, "%}")
				if n.alt, rest, err = parseJinja(rest[e+2:], "endif"); err != nil {
					return nil, "", err
				}
			}
			if rest == "" {
				return nil, "", fmt.Errorf("jinja: {%% if %s %%} without endif", n.cond)
			}
			s = rest[strings.Index(rest, "%}")+2:]
			nodes = append(nodes, n)
		case "for":
			if len(fields) != 4 || fields[2] != "in" {
				return nil, "", fmt.Errorf("jinja: unsupported %q", s[:end+2])
			}
			n := jinjaNode{loopVar: fields[1], loopList: fields[3]}
			var rest string
			var err error
			if n.then, rest, err = parseJinja(s[end+2:], "endfor"); err != nil {
				return nil, "", err
			}
			if rest == "" {
				return nil, "", fmt.Errorf("jinja: {%% for %%} without endfor")
			}
			s = rest[strings.Index(rest, "%}")+2:]
			nodes = append(nodes, n)
		default:
			return nil, "", fmt.Errorf("jinja: unsupported tag %q", tag)
		}
	}
	return nodes, "", nil
}

// nextJinjaTag is the offset of the first "{{" or "{%" in s, or -1.
func nextJinjaTag(s string) int {
	i, j := strings.Index(s, "{{"), strings.Index(s, "{%")
	if i < 0 || (j >= 0 && j < i) {
		return j
	}
	return i
}

func execJinja(b *strings.Builder, nodes []jinjaNode, vars map[string]any) error {
	for _, n := range nodes {
		switch {
		case n.loopVar != "":
			list, err := lookupJinja(vars, n.loopList)
			if err != nil {
				return err
			}
			items, ok := list.([]string)
			if !ok {
				return fmt.Errorf("jinja: %s is %T, want []string", n.loopList, list)
			}
			for _, item := range items {
				scope := map[string]any{n.loopVar: item}
				for k, v := range vars {
					if k != n.loopVar {
						scope[k] = v
					}
				}
				if err := execJinja(b, n.then, scope); err != nil {
					return err
				}
			}
		case n.cond != "":
			ok, err := evalJinjaCond(n.cond, vars)
			if err != nil {
				return err
			}
			branch := n.alt
			if ok {
				branch = n.then
			}
			if err := execJinja(b, branch, vars); err != nil {
				return err
			}
		case n.expr != "":
			v, err := lookupJinja(vars, n.expr)
			if err != nil {
				return err
			}
			fmt.Fprint(b, v)
		default:
			b.WriteString(n.text)
		}
	}
	return nil
}

func evalJinjaCond(cond string, vars map[string]any) (bool, error) {
	if name, lit, ok := strings.Cut(cond, "=="); ok {
		v, err := lookupJinja(vars, strings.TrimSpace(name))
		if err != nil {
			return false, err
		}
		return fmt.Sprint(v) == strings.Trim(strings.TrimSpace(lit), `'"`), nil
	}
	v, err := lookupJinja(vars, cond)
	if err != nil {
		return false, err
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		return v != "", nil
	default:
		return false, fmt.Errorf("jinja: condition %q is %T", cond, v)
	}
}

// lookupJinja resolves a dotted name in vars; an integer literal stands for itself.
func lookupJinja(vars map[string]any, name string) (any, error) {
	if name != "" && strings.Trim(name, "0123456789") == "" {
		return name, nil
	}
	var cur any = vars
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("jinja: %s: %T has no field %s", name, cur, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("jinja: variable %s is not set (have %s)", name, strings.Join(keysOf(m), ", "))
		}
	}
	return cur, nil
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
