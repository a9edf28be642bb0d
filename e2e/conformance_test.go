package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harness"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// TestRealHarborConformance runs the OCI distribution-spec v1.1.1 conformance suite (pull,
// push, content discovery, content management) twice against the same real Harbor, as alice in
// the private project of a world of its own: directly (Harbor's nginx, namespace
// <team>/conformance/direct) and through Traefik + the plugin serving that project at the root
// (namespace conformance/plugin). It fails for every conformance test
// that fails through the plugin but passes directly; tests that fail against Harbor itself
// (three chunked-upload tests of v2.15.2) are only logged.
func TestRealHarborConformance(t *testing.T) {
	m := startMirror(t, mirrorOptions{Settings: func(m *mirror) map[string]any { return map[string]any{"project": m.TeamProject} }})
	direct := runConformance(t, m.World.Harbor, "direct", m.World.Harbor.URL, m.TeamProject+"/conformance/direct")
	plugin := runConformance(t, m.World.Harbor, "plugin", m.Traefik.WebURL, "conformance/plugin")

	t.Logf("conformance directly against Harbor:   %s", direct.summary())
	t.Logf("conformance through Traefik + plugin:  %s", plugin.summary())
	for _, name := range direct.failed() {
		t.Logf("fails against Harbor itself: %s", name)
	}
	if len(direct.cases) == 0 || len(direct.cases) != len(plugin.cases) {
		t.Errorf("the runs differ in size: %d conformance tests directly, %d through the plugin", len(direct.cases), len(plugin.cases))
	}
	for _, name := range plugin.failed() {
		c, ok := direct.cases[name]
		if !ok || c.outcome() == "passed" {
			t.Errorf("fails only through the plugin: %s: %s", name, plugin.cases[name].message())
		}
	}
}

// conformanceRun is one run's junit report, by test name.
type conformanceRun struct {
	cases map[string]junitCase
}

// runConformance runs the suite against rootURL as alice, in namespace (a crossmount
// namespace next to it), and parses its junit report. The suite exits non-zero when any test
// fails; only a missing report is an error.
func runConformance(t *testing.T, h *realharbor.Harbor, label, rootURL, namespace string) conformanceRun {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.Build, "bin", "conformance.test"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OCI_ROOT_URL="+rootURL,
		"OCI_NAMESPACE="+namespace,
		"OCI_CROSSMOUNT_NAMESPACE="+namespace+"-mount",
		"OCI_USERNAME="+realharbor.Alice,
		"OCI_PASSWORD="+realharbor.AlicePassword,
		"OCI_TEST_PULL=1",
		"OCI_TEST_PUSH=1",
		"OCI_TEST_CONTENT_DISCOVERY=1",
		"OCI_TEST_CONTENT_MANAGEMENT=1",
		"OCI_HIDE_SKIPPED_WORKFLOWS=0",
		"OCI_REPORT_DIR="+dir,
	)
	out, err := cmd.CombinedOutput()
	report, rerr := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if rerr != nil {
		t.Fatalf("conformance %s (%s, %s): no junit report: %v (exit: %v)\n%s", label, rootURL, namespace, rerr, err, harness.Tail(string(out), 40))
	}
	run, perr := parseJUnit(report)
	if perr != nil {
		t.Fatalf("conformance %s: %v", label, perr)
	}
	return run
}

type junitCase struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Status    string `xml:"status,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
	} `xml:"error"`
	Skipped *struct{} `xml:"skipped"`
}

func (c junitCase) outcome() string {
	switch {
	case c.Failure != nil || c.Error != nil:
		return "failed"
	case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
		return "skipped"
	}
	return "passed"
}

// message is the failure's message on one line, e.g. "[FAILED] Expected <int>: 400 to equal <int>: 404".
func (c junitCase) message() string {
	var msg string
	switch {
	case c.Failure != nil && c.Failure.Message != "":
		msg = c.Failure.Message
	case c.Failure != nil:
		msg = c.Failure.Text
	case c.Error != nil:
		msg = c.Error.Message
	}
	return strings.Join(strings.Fields(msg), " ")
}

func parseJUnit(report []byte) (conformanceRun, error) {
	var doc struct {
		Suites []struct {
			Cases []junitCase `xml:"testcase"`
		} `xml:"testsuite"`
		Cases []junitCase `xml:"testcase"` // a report whose root is one <testsuite>
	}
	if err := xml.Unmarshal(report, &doc); err != nil {
		return conformanceRun{}, fmt.Errorf("junit report: %w", err)
	}
	run := conformanceRun{cases: map[string]junitCase{}}
	all := doc.Cases
	for _, s := range doc.Suites {
		all = append(all, s.Cases...)
	}
	for _, c := range all {
		run.cases[c.Name] = c
	}
	return run, nil
}

func (r conformanceRun) failed() []string {
	var names []string
	for name, c := range r.cases {
		if c.outcome() == "failed" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (r conformanceRun) summary() string {
	n := map[string]int{}
	for _, c := range r.cases {
		n[c.outcome()]++
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped", n["passed"], n["failed"], n["skipped"])
}
