package examples

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	harbormirror "github.com/harbormirror/harbormirror"
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

// settingsByChannel delivers plugin settings for the middleware "m" through each of Traefik's
// own channels: the file provider, Docker labels and a CRD's JSON (which the Kubernetes
// provider hands over as decoded JSON). key is written as given.
func settingsByChannel(t *testing.T, key string) map[string]map[string]any {
	t.Helper()
	fromLabels, err := label.DecodeConfiguration(map[string]string{
		"traefik.http.middlewares.m.plugin.harbormirror.project": "hub",
		"traefik.http.middlewares.m.plugin.harbormirror." + key:  "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	fromFile := decodeDynamic(t, "http:\n  middlewares:\n    m:\n      plugin:\n        harbormirror:\n          project: hub\n          "+key+": true\n")
	return map[string]map[string]any{
		"labels": fromLabels.HTTP.Middlewares["m"].Plugin[pluginKey],
		"file":   fromFile.HTTP.Middlewares["m"].Plugin[pluginKey],
		"crd":    {"project": "hub", key: true},
	}
}

// TestUnknownOptionIsCaught: a misspelt option, in each form Traefik delivers settings, passes
// Traefik's own decoding, yet every guard of optionProblems reports it.
func TestUnknownOptionIsCaught(t *testing.T) {
	for where, settings := range settingsByChannel(t, "readOnlyy") {
		if _, err := traefikDecode(settings); err != nil {
			t.Fatalf("%s: Traefik's decoding: %v", where, err)
		}
		problems := optionProblems(t, settings)
		for _, guard := range []string{"is not one of the README's", "the plugin's New"} {
			hit := false
			for _, p := range problems {
				hit = hit || strings.Contains(p, guard) && strings.Contains(p, "readOnlyy")
			}
			if !hit {
				t.Errorf("%s: guard %q did not report readOnlyy: %q", where, guard, problems)
			}
		}
	}
}

// TestOptionCaseIsExact: "readonly" is readOnly in other letter case. Traefik's decoder would
// set a field named ReadOnly from it (mapstructure matches names without regard to case, shown
// here on a bare struct); every channel hands the key to the plugin as written (Docker labels
// too), and the plugin refuses it, naming the right spelling.
func TestOptionCaseIsExact(t *testing.T) {
	var bare struct{ ReadOnly bool }
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{WeaklyTypedInput: true, Result: &bare})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(map[string]any{"readonly": "true"}); err != nil || !bare.ReadOnly {
		t.Errorf("mapstructure no longer matches names regardless of case (%v, %v): the Config's design can be revisited", bare, err)
	}
	for where, settings := range settingsByChannel(t, "readonly") {
		cfg, err := traefikDecode(settings)
		if err != nil {
			t.Fatalf("%s: Traefik's decoding: %v", where, err)
		}
		if _, ok := cfg.Settings["readonly"]; !ok {
			t.Errorf("%s: the plugin did not get the key as written: %v", where, cfg.Settings)
		}
		_, err = harbormirror.New(context.Background(), http.NotFoundHandler(), cfg, "m")
		if err == nil || !strings.Contains(err.Error(), "readonly: no such option; did you mean readOnly?") {
			t.Errorf("%s: New: %v; want readonly refused with the spelling readOnly", where, err)
		}
	}
	// Spelt exactly, through every channel, the option is taken.
	for where, settings := range settingsByChannel(t, "readOnly") {
		cfg, err := traefikDecode(settings)
		if err != nil {
			t.Fatalf("%s: Traefik's decoding: %v", where, err)
		}
		if o, err := cfg.Options(); err != nil || !o.ReadOnly {
			t.Errorf("%s: readOnly: %+v, %v", where, o, err)
		}
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
