package rewrite

// dockerHub is the ns containerd sends for Docker Hub content.
const dockerHub = "docker.io"

// Projects routes a request to a Harbor project by the upstream registry the client names.
type Projects struct {
	// Default serves requests that name no registry; nil when every request must name one.
	Default *Project
	byNS    map[string]*Project
}

// NewProjects builds the routing table once, at configuration time.
//
// docker.io falls back to the default project when it is not listed: the default project is the
// Docker Hub mirror in the common set-up, and containerd always sends ns=docker.io to it. Any
// other unlisted registry is unknown, so containerd moves on to its next host instead of getting,
// say, a Docker Hub image under a ghcr.io name.
func NewProjects(defaultProject string, byRegistry map[string]string, libraryPrefix bool) *Projects {
	p := &Projects{byNS: map[string]*Project{}}
	if defaultProject != "" {
		p.Default = newProject(defaultProject, libraryPrefix, "")
		p.byNS[dockerHub] = newProject(defaultProject, libraryPrefix, dockerHub)
	}
	for ns, project := range byRegistry {
		p.byNS[ns] = newProject(project, libraryPrefix && ns == dockerHub, ns)
	}
	return p
}

// projectFor picks the project for a request whose ?ns= is ns ("" when absent).
func projectFor(p *Projects, ns string) (*Project, *Error) {
	if ns == "" {
		if p.Default == nil {
			return nil, nameUnknown("this mirror serves only requests that name their registry with ?ns=")
		}
		return p.Default, nil
	}
	if t := p.byNS[ns]; t != nil {
		return t, nil
	}
	return nil, nameUnknown("this mirror does not serve registry " + quoteDetail(ns))
}
