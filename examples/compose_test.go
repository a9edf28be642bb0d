package examples

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/traefik/traefik/v3/pkg/config/label"
	"gopkg.in/yaml.v3"
)

// composeOverride is the override file as far as the tests read it.
type composeOverride struct {
	Services map[string]yaml.Node `yaml:"services"`
}

// composeService is one service of the override.
type composeService struct {
	Image    string            `yaml:"image"`
	Command  []string          `yaml:"command"`
	Ports    yaml.Node         `yaml:"ports"`
	Volumes  []string          `yaml:"volumes"`
	Networks []string          `yaml:"networks"`
	Labels   map[string]string `yaml:"labels"`
}

func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	var doc composeOverride
	if err := yaml.Unmarshal([]byte(read(t, "compose/docker-compose.override.yml")), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]composeService{}
	for name, node := range doc.Services {
		var s composeService
		if err := node.Decode(&s); err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		// Compose takes label values as strings; an unquoted true would be a YAML boolean.
		if labels := mappingValue(&node, "labels"); labels != nil {
			for i := 0; i+1 < len(labels.Content); i += 2 {
				if v := labels.Content[i+1]; v.Tag != "!!str" {
					t.Errorf("service %s: label %s is a %s, want a quoted string", name, labels.Content[i].Value, v.Tag)
				}
			}
		}
		out[name] = s
	}
	return out
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// TestComposeLabels: the labels on Harbor's proxy service, through Traefik's own label parser
// (as its Docker provider runs it) and Traefik's plugin decoding, give both routers and both
// middlewares with every option as intended: readOnly a bool true, registries joined back to
// docker.io and ghcr.io although label keys split on dots.
func TestComposeLabels(t *testing.T) {
	services := readCompose(t)
	proxy, ok := services["proxy"]
	if !ok {
		t.Fatal(`no "proxy" service (Harbor's nginx in its docker-compose.yml)`)
	}
	if proxy.Labels["traefik.enable"] != "true" {
		t.Error("proxy: traefik.enable is not true (exposedByDefault is false)")
	}
	conf, err := label.DecodeConfiguration(proxy.Labels)
	if err != nil {
		t.Fatal(err)
	}
	h := conf.HTTP
	checkRouter(t, "router dockerhub-mirror", h.Routers["dockerhub-mirror"], mirrorHost, mirrorMiddleware, "harbor")
	checkRouter(t, "router harbor", h.Routers["harbor"], harborHost, originMiddleware, "harbor")
	checkFallbackRouter(t, "router harbor-without-plugin", h.Routers["harbor-without-plugin"], h.Routers["harbor"])
	if len(h.Routers) != 3 || len(h.Middlewares) != 2 || len(h.Services) != 1 {
		t.Errorf("want 3 routers, 2 middlewares, 1 service: %d, %d, %d", len(h.Routers), len(h.Middlewares), len(h.Services))
	}
	mirror := pluginSettings(t, mirrorMiddleware, h.Middlewares[mirrorMiddleware])
	// What Traefik hands the plugin: strings, and registries nested at the dots.
	if got, want := mirror["registries"], map[string]any{"docker": map[string]any{"io": "hub"}, "ghcr": map[string]any{"io": "ghcr"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("registries as Traefik decodes the labels: %#v, want %#v", got, want)
	}
	if got := mirror["readOnly"]; got != "true" {
		t.Errorf("readOnly as Traefik decodes the labels: %#v, want the string \"true\"", got)
	}
	checkSettings(t, "label middleware "+mirrorMiddleware, mirror, wantMirror)
	checkSettings(t, "label middleware "+originMiddleware, pluginSettings(t, originMiddleware, h.Middlewares[originMiddleware]), wantOrigin)

	svc := h.Services["harbor"]
	if svc == nil || svc.LoadBalancer == nil || svc.LoadBalancer.Servers == nil || len(svc.LoadBalancer.Servers) != 1 || svc.LoadBalancer.Servers[0].Port != "8080" {
		t.Errorf("service harbor: want Harbor's nginx port 8080, got %+v", svc)
	}
	// The Docker provider's per-container options (traefik.docker.*) are not part of the
	// configuration; the rest must all be.
	for k := range proxy.Labels {
		if !strings.HasPrefix(k, "traefik.http.") && k != "traefik.enable" {
			t.Errorf("proxy: label %s is outside traefik.http", k)
		}
	}
}

// TestComposeTraefik: the Traefik service loads the plugin from the catalog with the module and
// version of the file example, reads Docker labels only from containers that opt in, serves TLS
// on websecure, reaches Harbor's network, and takes over ports 80 and 443 from Harbor's nginx.
func TestComposeTraefik(t *testing.T) {
	services := readCompose(t)
	tr, ok := services["traefik"]
	if !ok {
		t.Fatal("no traefik service")
	}
	if !strings.HasPrefix(tr.Image, "traefik:v3.6") {
		t.Errorf("image %q: want traefik:v3.6, the version the e2e suite runs", tr.Image)
	}
	// Traefik's command-line flags are case-insensitive.
	flags := map[string]string{}
	for _, arg := range tr.Command {
		k, v, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !ok || !strings.HasPrefix(arg, "--") {
			t.Errorf("command %q: want --key=value", arg)
		}
		flags[strings.ToLower(k)] = v
	}
	got := catalogPlugin{
		ModuleName: flags["experimental.plugins."+pluginKey+".modulename"],
		Version:    flags["experimental.plugins."+pluginKey+".version"],
	}
	checkCatalogPlugin(t, "compose traefik command", got)
	if static := decodeStatic(t, "file/traefik.yml"); got != static.Experimental.Plugins[pluginKey] {
		t.Errorf("compose loads %+v, file/traefik.yml %+v", got, static.Experimental.Plugins[pluginKey])
	}
	for k, want := range map[string]string{
		"providers.docker":                                "true",
		"providers.docker.exposedbydefault":               "false",
		"entrypoints.websecure.address":                   ":443",
		"entrypoints.web.address":                         ":80",
		"entrypoints.web.http.redirections.entrypoint.to": "websecure",
		"providers.file.directory":                        "/etc/traefik/dynamic",
	} {
		if flags[k] != want {
			t.Errorf("flag --%s=%q, want %q", k, flags[k], want)
		}
	}
	if !reflect.DeepEqual(tr.Networks, []string{"harbor"}) {
		t.Errorf("networks %v, want Harbor's network [harbor]", tr.Networks)
	}
	var docker, dyn bool
	for _, v := range tr.Volumes {
		docker = docker || strings.HasPrefix(v, "/var/run/docker.sock:/var/run/docker.sock")
		dyn = dyn || strings.HasSuffix(strings.TrimSuffix(v, ":ro"), ":/etc/traefik/dynamic")
	}
	if !docker || !dyn {
		t.Errorf("volumes %v: want the Docker socket and the dynamic directory", tr.Volumes)
	}

	// The file provider's directory: the certificate for both hosts.
	conf, err := decodeProviderDir(t, "compose/traefik/dynamic")
	if err != nil {
		t.Fatal(err)
	}
	if conf.TLS == nil || len(conf.TLS.Certificates) != 1 {
		t.Errorf("compose/traefik/dynamic: want one certificate, got %+v", conf.TLS)
	}

	// Harbor's nginx gives up its published ports: Compose's !reset on an empty list.
	proxy := services["proxy"]
	if proxy.Ports.Tag != "!reset" || proxy.Ports.Kind != yaml.SequenceNode || len(proxy.Ports.Content) != 0 {
		t.Errorf("proxy ports: want !reset [], got tag %q kind %v", proxy.Ports.Tag, proxy.Ports.Kind)
	}
}

// TestComposeMerge: Docker Compose's own loader (compose-go, as `docker compose` runs it) merges
// the override into a Harbor installer docker-compose.yml: the result is valid, Harbor's nginx
// keeps its image and network, carries the labels and publishes nothing (!reset), and Traefik
// joins Harbor's network and publishes 80 and 443.
func TestComposeMerge(t *testing.T) {
	opts, err := cli.NewProjectOptions(
		[]string{"testdata/harbor-docker-compose.yml", "compose/docker-compose.override.yml"},
		cli.WithName("harbor"), // the installer's directory name
		cli.WithWorkingDirectory("compose"),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker compose would refuse the override: %v", err)
	}
	proxy, ok := project.Services["proxy"]
	if !ok {
		t.Fatal("no proxy service after the merge")
	}
	if proxy.Image != "goharbor/nginx-photon:v2.13.0" || proxy.ContainerName != "nginx" {
		t.Errorf("proxy lost Harbor's settings: image %q, container %q", proxy.Image, proxy.ContainerName)
	}
	if len(proxy.Ports) != 0 {
		t.Errorf("proxy still publishes %+v", proxy.Ports)
	}
	if _, ok := proxy.Networks["harbor"]; !ok || len(proxy.Networks) != 1 {
		t.Errorf("proxy networks %v", proxy.Networks)
	}
	if want := readCompose(t)["proxy"].Labels; !reflect.DeepEqual(map[string]string(proxy.Labels), want) {
		t.Errorf("proxy labels after the merge differ from the override's:\n%v\n%v", proxy.Labels, want)
	}

	traefik, ok := project.Services["traefik"]
	if !ok {
		t.Fatal("no traefik service after the merge")
	}
	if _, ok := traefik.Networks["harbor"]; !ok {
		t.Errorf("traefik networks %v, want harbor", traefik.Networks)
	}
	published := map[string]uint32{}
	for _, p := range traefik.Ports {
		published[p.Published] = p.Target
	}
	if !reflect.DeepEqual(published, map[string]uint32{"80": 80, "443": 443}) {
		t.Errorf("traefik publishes %v, want 80 and 443", published)
	}
	for _, v := range traefik.Volumes {
		if v.Type == "bind" && strings.HasPrefix(v.Target, "/etc/traefik/") {
			if _, err := os.Stat(v.Source); err != nil && v.Target == "/etc/traefik/dynamic" {
				t.Errorf("volume %s: %v", v.Target, err)
			}
		}
	}
	if n := project.Networks["harbor"].Name; n != "harbor_harbor" {
		t.Errorf("Harbor's network is %q", n)
	}
}
