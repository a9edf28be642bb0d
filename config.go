package harbormirror

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

// Config is the middleware's configuration as Traefik fills it: CreateConfig, then Traefik's
// decoder (mapstructure) with the middleware's settings.
//
// It has no field per option on purpose. Traefik's decoder matches a key to a field without
// regard to letter case and does not tell which key it used, so "readonly" would set a ReadOnly
// field unseen. Every key lands in Settings instead, as written, and Options reads the options
// by their exact names, refusing a key that is an option spelt in other letter case.
type Config struct {
	// Settings are the middleware's settings, keys as written in Traefik's dynamic configuration
	// (file provider, Docker labels, Kubernetes CRD). The README's Options table names them.
	Settings map[string]interface{} `json:"-" mapstructure:",remain"`
}

// CreateConfig returns an empty configuration: Options supplies the defaults.
func CreateConfig() *Config {
	return &Config{}
}

// Options are the middleware's options once read from Settings and checked.
type Options struct {
	// Project is the Harbor project served as the registry root; empty means origin-fix-only mode.
	Project string `json:"project,omitempty"`
	// Registries routes containerd's ?ns= to projects, e.g. {"docker.io": "hub", "ghcr.io": "ghcr"}.
	// Settings may nest it ({"docker": {"io": "hub"}}) because Docker labels split keys on dots.
	Registries map[string]string `json:"registries,omitempty"`
	// LibraryPrefix puts one-component Docker Hub names under library/.
	LibraryPrefix bool `json:"libraryPrefix"`
	// MirrorPath serves the mirror under a path of a shared host, e.g. /hub.
	MirrorPath string `json:"mirrorPath,omitempty"`
	// TokenPath is Harbor's token endpoint.
	TokenPath string `json:"tokenPath,omitempty"`
	// PublicURL is the origin clients use; empty derives it per request.
	PublicURL string `json:"publicURL,omitempty"`
	// ReadOnly lets only GET and HEAD reach the registry API.
	ReadOnly bool `json:"readOnly,omitempty"`
	// RegistryOnly answers 404 to anything but the registry API and the token path.
	RegistryOnly bool `json:"registryOnly"`
}

// optionNames are the options' keys, as the README and Options' json tags spell them.
var optionNames = []string{"libraryPrefix", "mirrorPath", "project", "publicURL", "readOnly", "registries", "registryOnly", "tokenPath"}

// DefaultOptions are the options of a middleware whose settings name none.
func DefaultOptions() Options {
	return Options{LibraryPrefix: true, TokenPath: "/service/token", RegistryOnly: true}
}

// Options reads the options from Settings over DefaultOptions. Values arrive as Traefik's
// providers deliver them: strings from the file provider and Docker labels ("true"), typed
// values from Kubernetes CRDs; a nil value (an empty YAML key) keeps the default.
func (c *Config) Options() (Options, error) {
	o := DefaultOptions()
	if c == nil {
		return o, nil
	}
	keys := make([]string, 0, len(c.Settings))
	for k := range c.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys) // errors name the same key every time
	var unknown []string
	for _, k := range keys {
		if err := setOption(&o, k, c.Settings[k]); err != nil {
			return Options{}, err
		}
		if !isOption(k) {
			if spelt := optionIgnoringCase(k); spelt != "" {
				return Options{}, fmt.Errorf("%s: no such option; did you mean %s? (option names are case-sensitive)", k, spelt)
			}
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return Options{}, fmt.Errorf("unknown settings %s (known: %s)", strings.Join(unknown, ", "), strings.Join(optionNames, ", "))
	}
	if o.Project != "" && !rewrite.ValidProject(o.Project) {
		return Options{}, fmt.Errorf("project: %q is not a Harbor project name (lowercase letters, digits, '.', '_', '-'; starting and ending with a letter or digit)", o.Project)
	}
	return o, nil
}

// setOption sets the option named exactly k; any other key is left to the caller.
func setOption(o *Options, k string, v interface{}) error {
	if v == nil {
		return nil
	}
	var err error
	switch k {
	case "project":
		o.Project, err = stringOption(k, v)
	case "mirrorPath":
		o.MirrorPath, err = stringOption(k, v)
	case "tokenPath":
		o.TokenPath, err = stringOption(k, v)
	case "publicURL":
		o.PublicURL, err = stringOption(k, v)
	case "libraryPrefix":
		o.LibraryPrefix, err = boolOption(k, v)
	case "readOnly":
		o.ReadOnly, err = boolOption(k, v)
	case "registryOnly":
		o.RegistryOnly, err = boolOption(k, v)
	case "registries":
		raw, ok := v.(map[string]interface{})
		if !ok {
			return fmt.Errorf("registries: want a map of registry host to project, got %T", v)
		}
		o.Registries, err = flattenRegistries(raw)
	}
	return err
}

