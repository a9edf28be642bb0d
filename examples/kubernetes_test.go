package examples

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/provider/kubernetes/crd/traefikio/v1alpha1"
	"gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"
)

// decodeManifests decodes each YAML document of a manifest file into a new T, as the API server
// would store it (YAML to JSON), refusing fields the CRD type does not have.
func decodeManifests[T any](t *testing.T, rel, kind string) []T {
	t.Helper()
	var out []T
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(read(t, rel), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		j, err := k8syaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s document %d: %v", rel, i, err)
		}
		var meta struct{ APIVersion, Kind string }
		if err := json.Unmarshal(j, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.APIVersion != "traefik.io/v1alpha1" || meta.Kind != kind {
			t.Fatalf("%s document %d: %s %s, want traefik.io/v1alpha1 %s", rel, i, meta.APIVersion, meta.Kind, kind)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s document %d: %v", rel, i, err)
		}
		out = append(out, v)
	}
	return out
}

func stripComments(doc string) string {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")
}

// crdPluginSettings turns a Middleware's spec.plugin into Traefik's plugin configuration the way
// its CRD provider does (pkg/provider/kubernetes/crd/kubernetes.go, createPluginMiddleware):
// marshal the apiextensions JSON values, unmarshal into map[string]dynamic.PluginConf.
func crdPluginSettings(t *testing.T, mw v1alpha1.Middleware) map[string]dynamic.PluginConf {
	t.Helper()
	data, err := json.Marshal(mw.Spec.Plugin)
	if err != nil {
		t.Fatal(err)
	}
	pcMap := map[string]dynamic.PluginConf{}
	if err := json.Unmarshal(data, &pcMap); err != nil {
		t.Fatal(err)
	}
	return pcMap
}

// TestKubernetesMiddleware: both Middlewares decode with Traefik's CRD types; their plugin
// settings, as the CRD provider hands them over (JSON types: readOnly a boolean), give every
// option as intended.
func TestKubernetesMiddleware(t *testing.T) {
	mws := decodeManifests[v1alpha1.Middleware](t, "kubernetes/middleware.yaml", "Middleware")
	byName := map[string]v1alpha1.Middleware{}
	for _, mw := range mws {
		if mw.Namespace != "harbor" {
			t.Errorf("Middleware %s in namespace %q, want harbor (with the IngressRoute)", mw.Name, mw.Namespace)
		}
		byName[mw.Name] = mw
	}
	if len(byName) != 2 {
		t.Fatalf("want Middlewares %s and %s, got %d", mirrorMiddleware, originMiddleware, len(mws))
	}
	for name, want := range map[string]wantConfig{mirrorMiddleware: wantMirror, originMiddleware: wantOrigin} {
		mw, ok := byName[name]
		if !ok {
			t.Errorf("no Middleware %s", name)
			continue
		}
		plugins := crdPluginSettings(t, mw)
		settings := pluginSettings(t, name, &dynamic.Middleware{Plugin: plugins})
		if name == mirrorMiddleware {
			if v, ok := settings["readOnly"].(bool); !ok || !v {
				t.Errorf("%s: readOnly arrives as %#v, want the boolean true", name, settings["readOnly"])
			}
		}
		checkSettings(t, "Middleware "+name, settings, want)
		// Nothing but the plugin on it.
		spec := mw.Spec
		spec.Plugin = nil
		if !reflect.DeepEqual(spec, v1alpha1.MiddlewareSpec{}) {
			t.Errorf("Middleware %s: settings beside the plugin: %+v", name, spec)
		}
	}
}

