package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harness"
)

// TestMain lets the test binary play the registry child, as loadbench itself does.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "registry" {
		registryMain()
		return
	}
	os.Exit(m.Run())
}

// TestQuickSmoke runs `loadbench -quick` with tiny sizes and 10 requests per connection: every
// front end and workload, the checks, the report and the chart; about 25 s (wrk runs 1 s
// whatever the request count). The figures mean nothing here.
func TestQuickSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real Traefik, nginx and wrk for ~25 s")
	}
	o, err := parseFlags([]string{"-quick", "-requests", "10", "-small-blob", "64KiB", "-large-blob", "4MiB", "-pull-size", "2MiB"})
	if err != nil {
		t.Fatal(err)
	}
	o.traefik = harness.TraefikBinary(t)
	o.repo = harness.RepoRoot(t)
	o.out = t.TempDir()
	o.profileDir = o.out
	if runtime.NumCPU() < 2 {
		o.serverCPUs, o.clientCPUs = "", ""
	}
	start := time.Now()
	r, err := run(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loadbench -quick took %v", time.Since(start).Round(100*time.Millisecond))

	if len(r.Notes) > 0 {
		t.Errorf("problems: %s", strings.Join(r.Notes, "\n"))
	}
	for _, w := range workloads(o) {
		for _, fe := range feOrder {
			ss := r.Samples[w.Key][fe]
			if len(ss) != 1 || ss[0].Seconds <= 0 || w.Kind != kindPull && ss[0].Requests == 0 {
				t.Errorf("%s via %s: samples %+v", w.Key, fe, ss)
			}
		}
	}
	for _, fe := range r.Frontends {
		if fe.Key == fePlugin && strings.Contains(fe.Challenge, project+"/") {
			t.Errorf("the plugin's challenge names the project: %s", fe.Challenge)
		}
	}
	for _, k := range []string{feTraefik, fePlugin, feNginx} {
		if ms := r.Memory[k]; len(ms) == 0 || ms[len(ms)-1].HWM == 0 {
			t.Errorf("no memory figures for %s: %+v", k, ms)
		}
	}

	stem := r.stem()
	for _, name := range []string{stem + ".md", stem + ".svg", stem + ".json", "latest.md", "latest.svg"} {
		b, err := os.ReadFile(filepath.Join(o.out, name))
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(name) {
		case ".svg":
			d := xml.NewDecoder(strings.NewReader(string(b)))
			for {
				if _, err := d.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("%s is not well-formed XML: %v", name, err)
				}
			}
		case ".md":
			for _, want := range []string{"| workload | metric |", "3. Traefik v3.6.12 + harbormirror", "VmHWM", "load average", r.Machine.CPU} {
				if !strings.Contains(string(b), want) {
					t.Errorf("%s lacks %q", name, want)
				}
			}
		}
	}

	// The README's section, written into a copy of the README.
	readme := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n"+readmeBegin+"\nold\n"+readmeEnd+"\n\nrest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(readme, r.readmeSection("bench/results")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{r.Machine.CPU, "| manifest HEAD, 32 conns |", "peak RSS", "](bench/results/latest.svg)", readmeEnd + "\n\nrest"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("README section lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "old") {
		t.Errorf("the old section stayed:\n%s", b)
	}
}
