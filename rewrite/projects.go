package rewrite

// DockerHub is the ns containerd sends for Docker Hub content.
const DockerHub = "docker.io"

// Projects routes a request to a Harbor project by the upstream registry the client names.
type Projects struct {
	// Default serves requests that name no registry; nil when every request must name one.
	Default *Target
	byNS    map[string]*Target
}

// NewProjects builds the routing table once, at configuration time.
//
// docker.io falls back to the default project when it is not listed: the default project is the
// Docker Hub mirror in the common set-up, and containerd always sends ns=docker.io to it. Any
// other unlisted registry is unknown, so containerd moves on to its next host instead of getting,
// say, a Docker Hub image under a ghcr.io name.
func NewProjects(defaultProject string, byRegistry map[string]string, libraryPrefix bool) *Projects {
	p := &Projects{byNS: map[string]*Target{}}
	if defaultProject != "" {
		p.Default = NewTarget(defaultProject, libraryPrefix, "")
		p.byNS[DockerHub] = NewTarget(defaultProject, libraryPrefix, DockerHub)
	}
	for ns, project := range byRegistry {
		p.byNS[ns] = NewTarget(project, libraryPrefix && ns == DockerHub, ns)
	}
	return p
}

// TargetFor picks the project for a request whose ?ns= is ns ("" when absent).
func TargetFor(p *Projects, ns string) (*Target, *Error) {
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