// TestKubernetesIngressRoute: the IngressRoute routes both hosts, through their middlewares, to
// the Harbor chart's service as harbor-values.yaml names it, with TLS on websecure.
func TestKubernetesIngressRoute(t *testing.T) {
	irs := decodeManifests[v1alpha1.IngressRoute](t, "kubernetes/ingressroute.yaml", "IngressRoute")
	if len(irs) != 1 {
		t.Fatalf("want one IngressRoute, got %d", len(irs))
	}
	ir := irs[0]
	if ir.Namespace != "harbor" {
		t.Errorf("namespace %q, want harbor", ir.Namespace)
	}
	if !reflect.DeepEqual(ir.Spec.EntryPoints, []string{"websecure"}) {
		t.Errorf("entryPoints %v, want [websecure]", ir.Spec.EntryPoints)
	}
	if ir.Spec.TLS == nil || ir.Spec.TLS.SecretName == "" {
		t.Errorf("no TLS secret: %+v", ir.Spec.TLS)
	}
	harbor := readHarborValues(t)
	want := map[string]string{mirrorHost: mirrorMiddleware, harborHost: originMiddleware}
	if len(ir.Spec.Routes) != len(want)+1 {
		t.Errorf("want %d routes (one per host, and Harbor's without the plugin), got %d", len(want)+1, len(ir.Spec.Routes))
	}
	fallbacks := 0
	for _, r := range ir.Spec.Routes {
		hosts := hostsOf(t, r.Match)
		if len(hosts) != 1 || want[hosts[0]] == "" {
			t.Errorf("route %q: hosts %v", r.Match, hosts)
			continue
		}
		if r.Kind != "Rule" {
			t.Errorf("route %q: kind %q", r.Match, r.Kind)
		}
		switch {
		case len(r.Middlewares) == 0:
			// Harbor's host without the plugin: below the other route's priority (by default
			// the length of its rule), so it serves only while that one is dropped.
			fallbacks++
			if hosts[0] != harborHost || r.Priority == 0 || r.Priority >= len(r.Match) {
				t.Errorf("route %q without middleware: priority %d; only Harbor's host may have one, below its main route", r.Match, r.Priority)
			}
		// Same namespace: the name alone refers to the Middleware.
		case len(r.Middlewares) != 1 || r.Middlewares[0].Name != want[hosts[0]] || r.Middlewares[0].Namespace != "":
			t.Errorf("route %q: middlewares %+v, want %s", r.Match, r.Middlewares, want[hosts[0]])
		}
		if len(r.Services) != 1 {
			t.Fatalf("route %q: want one service, got %+v", r.Match, r.Services)
		}
		s := r.Services[0]
		if s.Name != harbor.Expose.ClusterIP.Name || s.Port.IntValue() != harbor.Expose.ClusterIP.Ports.HTTPPort || s.Kind != "" || s.Namespace != "" {
			t.Errorf("route %q: service %+v, want %s port %d (harbor-values.yaml)", r.Match, s.LoadBalancerSpec, harbor.Expose.ClusterIP.Name, harbor.Expose.ClusterIP.Ports.HTTPPort)
		}
	}
	if fallbacks != 1 {
		t.Errorf("%d routes without the plugin, want 1 (Harbor's host)", fallbacks)
	}
}

