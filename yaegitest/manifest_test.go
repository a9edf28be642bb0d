package yaegitest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// manifest is the part of .traefik.yml that Traefik's plugin loader reads.
type manifest struct {
	DisplayName string                 `yaml:"displayName"`
	Type        string                 `yaml:"type"`
	Import      string                 `yaml:"import"`
	Summary     string                 `yaml:"summary"`
	TestData    map[string]interface{} `yaml:"testData"`
}

func TestManifestTestData(t *testing.T) {
	raw, err := os.ReadFile("../.traefik.yml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.DisplayName == "" || m.Type != "middleware" || m.Summary == "" || len(m.TestData) == 0 {
		t.Errorf(".traefik.yml lacks what Traefik requires: %+v", m)
	}
	if !strings.HasPrefix(m.Import, moduleName) {
		t.Errorf("import %q does not start with the module name %s", m.Import, moduleName)
	}
	for name, build := range map[string]build{"compiled": buildCompiled, "yaegi": buildYaegi} {
		var reached string
		handler, err := build(t, m.TestData, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = r.RequestURI }))
		if err != nil {
			t.Fatalf("%s: testData does not build: %v", name, err)
		}
		req := httptest.NewRequest("GET", "/v2/owner/app/manifests/v1?ns=ghcr.io", nil)
		handler.ServeHTTP(httptest.NewRecorder(), req)
		if reached != "/v2/ghcr/owner/app/manifests/v1" {
			t.Errorf("%s: testData mirror forwarded %q", name, reached)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("PUT", "/v2/x/manifests/v1", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: testData is readOnly, PUT got %d", name, rec.Code)
		}
	}
}
