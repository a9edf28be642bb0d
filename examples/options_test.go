package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/config/label"
	"github.com/traefik/traefik/v3/pkg/provider/file"
)

// TestREADMEOptionsAreTheConfig: the README's options table names exactly the plugin's options.
func TestREADMEOptionsAreTheConfig(t *testing.T) {
	readme, config := readmeOptions(t), optionNames(t)
	if strings.Join(readme, ",") != strings.Join(config, ",") {
		t.Errorf("README options %v, Config options %v", readme, config)
	}
}

// TestREADMEQuickStart: the README's own dynamic configuration, through Traefik's file provider,
// names only options the plugin knows, spelt as its options table spells them.
func TestREADMEQuickStart(t *testing.T) {
	readme := read(t, "../README.md")
	found := 0
	for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(readme, -1) {
		if !strings.HasPrefix(m[1], "http:") {
			continue
		}
		conf := decodeDynamic(t, m[1])
		for name, mw := range conf.HTTP.Middlewares {
			found++
			where := fmt.Sprintf("README yaml block %d, middleware %s", i, name)
			for _, p := range optionProblems(t, pluginSettings(t, where, mw)) {
				t.Errorf("%s: %s", where, p)
			}
		}
	}
	if found == 0 {
		t.Error("no middleware in the README's dynamic configuration")
	}
}

// TestUnknownOptionIsCaught: a misspelt option, in each form Traefik delivers settings (file
// provider, Docker labels, CRD JSON), passes Traefik's own decoding, and is lost there, yet
// every guard of optionProblems reports it.
func TestUnknownOptionIsCaught(t *testing.T) {
	fromLabels, err := label.DecodeConfiguration(map[string]string{
		"traefik.http.middlewares.m.plugin.harbormirror.project":   "hub",
		"traefik.http.middlewares.m.plugin.harbormirror.readOnlyy": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	fromFile := decodeDynamic(t, "http:\n  middlewares:\n    m:\n      plugin:\n        harbormirror:\n          project: hub\n          readOnlyy: true\n")
	for where, settings := range map[string]map[string]any{
		"labels": fromLabels.HTTP.Middlewares["m"].Plugin[pluginKey],
		"file":   fromFile.HTTP.Middlewares["m"].Plugin[pluginKey],
		"crd":    {"project": "hub", "readOnlyy": true},
	} {
		cfg, err := traefikDecode(settings)
		if err != nil {
			t.Fatalf("%s: Traefik's decoding: %v", where, err)
		}
		if cfg.ReadOnly {
			t.Errorf("%s: readOnlyy set readOnly", where)
		}
		problems := optionProblems(t, settings)
		for _, guard := range []string{"is not one of the README's", "the Config's catch-all", "the plugin's New"} {
			hit := false
			for _, p := range problems {
				hit = hit || strings.Contains(p, guard) && strings.Contains(p, "readOnlyy")
			}
			if !hit {
				t.Errorf("%s: guard %q did not report readOnlyy: %q", where, guard, problems)
			}
		}
	}
	// ErrorUnused on its own, without the Config's catch-all taking the key first.
	var bare struct{ Project string }
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{WeaklyTypedInput: true, ErrorUnused: true, Result: &bare})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(map[string]any{"project": "hub", "readOnlyy": "true"}); err == nil || !strings.Contains(err.Error(), "readOnlyy") {
		t.Errorf("ErrorUnused: %v", err)
	}
}

// decodeDynamic decodes a dynamic configuration as Traefik's file provider does.
func decodeDynamic(t *testing.T, content string) *dynamic.Configuration {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dynamic.yml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := (&file.Provider{}).DecodeConfiguration(path)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}