type harborValues struct {
	Expose struct {
		Type string `yaml:"type"`
		TLS  struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"tls"`
		ClusterIP struct {
			Name  string `yaml:"name"`
			Ports struct {
				HTTPPort int `yaml:"httpPort"`
			} `yaml:"ports"`
		} `yaml:"clusterIP"`
	} `yaml:"expose"`
	ExternalURL string `yaml:"externalURL"`
}

func readHarborValues(t *testing.T) harborValues {
	t.Helper()
	var v harborValues
	dec := yaml.NewDecoder(strings.NewReader(read(t, "kubernetes/harbor-values.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("harbor-values.yaml: %v", err)
	}
	return v
}

// TestKubernetesHelmValues: Traefik's chart values load the same module and version as the file
// example and enable the CRD provider; Harbor's chart values expose plain HTTP on a ClusterIP
// service with the external URL the origin middleware serves.
func TestKubernetesHelmValues(t *testing.T) {
	var traefik struct {
		Experimental struct {
			Plugins map[string]catalogPlugin `yaml:"plugins"`
		} `yaml:"experimental"`
		Providers struct {
			KubernetesCRD struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"kubernetesCRD"`
		} `yaml:"providers"`
	}
	dec := yaml.NewDecoder(strings.NewReader(read(t, "kubernetes/traefik-values.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&traefik); err != nil {
		t.Fatalf("traefik-values.yaml: %v", err)
	}
	got := traefik.Experimental.Plugins[pluginKey]
	checkCatalogPlugin(t, "traefik-values.yaml", got)
	if static := decodeStatic(t, "file/traefik.yml"); got != static.Experimental.Plugins[pluginKey] {
		t.Errorf("traefik-values.yaml loads %+v, file/traefik.yml %+v", got, static.Experimental.Plugins[pluginKey])
	}
	if len(traefik.Experimental.Plugins) != 1 {
		t.Errorf("plugins: %+v", traefik.Experimental.Plugins)
	}
	if !traefik.Providers.KubernetesCRD.Enabled {
		t.Error("providers.kubernetesCRD.enabled is not true")
	}

	harbor := readHarborValues(t)
	if harbor.Expose.Type != "clusterIP" || harbor.Expose.TLS.Enabled || harbor.Expose.ClusterIP.Name == "" || harbor.Expose.ClusterIP.Ports.HTTPPort == 0 {
		t.Errorf("harbor-values.yaml: want a plain-HTTP ClusterIP service: %+v", harbor.Expose)
	}
	if harbor.ExternalURL != wantOrigin.PublicURL {
		t.Errorf("harbor-values.yaml: externalURL %q, want %q", harbor.ExternalURL, wantOrigin.PublicURL)
	}
}

// TestKubernetesNodes: every node-side snippet points its client at the mirror host, and only for
// registries the mirror middleware routes.
func TestKubernetesNodes(t *testing.T) {
	mirrorURL := wantMirror.PublicURL

	// containerd: certs.d/<registry>/hosts.toml, for each registry routed by ?ns=.
	for registry, server := range map[string]string{"docker.io": "https://registry-1.docker.io", "ghcr.io": "https://ghcr.io"} {
		rel := "kubernetes/nodes/containerd/certs.d/" + registry + "/hosts.toml"
		var hosts struct {
			Server string `toml:"server"`
			Host   map[string]struct {
				Capabilities []string `toml:"capabilities"`
			} `toml:"host"`
		}
		md, err := toml.Decode(read(t, rel), &hosts)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if len(md.Undecoded()) > 0 {
			t.Errorf("%s: unexpected keys %v", rel, md.Undecoded())
		}
		if hosts.Server != server {
			t.Errorf("%s: server %q, want %q", rel, hosts.Server, server)
		}
		h, ok := hosts.Host[mirrorURL]
		if len(hosts.Host) != 1 || !ok || !reflect.DeepEqual(h.Capabilities, []string{"pull", "resolve"}) {
			t.Errorf("%s: want host %q with capabilities [pull resolve], got %+v", rel, mirrorURL, hosts.Host)
		}
		if wantMirror.Registries[registry] == "" {
			t.Errorf("%s: the middleware does not route ?ns=%s", rel, registry)
		}
	}

	// k3s: registries.yaml mirrors.
	var k3s struct {
		Mirrors map[string]struct {
			Endpoint []string `yaml:"endpoint"`
		} `yaml:"mirrors"`
	}
	dec := yaml.NewDecoder(strings.NewReader(read(t, "kubernetes/nodes/k3s-registries.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&k3s); err != nil {
		t.Fatalf("k3s-registries.yaml: %v", err)
	}
	if len(k3s.Mirrors) == 0 {
		t.Error("k3s-registries.yaml: no mirrors")
	}
	for registry, m := range k3s.Mirrors {
		if !reflect.DeepEqual(m.Endpoint, []string{mirrorURL}) {
			t.Errorf("k3s-registries.yaml: %s endpoints %v, want [%s]", registry, m.Endpoint, mirrorURL)
		}
		if wantMirror.Registries[registry] == "" {
			t.Errorf("k3s-registries.yaml: the middleware does not route ?ns=%s", registry)
		}
	}

	// Docker: daemon.json registry-mirrors (Docker Hub only; a bare origin, no path).
	var daemon map[string][]string
	if err := json.Unmarshal([]byte(read(t, "kubernetes/nodes/docker-daemon.json")), &daemon); err != nil {
		t.Fatalf("docker-daemon.json: %v", err)
	}
	if !reflect.DeepEqual(daemon, map[string][]string{"registry-mirrors": {mirrorURL}}) {
		t.Errorf("docker-daemon.json: %v", daemon)
	}

	// podman / CRI-O: registries.conf, a mirror for docker.io by host name.
	var conf struct {
		Registry []struct {
			Prefix   string `toml:"prefix"`
			Location string `toml:"location"`
			Mirror   []struct {
				Location string `toml:"location"`
			} `toml:"mirror"`
		} `toml:"registry"`
	}
	md, err := toml.Decode(read(t, "kubernetes/nodes/podman-registries.conf"), &conf)
	if err != nil {
		t.Fatalf("podman-registries.conf: %v", err)
	}
	if len(md.Undecoded()) > 0 {
		t.Errorf("podman-registries.conf: unexpected keys %v", md.Undecoded())
	}
	u, _ := url.Parse(mirrorURL)
	if len(conf.Registry) != 1 || conf.Registry[0].Prefix != "docker.io" || conf.Registry[0].Location != "registry-1.docker.io" ||
		len(conf.Registry[0].Mirror) != 1 || conf.Registry[0].Mirror[0].Location != u.Host {
		t.Errorf("podman-registries.conf: want docker.io mirrored at %s: %+v", u.Host, conf.Registry)
	}
}
