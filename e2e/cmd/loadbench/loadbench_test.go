package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

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
// front end and workload, the checks and the report. No check depends on speed: vegeta's loads
// stop after their count of responses, and a wrk run too short for one response is run again,
// longer, so a busy machine makes it slower, not different. The figures mean nothing here.
func TestQuickSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real Traefik (four of them) and nginx")
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
	r, err := run(o)
	if err != nil {
		t.Fatal(err)
	}

	if len(r.Notes) > 0 {
		t.Errorf("problems: %s", strings.Join(r.Notes, "\n"))
	}
	for _, w := range workloads(o) {
		for _, fe := range feOrder {
			ss := r.Samples[w.Key][fe]
			switch {
			case len(ss) != 1:
				t.Errorf("%s via %s: %d samples, want 1", w.Key, fe, len(ss))
			case w.Kind == kindPull && len(ss[0].PullSeconds) != 1:
				t.Errorf("%s via %s: %+v, want 1 pull", w.Key, fe, ss[0])
			case w.Kind == kindVegeta && ss[0].Requests != int64(10*w.Conns):
				t.Errorf("%s via %s: %d requests, want %d", w.Key, fe, ss[0].Requests, 10*w.Conns)
			case w.Kind == kindWrk && ss[0].Requests == 0: // wrk stops after about 10 per connection, or its second
				t.Errorf("%s via %s: no request", w.Key, fe)
			}
		}
	}
	for _, fe := range r.Frontends {
		if fe.Key == fePlugin && strings.Contains(fe.Challenge, project+"/") {
			t.Errorf("the plugin's challenge names the project: %s", fe.Challenge)
		}
	}
	for _, k := range feOrder[1:] {
		if ms := r.Memory[k]; len(ms) == 0 || ms[len(ms)-1].HWM == 0 {
			t.Errorf("no memory figures for %s: %+v", k, ms)
		}
	}

	for _, name := range []string{r.stem() + ".md", r.stem() + ".json", "latest.md"} {
		b, err := os.ReadFile(filepath.Join(o.out, name))
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(name) != ".md" {
			continue
		}
		for _, want := range []string{"| workload | metric |", "Traefik + harbormirror", "Traefik + empty Yaegi plugin", "### Against the floors",
			"harbormirror − wrapper", "VmHWM", "load average", "**Smoke run**", r.Machine.CPU} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", name, want)
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
	for _, want := range []string{r.Machine.CPU, "| manifest HEAD, 32 conns |", "peak RSS", "harbormirror − empty plugin", "](bench/results/latest.md)", readmeEnd + "\n\nrest"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("README section lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "old") {
		t.Errorf("the old section stayed:\n%s", b)
	}
}
