package examples

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/provider/file"
	"gopkg.in/yaml.v3"
)

// staticConfig is the part of Traefik's static configuration the file example sets. Decoding with
// KnownFields fails on any other key, so a misspelt one cannot go unnoticed.
type staticConfig struct {
	EntryPoints map[string]struct {
		Address string `yaml:"address"`
		HTTP    struct {
			Redirections *struct {
				EntryPoint struct {
					To     string `yaml:"to"`
					Scheme string `yaml:"scheme"`
				} `yaml:"entryPoint"`
			} `yaml:"redirections"`
			TLS *struct{} `yaml:"tls"`
		} `yaml:"http"`
	} `yaml:"entryPoints"`
	Providers struct {
		File struct {
			Directory string `yaml:"directory"`
			Watch     bool   `yaml:"watch"`
		} `yaml:"file"`
	} `yaml:"providers"`
	Experimental experimental `yaml:"experimental"`
}

type experimental struct {
	Plugins      map[string]catalogPlugin `yaml:"plugins"`
	LocalPlugins map[string]struct {
		ModuleName string `yaml:"moduleName"`
	} `yaml:"localPlugins"`
}

func decodeStatic(t *testing.T, rel string) staticConfig {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(read(t, rel)))
	dec.KnownFields(true)
	var c staticConfig
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return c
}

// TestFileStatic: traefik.yml takes the plugin from the catalog, traefik-offline.yml from
// plugins-local; otherwise they are the same, and they declare what dynamic.yml uses.
func TestFileStatic(t *testing.T) {
	catalog := decodeStatic(t, "file/traefik.yml")
	offline := decodeStatic(t, "file/traefik-offline.yml")

	if len(catalog.Experimental.Plugins) != 1 || len(catalog.Experimental.LocalPlugins) != 0 {
		t.Errorf("traefik.yml: want one catalog plugin and no local one: %+v", catalog.Experimental)
	}
	checkCatalogPlugin(t, "traefik.yml", catalog.Experimental.Plugins[pluginKey])
	// Traefik refuses a name under both plugins and localPlugins ("must be unique").
	if len(offline.Experimental.Plugins) != 0 || len(offline.Experimental.LocalPlugins) != 1 {
		t.Errorf("traefik-offline.yml: want one local plugin and no catalog one: %+v", offline.Experimental)
	}
	if got := offline.Experimental.LocalPlugins[pluginKey].ModuleName; got != pluginModule {
		t.Errorf("traefik-offline.yml: localPlugins.%s.moduleName %q, want %q", pluginKey, got, pluginModule)
	}
	rest, offlineRest := catalog, offline
	rest.Experimental, offlineRest.Experimental = experimental{}, experimental{}
	if !reflect.DeepEqual(rest, offlineRest) {
		t.Errorf("traefik.yml and traefik-offline.yml differ beyond experimental:\n%+v\n%+v", catalog, offline)
	}

	ws, ok := catalog.EntryPoints["websecure"]
	if !ok || ws.HTTP.TLS == nil {
		t.Errorf("no websecure entrypoint with TLS: %+v", catalog.EntryPoints)
	}
	if r := catalog.EntryPoints["web"].HTTP.Redirections; r == nil || r.EntryPoint.To != "websecure" || r.EntryPoint.Scheme != "https" {
		t.Errorf("web does not redirect to websecure: %+v", catalog.EntryPoints["web"])
	}
	if catalog.Providers.File.Directory == "" {
		t.Error("no file provider directory")
	}
}

// TestFileDynamic: dynamic.yml as Traefik's file provider decodes it: both routers, both
// middlewares with every option as intended, the Harbor service and the certificate.
func TestFileDynamic(t *testing.T) {
	conf, err := (&file.Provider{}).DecodeConfiguration("file/dynamic.yml")
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
	checkSettings(t, "file middleware "+mirrorMiddleware, pluginSettings(t, mirrorMiddleware, h.Middlewares[mirrorMiddleware]), wantMirror)
	checkSettings(t, "file middleware "+originMiddleware, pluginSettings(t, originMiddleware, h.Middlewares[originMiddleware]), wantOrigin)

	svc := h.Services["harbor"]
	if svc == nil || svc.LoadBalancer == nil || len(svc.LoadBalancer.Servers) != 1 || !strings.HasPrefix(svc.LoadBalancer.Servers[0].URL, "http://") {
		t.Fatalf("service harbor: want one plain-HTTP server, got %+v", svc)
	}
	// The plugin needs Harbor to see the client's Host: Traefik's default, unless turned off.
	if p := svc.LoadBalancer.PassHostHeader; p != nil && !*p {
		t.Error("service harbor: passHostHeader false")
	}
	if conf.TLS == nil || len(conf.TLS.Certificates) != 1 {
		t.Fatalf("want one TLS certificate: %+v", conf.TLS)
	}
}

// decodeProviderDir decodes the one file of a file-provider directory as Traefik does.
func decodeProviderDir(t *testing.T, dir string) (*dynamic.Configuration, error) {
	t.Helper()
	entries, err := os.ReadDir(filepath.FromSlash(dir))
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 {
		t.Fatalf("%s: want one file, got %d", dir, len(entries))
	}
	return (&file.Provider{}).DecodeConfiguration(filepath.Join(filepath.FromSlash(dir), entries[0].Name()))
}
