package realharbor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// API calls Harbor's API (/api/v2.0 + apiPath) through nginx as admin, sending in as JSON
// (when not nil) and decoding the answer into out (when not nil and the status is 2xx). It
// returns the response status and headers; a non-2xx status is an error holding the body.
func (h *Harbor) API(method, apiPath string, in, out any) (int, http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.URL+"/api/v2.0"+apiPath, body)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(AdminUser, AdminPassword)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: %s: %s", method, apiPath, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: %w", method, apiPath, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// configure creates the stack's default world: registry endpoints of the two upstreams, the
// proxy-cache projects hub and ghcr (public), the private project team and its maintainer alice.
func (h *Harbor) configure() error {
	if _, _, err := h.API(http.MethodPost, "/users", map[string]any{
		"username": Alice, "password": AlicePassword, "email": "alice@example.com", "realname": "Alice",
	}, nil); err != nil {
		return err
	}
	return h.createProjects(ProjectHub, ProjectGHCR, ProjectTeam, h.DockerHub.URL, h.GHCR.URL)
}

// createProjects creates registry endpoints (named after the projects) of the upstreams at
// hubURL and ghcrURL, the public proxy-cache projects hub and ghcr on them, and the private
// project team with alice as its maintainer.
func (h *Harbor) createProjects(hub, ghcr, team, hubURL, ghcrURL string) error {
	hubID, err := h.createRegistry(hub, hubURL)
	if err != nil {
		return err
	}
	ghcrID, err := h.createRegistry(ghcr, ghcrURL)
	if err != nil {
		return err
	}
	for _, p := range []struct {
		name       string
		public     bool
		registryID int64
	}{{hub, true, hubID}, {ghcr, true, ghcrID}, {team, false, 0}} {
		project := map[string]any{
			"project_name": p.name,
			"metadata":     map[string]string{"public": fmt.Sprint(p.public)},
		}
		if p.registryID != 0 {
			project["registry_id"] = p.registryID
		}
		if _, _, err := h.API(http.MethodPost, "/projects", project, nil); err != nil {
			return err
		}
	}
	_, _, err = h.API(http.MethodPost, "/projects/"+team+"/members", map[string]any{
		"role_id":     4, // maintainer: push and delete
		"member_user": map[string]any{"username": Alice},
	}, nil)
	return err
}

// createRegistry adds a docker-registry endpoint (anonymous, plain HTTP) and returns its id.
func (h *Harbor) createRegistry(name, rawURL string) (int64, error) {
	_, header, err := h.API(http.MethodPost, "/registries", map[string]any{
		"name": name, "type": "docker-registry", "url": rawURL, "insecure": true,
	}, nil)
	if err != nil {
		return 0, err
	}
	// 201 with Location: /api/v2.0/registries/<id>
	var id int64
	if _, err := fmt.Sscan(path.Base(header.Get("Location")), &id); err != nil {
		return 0, fmt.Errorf("registry %s: no id in Location %q", name, header.Get("Location"))
	}
	return id, nil
}

// Artifact is what Harbor's API tells of an artifact stored in a project.
type Artifact struct {
	Digest    string `json:"digest"`
	MediaType string `json:"manifest_media_type"`
	Tags      []struct {
		Name string `json:"name"`
	} `json:"tags"`
}

// Artifacts lists the artifacts Harbor holds in project's repository repo (repo without the
// project, e.g. "library/hello"); a repository Harbor does not know gives none.
func (h *Harbor) Artifacts(project, repo string) ([]Artifact, error) {
	// Harbor wants the slashes of a repository name encoded twice in API paths.
	escaped := url.PathEscape(url.PathEscape(repo))
	var out []Artifact
	status, _, err := h.API(http.MethodGet, fmt.Sprintf("/projects/%s/repositories/%s/artifacts?with_tag=true&page_size=100", url.PathEscape(project), escaped), nil, &out)
	if status == http.StatusNotFound {
		return nil, nil
	}
	return out, err
}

// WaitArtifact waits until Harbor lists an artifact of digest in project's repository repo,
// and returns it. A proxy-cache project stores what it served in the background, after the
// pull, hence the wait.
func (h *Harbor) WaitArtifact(project, repo, digest string, timeout time.Duration) (Artifact, error) {
	deadline := time.Now().Add(timeout)
	for {
		arts, err := h.Artifacts(project, repo)
		if err != nil {
			return Artifact{}, err
		}
		for _, a := range arts {
			if a.Digest == digest {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return Artifact{}, fmt.Errorf("Harbor has no artifact %s in %s/%s after %v (it has %+v)", digest, project, repo, timeout, arts)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
