package harbormirror

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/harbormirror/harbormirror/rewrite"
)

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
