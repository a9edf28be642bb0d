package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/harbormirror/harbormirror/e2e/clients"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/images"
	"go.yaml.in/yaml/v3"
)

// The deployment examples under examples/, run. (Their decoding by Traefik's own packages is
// tested in the examples module; this is the live half.)

// TestExampleFile: Traefik runs examples/file/dynamic.yml, templated only in Harbor's URL and the
// certificate files, with the plugin declared as examples/file/traefik-offline.yml declares it.
// A client reaching dockerhub.example.com and harbor.example.com by name pulls Docker Hub images
// (and ghcr.io's, by containerd's ?ns=) from Harbor's proxy-cache projects through the mirror
// host, is refused uploads and Harbor's UI there, and pushes to Harbor's own host with https
// upload Locations although Harbor answers with http:// ones.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	hub := startHub(t)
	if err := images.Seed(context.Background(), hub, "library", images.Hello, images.Single); err != nil {
		t.Fatal(err)
	}
	h, err := harbor.Start(harbor.Options{
		Projects: []harbor.Project{
			{Name: "hub", Public: true, ProxyCacheOf: hub.URL},
			{Name: "ghcr", Public: true, ProxyCacheOf: hub.URL},
			{Name: "team", Members: []string{exampleUser}},
		},
		Users:                       map[string]string{exampleUser: examplePassword},
		ExternalScheme:              "https",
		AbsoluteHTTPUploadLocations: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })

	ca := harness.GenerateTestCA(t, exampleMirrorHost, exampleHarborHost)
	dynamic := exampleFileDynamic(t, h.URL, ca)
	tr := harness.StartTraefik(t, harness.TraefikConfig{
		Dynamic:     dynamic,
		TLS:         ca.TLSFiles(),
		ExtraStatic: exampleOfflineStatic(t),
	})
	exampleRoutersUsePlugin(t, tr, "dockerhub-mirror@file", "harbor@file")

	exampleProve(t, exampleTransport(t, ca, tr.TLSURL), func() []exampleRequest { return exampleFromHarbor(h.Requests()) })
}

