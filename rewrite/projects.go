package rewrite

// DockerHub is the ns containerd sends for Docker Hub content.
const DockerHub = "docker.io"

// Projects routes a request to a Harbor project by the upstream registry the client names.
type Projects struct {
	// Default serves requests that name no registry ("" when every request must name one).
	Default string
	// ByRegistry maps containerd's ?ns= value to a project.
	ByRegistry map[string]string
	// LibraryPrefix puts one-component Docker Hub names under "library/".
	LibraryPrefix bool
}

// Target picks the project for a request whose ?ns= is ns ("" when absent).
//
// docker.io falls back to Default when it is not listed: the default project is the Docker Hub
// mirror in the common set-up, and containerd always sends ns=docker.io to it. Any other unlisted
// registry is unknown, so containerd moves on to its next host instead of getting, say, a Docker
// Hub image under a ghcr.io name.
func (p Projects) Target(ns string) (Target, *Error) {
	if ns == "" {
		if p.Default == "" {
			return Target{}, nameUnknown("this mirror serves only requests that name their registry with ?ns=")
		}
		return Target{Project: p.Default, Library: p.LibraryPrefix}, nil
	}
	project, listed := p.ByRegistry[ns]
	if !listed && ns == DockerHub {
		project = p.Default
	}
	if project == "" {
		return Target{}, nameUnknown("this mirror does not serve registry " + quoteDetail(ns))
	}
	return Target{Project: project, Library: p.LibraryPrefix && ns == DockerHub, NS: ns}, nil
}
