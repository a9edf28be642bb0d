package realharbor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRequestsFromNginxLog: nginx's JSON lines become harbor.Request records of one test only,
// with the repository, project and token scopes the fake Harbor's log would hold; a line still
// being written is left out.
func TestRequestsFromNginxLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.json")
	log := `{"method":"GET","uri":"/v2/hub-1/library/hello/manifests/latest?ns=docker.io","status":200,"host":"127.0.0.1:5000","x_forwarded_proto":"https","auth_scheme":"Bearer","test":"A"}
{"method":"GET","uri":"/v2/team-1/app/manifests/v1","status":401,"host":"127.0.0.1:5000","test":"B"}
{"method":"GET","uri":"/service/token?scope=repository%3Ahub-1%2Flibrary%2Fhello%3Apull&scope=repository%3Ahub-1%2Fx%3Apull%2Cpush+registry%3Acatalog%3A%2A&service=harbor-registry","status":200,"host":"127.0.0.1","test":"A"}
{"method":"GET","uri":"/v2/hub-1/partial`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &Harbor{requestLog: path}
	reqs, err := h.Requests("A")
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 {
		t.Fatalf("got %d requests of test A, want 2: %v", len(reqs), reqs)
	}
	pull := reqs[0]
	if pull.Repository != "hub-1/library/hello" || pull.Project != "hub-1" || pull.RawQuery != "ns=docker.io" ||
		pull.ForwardedProto != "https" || pull.AuthScheme != "Bearer" || pull.Status != 200 {
		t.Errorf("pull: %+v", pull)
	}
	var scopes []string
	for _, s := range reqs[1].Scopes {
		scopes = append(scopes, s.Type+":"+s.Name+":"+strings.Join(s.Actions, ","))
	}
	want := []string{"repository:hub-1/library/hello:pull", "repository:hub-1/x:pull,push", "registry:catalog:*"}
	if len(scopes) != len(want) {
		t.Fatalf("scopes %v, want %v", scopes, want)
	}
	for i := range want {
		if scopes[i] != want[i] {
			t.Errorf("scope %d: %s, want %s", i, scopes[i], want[i])
		}
	}
}