// TestExampleFilePluginUnavailable: examples/file/dynamic.yml when Traefik cannot load the plugin
// (its sources are missing here; a failed catalog download takes the same path in Traefik).
// What the user sees: Traefik logs "Plugins are disabled because an error has occurred" and
// disables both routers that use a plugin middleware; Harbor's own host keeps working through
// the example's harbor-without-plugin router (without the origin fix); the mirror host answers
// Traefik's 404 and Harbor never sees those requests, so clients fall back to the upstream registry.
func TestExampleFilePluginUnavailable(t *testing.T) {
	t.Parallel()
	h, err := harbor.Start(harbor.Options{Projects: []harbor.Project{{Name: "hub", Public: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })

	ca := harness.GenerateTestCA(t, exampleMirrorHost, exampleHarborHost)
	dynamic := exampleFileDynamic(t, h.URL, ca)
	tr := harness.StartTraefik(t, harness.TraefikConfig{
		Dynamic: dynamic,
		TLS:     ca.TLSFiles(),
		// The plugin declared as traefik-offline.yml declares it, with no sources in plugins-local.
		ExtraStatic: exampleOfflineStatic(t),
		NoPlugin:    true,
		NoWait:      true,
	})

	if line := ldLine(tr.Log(), harness.LogPluginsDisabled); line == "" {
		t.Errorf("Traefik did not log %q", harness.LogPluginsDisabled)
	} else {
		t.Logf("Traefik logged: %s", line)
	}
	for _, name := range []string{"dockerhub-mirror@file", "harbor@file"} {
		if r := ldWaitRouterStatus(t, tr, name); r.Status != "disabled" {
			t.Errorf("router %s: %s (errors %q), want disabled", name, r.Status, r.Errors)
		} else {
			t.Logf("router %s: disabled, errors %q", name, r.Errors)
		}
	}
	if r := ldWaitRouterStatus(t, tr, "harbor-without-plugin@file"); r.Status != "enabled" {
		t.Errorf("router harbor-without-plugin@file: %s (errors %q), want enabled", r.Status, r.Errors)
	}

	client := &http.Client{Transport: exampleTransport(t, ca, tr.TLSURL)}
	get := func(url string) int {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	h.ResetLog()
	// The mirror host: Traefik's own 404, nothing reaches Harbor.
	for _, p := range []string{"/v2/", "/v2/library/hello/manifests/latest"} {
		if code := get("https://" + exampleMirrorHost + p); code != http.StatusNotFound {
			t.Errorf("mirror host %s: %d, want Traefik's 404", p, code)
		}
	}
	if reqs := h.Requests(); len(reqs) != 0 {
		t.Errorf("the mirror host's requests reached Harbor unmapped:\n%s", traceOf(reqs))
	}
	// Harbor's own host: still Harbor (its registry challenge), through the fallback router.
	if code := get("https://" + exampleHarborHost + "/v2/"); code != http.StatusUnauthorized {
		t.Errorf("Harbor's host /v2/: %d, want Harbor's 401", code)
	}
	if reqs := h.Requests(); len(reqs) != 1 || reqs[0].Path != "/v2/" || reqs[0].Host != exampleHarborHost {
		t.Errorf("Harbor got %d requests, want Harbor's host's /v2/:\n%s", len(reqs), traceOf(reqs))
	}
}

// exampleFileDynamic is examples/file/dynamic.yml templated only in Harbor's URL and the
// certificate files.
func exampleFileDynamic(t *testing.T, harborURL string, ca *harness.TestCA) string {
	t.Helper()
	dynamic := exampleRead(t, "file/dynamic.yml")
	dynamic = exampleReplace(t, dynamic, "http://harbor.internal:8080", harborURL)
	dynamic = exampleReplace(t, dynamic, "/etc/traefik/certs/example.com.crt", ca.CertFile)
	return exampleReplace(t, dynamic, "/etc/traefik/certs/example.com.key", ca.KeyFile)
}

// TestREADMEQuickStart: the README's Quick start as a newcomer copies it into a fresh Traefik
// v3.6.12: the static block of step 2 (localPlugins, the sources where step 1 puts them, as the
// harness does) and the dynamic block of step 3, templated only in Harbor's address and the
// certificate. Docker Hub and ghcr.io images pull through the mirror host from Harbor's
// proxy-cache projects.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var static, dynamic string
	for _, m := range regexp.MustCompile("(?s)\n```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		switch {
		case static == "" && strings.HasPrefix(m[1], "experimental:\n  localPlugins:"):
			static = m[1]
		case dynamic == "" && strings.HasPrefix(m[1], "http:\n"):
			dynamic = m[1]
		}
	}
	want := "experimental:\n  localPlugins:\n    " + harness.PluginName + ":\n      moduleName: " + harness.RootModule + "\n"
	if static != want {
		t.Fatalf("README's static configuration (step 2):\n%s\nwant the plugin as the harness provides it:\n%s", static, want)
	}
	if dynamic == "" {
		t.Fatal("README has no dynamic configuration block")
	}

	hub := startHub(t)
	if err := images.Seed(context.Background(), hub, "library", images.Hello, images.Single); err != nil {
		t.Fatal(err)
	}
	h, err := harbor.Start(harbor.Options{
		Projects:       []harbor.Project{{Name: "hub", Public: true, ProxyCacheOf: hub.URL}, {Name: "ghcr", Public: true, ProxyCacheOf: hub.URL}},
		ExternalScheme: "https",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ca := harness.GenerateTestCA(t, exampleMirrorHost, exampleHarborHost)
	tr := harness.StartTraefik(t, harness.TraefikConfig{
		Dynamic:     exampleReplace(t, dynamic, "http://harbor-core.internal:8080", h.URL),
		TLS:         ca.TLSFiles(),
		ExtraStatic: static,
	})
	if !strings.Contains(tr.Log(), harness.LogPluginsLoaded) {
		t.Errorf("Traefik did not log %q, as the README says it does", harness.LogPluginsLoaded)
	}
	rt := exampleTransport(t, ca, tr.TLSURL)
	harborLog := func() []exampleRequest { return exampleFromHarbor(h.Requests()) }
	ref, err := name.ParseReference(exampleMirrorHost + "/hello:latest")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithTransport(rt))
	if err != nil {
		t.Fatalf("pull %s: %v\nHarbor received:\n%s", ref, err, exampleTrace(harborLog()))
	}
	if want := digestOf(t, images.Hello); desc.Digest.String() != want {
		t.Errorf("hello: digest %s, want %s", desc.Digest, want)
	}
	single, err := name.ParseReference(exampleMirrorHost + "/library/single:latest")
	if err != nil {
		t.Fatal(err)
	}
	exampleValidate(t, single, rt, harborLog)
	exampleValidate(t, single, exampleNS{inner: rt, registry: "ghcr.io"}, harborLog)
	reqs := harborLog()
	for _, path := range []string{"/v2/hub/library/hello/manifests/latest", "/v2/ghcr/library/single/manifests/latest"} {
		if !exampleSaw(reqs, "GET", exampleMirrorHost, path, 200) {
			t.Errorf("Harbor never got GET %s; it received:\n%s", path, exampleTrace(reqs))
		}
	}
}

// TestExampleComposeLabels: the labels of Harbor's proxy service in
// examples/compose/docker-compose.override.yml, on a container that a private dockerd runs from a
// locally imported fakeharbor image; Traefik's Docker provider discovers them and the same
// pulls, refusals and push as TestExampleFile go through them. Only the service port label is
// adapted (fakeharbor listens on a free port of the host network instead of nginx's 8080).
func TestExampleComposeLabels(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.ClientDockerd)

	var compose struct {
		Services map[string]struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(exampleRead(t, "compose/docker-compose.override.yml")), &compose); err != nil {
		t.Fatal(err)
	}
	labels := compose.Services["proxy"].Labels
	const portLabel = "traefik.http.services.harbor.loadbalancer.server.port"
	if labels[portLabel] != "8080" || len(labels) < 10 {
		t.Fatalf("proxy labels: want Harbor's nginx port 8080 and the routers: %v", labels)
	}
	port := harness.FreePort(t)
	labels[portLabel] = strconv.Itoa(port)

	start := time.Now()
	tarPath := exampleFakeharborTar(t)
	t.Logf("TIMING build fakeharbor: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	d := clients.StartDockerd(t, clients.DockerdOptions{})
	d.Import(tarPath, "fakeharbor:example", `ENTRYPOINT ["/fakeharbor"]`)
	args := []string{"--detach", "--network", "host", "--name", "proxy"}
	for k, v := range labels {
		args = append(args, "--label", k+"="+v)
	}
	args = append(args, "fakeharbor:example",
		"-listen", "127.0.0.1:"+strconv.Itoa(port),
		"-projects", "hub:proxy,ghcr:proxy,team:private",
		"-users", exampleUser+":"+examplePassword,
		"-external-scheme", "https",
		"-absolute-http-locations")
	out, err := d.Run(args...)
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	// Removed before dockerd stops, which would give it its shutdown timeout.
	t.Cleanup(func() { _, _ = d.Docker("rm", "--force", id) })
	logs := func() string {
		out, _ := d.Docker("logs", id)
		return out
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs(), "fakeharbor: listening on"); time.Sleep(100 * time.Millisecond) {
		// e.g. the free port was taken in the meantime
		if running, _ := d.Docker("inspect", "--format", "{{.State.Running}}", id); strings.TrimSpace(running) != "true" || time.Now().After(deadline) {
			t.Fatalf("fakeharbor did not start (running: %s):\n%s", strings.TrimSpace(running), logs())
		}
	}

	t.Logf("TIMING dockerd, import, fakeharbor up: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	ca := harness.GenerateTestCA(t, exampleMirrorHost, exampleHarborHost)
	tr := harness.StartTraefik(t, harness.TraefikConfig{
		TLS: ca.TLSFiles(),
		// As the compose file's Traefik command: the Docker provider, for containers that opt in.
		ExtraStatic: "providers:\n  docker:\n    endpoint: " + d.Host + "\n    exposedByDefault: false\n",
	})
	for _, r := range []string{"dockerhub-mirror@docker", "harbor@docker"} {
		if err := tr.WaitRouter(r, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	exampleRoutersUsePlugin(t, tr, "dockerhub-mirror@docker", "harbor@docker")
	t.Logf("TIMING Traefik up, labelled routers discovered: %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	exampleProve(t, exampleTransport(t, ca, tr.TLSURL), func() []exampleRequest { return exampleFromTrace(logs()) })
	t.Logf("TIMING pulls, refusals and push: %v", time.Since(start).Round(time.Millisecond))
}

// exampleRoutersUsePlugin fails unless the plugin loaded and each router is enabled with its
// middleware: Traefik drops a router whose plugin failed and keeps answering.
func exampleRoutersUsePlugin(t *testing.T, tr *harness.Traefik, names ...string) {
	t.Helper()
	if !strings.Contains(tr.Log(), harness.LogPluginsLoaded) {
		t.Fatalf("Traefik did not log %q", harness.LogPluginsLoaded)
	}
	routers, err := tr.Routers()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		found := false
		for _, r := range routers {
			if r.Name == name {
				found = true
				if r.Status != "enabled" || len(r.Middlewares) != 1 {
					t.Errorf("router %s is %s with middlewares %v (errors %v)", r.Name, r.Status, r.Middlewares, r.Errors)
				}
			}
		}
		if !found {
			t.Errorf("no router %s", name)
		}
	}
}