func isOption(k string) bool {
	for _, name := range optionNames {
		if k == name {
			return true
		}
	}
	return false
}

// optionIgnoringCase returns the option k names when letter case is ignored, or "".
func optionIgnoringCase(k string) string {
	for _, name := range optionNames {
		if strings.EqualFold(k, name) {
			return name
		}
	}
	return ""
}

func stringOption(k string, v interface{}) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %T", k, v)
	}
	return s, nil
}

// boolOption takes a bool, or a string as the file provider and Docker labels deliver one.
func boolOption(k string, v interface{}) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s: %q is not true or false", k, v)
		}
		return b, nil
	}
	return false, fmt.Errorf("%s: want true or false, got %T", k, v)
}

// flattenRegistries joins nested keys with dots and checks each entry.
func flattenRegistries(raw map[string]interface{}) (map[string]string, error) {
	out := map[string]string{}
	if err := flattenInto(out, "", raw); err != nil {
		return nil, err
	}
	return out, nil
}

func flattenInto(out map[string]string, prefix string, raw map[string]interface{}) error {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // errors name the same key every time
	for _, k := range keys {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch v := raw[k].(type) {
		case string:
			registry := strings.ToLower(key)
			if _, err := rewrite.Origin("https", registry); err != nil {
				return fmt.Errorf("registries: %q is not a registry host name", key)
			}
			if !rewrite.ValidProject(v) {
				return fmt.Errorf("registries.%s: %q is not a Harbor project name", key, v)
			}
			out[registry] = v
		case map[string]interface{}:
			if err := flattenInto(out, key, v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("registries.%s: want a project name, got %T", key, v)
		}
	}
	return nil
}

// Mirror is the middleware. It holds no mutable state, so one instance serves concurrent requests.
//
// Yaegi (speed): the per-request code below uses plain functions rather than methods, and does its
// string work with few standard-library calls: a method call costs several times a function call,
// and every interpreted statement counts.
type Mirror struct {
	next     http.Handler
	projects *rewrite.Projects
	// The lanes of the common pull requests (rewrite.Lanes), as fields of their own so that a
	// request reaches each in one selector; nil without a default project (see withoutLanes).
	pullLane, tokenLane, challengeLane, hostLane *regexp.Regexp
	pullTemplate, tokenTemplate, challengeTail   string
	maxPull, maxToken                            int
	tokenQueryAt                                 int // where the query starts in a token lane's mapped target
	errorNames                                   *strings.Replacer

	originOnly   bool
	atRoot       bool // a project is served at the host's root: no mirrorPath, not origin-only
	mirrorPath   string
	tokenPath    string
	realmPath    string // mirrorPath + tokenPath
	publicOrigin string
	readOnly     bool
	registryOnly bool
}

// newMirror builds a Mirror from its configuration: everything a request reads is decided here,
// once, so that serving reads fields only.
func newMirror(c *Config) (*Mirror, error) {
	o, err := c.Options()
	if err != nil {
		return nil, err
	}
	m := &Mirror{readOnly: o.ReadOnly, registryOnly: o.RegistryOnly}
	registries := o.Registries
	m.projects = rewrite.NewProjects(o.Project, registries, o.LibraryPrefix)
	m.originOnly = o.Project == "" && len(registries) == 0
	if m.mirrorPath, err = rewrite.ParseMirrorPath(o.MirrorPath); err != nil {
		return nil, fmt.Errorf("mirrorPath: %q %w", o.MirrorPath, err)
	}
	if m.originOnly && m.mirrorPath != "" {
		return nil, fmt.Errorf("mirrorPath: needs a project or registries to serve")
	}
	if m.tokenPath, err = rewrite.ParseTokenPath(o.TokenPath); err != nil {
		return nil, fmt.Errorf("tokenPath: %q %w", o.TokenPath, err)
	}
	m.realmPath = m.mirrorPath + m.tokenPath
	m.atRoot = !m.originOnly && m.mirrorPath == ""
	if lanes := rewrite.NewLanes(m.projects, m.mirrorPath, m.tokenPath); lanes != nil {
		m.pullLane, m.pullTemplate, m.maxPull = lanes.Pull, lanes.PullTemplate, lanes.MaxPull
		m.tokenLane, m.tokenTemplate, m.maxToken = lanes.Token, lanes.TokenTemplate, lanes.MaxToken
		m.tokenQueryAt = len(m.tokenPath + "?")
		m.challengeLane, m.challengeTail, m.hostLane, m.errorNames = lanes.Challenge, lanes.ChallengeTail, lanes.Host, lanes.ErrorNames
	}
	if o.PublicURL != "" {
		if m.publicOrigin, err = rewrite.ParsePublicURL(o.PublicURL); err != nil {
			return nil, fmt.Errorf("publicURL: %q %w", o.PublicURL, err)
		}
	}
	return m, nil
}
