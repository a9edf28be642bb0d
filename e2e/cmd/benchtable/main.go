// Command benchtable turns the output of the plugin's Go benchmarks (yaegitest, `make bench`)
// into the README's table of them: medians over the -count runs, the plugin's own cost as a
// row minus the scripted Harbor alone. It rewrites the README between its markers, so that the
// figures there always come from a run of `make bench`.
//
// Usage: benchtable -in bench/results/gobench-latest.txt -readme README.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/harbormirror/harbormirror/e2e/internal/readme"
)

// The README shows the latest run between these markers.
const (
	readmeBegin = "<!-- gobench:begin (written by make bench) -->"
	readmeEnd   = "<!-- gobench:end -->"
)

func main() {
	in := flag.String("in", "", "go test -bench output (default: standard input)")
	readmePath := flag.String("readme", "", "README to rewrite between its gobench markers (default: print the section)")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		r = f
	}
	run, err := parse(r)
	if err != nil {
		log.Fatal(err)
	}
	section, err := run.section(time.Now(), runtime.Version())
	if err != nil {
		log.Fatal(err)
	}
	if *readmePath == "" {
		fmt.Print(section)
		return
	}
	if err := readme.Update(*readmePath, readmeBegin, readmeEnd, section); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "benchtable: wrote the Go benchmark table into %s\n", *readmePath)
}

// benchRun is one `go test -bench` output: every measurement of every benchmark, by name
// (without the -GOMAXPROCS suffix) and unit.
type benchRun struct {
	cpu     string
	procs   int
	loadavg []string // /proc/loadavg before and after the run, when make bench recorded it
	samples map[string]map[string][]float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-(\d+))?\s+\d+\s+(.*)$`)

func parse(r io.Reader) (*benchRun, error) {
	run := &benchRun{samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			run.cpu = strings.TrimSpace(cpu)
			continue
		}
		if avg, ok := strings.CutPrefix(line, "loadavg: "); ok {
			if f := strings.Fields(avg); len(f) >= 3 {
				run.loadavg = append(run.loadavg, strings.Join(f[:3], " "))
			}
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[2] != "" {
			run.procs, _ = strconv.Atoi(m[2])
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			if run.samples[m[1]] == nil {
				run.samples[m[1]] = map[string][]float64{}
			}
			run.samples[m[1]][fields[i+1]] = append(run.samples[m[1]][fields[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(run.samples) == 0 {
		return nil, fmt.Errorf("no benchmark results in the input")
	}
	return run, nil
}

// median of a benchmark's measurements in unit; an error names what the run lacks.
func (r *benchRun) median(name, unit string) (float64, error) {
	vs := slices.Clone(r.samples[name][unit])
	if len(vs) == 0 {
		return 0, fmt.Errorf("the run has no %s of %s", unit, name)
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2, nil
	}
	return vs[len(vs)/2], nil
}

// cost is a median time and allocation count, shown as "1.2 µs, 7 allocs".
type cost struct{ ns, allocs float64 }

func (c cost) minus(o cost) cost { return cost{c.ns - o.ns, c.allocs - o.allocs} }
func (c cost) String() string {
	return fmt.Sprintf("%s µs, %.0f allocs", micro(c.ns), c.allocs)
}

// micro shows nanoseconds as microseconds with two or three significant digits.
func micro(ns float64) string {
	us := ns / 1000
	switch {
	case us >= 100:
		return strconv.FormatFloat(us, 'f', 0, 64)
	case us >= 10:
		return strconv.FormatFloat(us, 'f', 1, 64)
	}
	return strconv.FormatFloat(us, 'f', 2, 64)
}

func (r *benchRun) cost(name string) (cost, error) {
	ns, err := r.median(name, "ns/op")
	if err != nil {
		return cost{}, err
	}
	allocs, err := r.median(name, "allocs/op")
	return cost{ns, allocs}, err
}

// The requests of BenchmarkHarborAlone, BenchmarkCompiled, BenchmarkYaegi and its floors
// (BenchmarkYaegiEmptyPlugin, BenchmarkYaegiEmptyWrapper), as the table names them.
var requests = []struct{ bench, title string }{
	{"ManifestHEAD", "manifest HEAD (containerd, `?ns=docker.io`)"},
	{"BlobGET1MiB", "blob GET 1 MiB (32 writes of 32 KiB)"},
	{"TokenGET", "token GET"},
	{"Challenge401", "401 challenge with Harbor's error document"},
}

func (r *benchRun) section(now time.Time, goVersion string) (string, error) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	count := len(r.samples["BenchmarkCompiled/ManifestHEAD"]["ns/op"])
	p("Latest `make bench` run, %s: %s, GOMAXPROCS %d; %s; Yaegi v0.16.1; medians of %d runs (`-count`). "+
		"\"Harbor alone\" is the scripted Harbor without the plugin; the other columns are their row minus that. "+
		"The last two are the floors no Yaegi plugin can beat (`BenchmarkYaegiEmptyPlugin`, `BenchmarkYaegiEmptyWrapper`): "+
		"a plugin whose ServeHTTP only calls next, and one that also wraps the ResponseWriter with one interpreted method. "+
		"Raw output: [bench/results/gobench-latest.txt](bench/results/gobench-latest.txt).\n\n",
		now.UTC().Format("2006-01-02"), r.cpu, r.procs, goVersion, count)
	if len(r.loadavg) == 2 {
		p("Load average %s at start, %s at end: on a busy machine the figures rise with it; compare columns of one run.\n\n", r.loadavg[0], r.loadavg[1])
	}
	p("| request | Harbor alone | plugin, compiled | plugin under Yaegi | empty Yaegi plugin | empty plugin + one-method wrapper |\n" +
		"|---|---|---|---|---|---|\n")
	for _, q := range requests {
		alone, err := r.cost("BenchmarkHarborAlone/" + q.bench)
		if err != nil {
			return "", err
		}
		var cells []string
		for _, bench := range []string{"BenchmarkCompiled/", "BenchmarkYaegi/", "BenchmarkYaegiEmptyPlugin/", "BenchmarkYaegiEmptyWrapper/"} {
			c, err := r.cost(bench + q.bench)
			if err != nil {
				return "", err
			}
			cells = append(cells, c.minus(alone).String())
		}
		cells[1] = "**" + cells[1] + "**" // the plugin under Yaegi, as Traefik runs it
		p("| %s | %s | %s |\n", q.title, alone, strings.Join(cells, " | "))
	}
	var floor []string
	for _, f := range []struct{ bench, title string }{
		{"PassThrough", "a request passed through untouched"},
		{"OriginFixWrapperOnly", "the response wrapper alone (origin-fix-only mode)"},
		{"Refused404", "a refusal (404)"},
	} {
		c, err := r.cost("BenchmarkYaegiFloor/" + f.bench)
		if err != nil {
			return "", err
		}
		floor = append(floor, fmt.Sprintf("%s %s", f.title, c))
	}
	plugin, err := r.median("BenchmarkYaegiHeap", "MiB-plugin/op")
	if err != nil {
		return "", err
	}
	std, err := r.median("BenchmarkYaegiHeap", "MiB-stdlib/op")
	if err != nil {
		return "", err
	}
	p("\nUnder Yaegi before any mapping (`BenchmarkYaegiFloor`, Harbor included): %s. "+
		"Live heap of the loaded plugin (`BenchmarkYaegiHeap`): %.1f MiB for its code, %.1f MiB for the standard library's symbols.\n",
		strings.Join(floor, "; "), plugin, std)
	worst, ms, err := r.costliest("BenchmarkYaegiHostile/", "ms/req")
	if err != nil {
		return "", err
	}
	p("\nThe costliest request Traefik's default limits let through (`BenchmarkYaegiHostile`, %d kinds; "+
		"see [Security](#security)): %s, **%.2f ms** per request under Yaegi (target: ≤ %g ms).\n",
		len(r.named("BenchmarkYaegiHostile/")), strings.TrimPrefix(worst, "BenchmarkYaegiHostile/"), ms, hostileTargetMS)
	return b.String(), nil
}

// hostileTargetMS is issue #13's bound on one request's CPU under Yaegi.
const hostileTargetMS = 5.0

// named lists the run's benchmarks whose names start with prefix.
func (r *benchRun) named(prefix string) []string {
	var names []string
	for name := range r.samples {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// costliest is the benchmark under prefix with the highest median in unit.
func (r *benchRun) costliest(prefix, unit string) (string, float64, error) {
	worst, most := "", -1.0
	for _, name := range r.named(prefix) {
		v, err := r.median(name, unit)
		if err != nil {
			return "", 0, err
		}
		if v > most {
			worst, most = name, v
		}
	}
	if worst == "" {
		return "", 0, fmt.Errorf("the run has no %s benchmarks", prefix)
	}
	return worst, most, nil
}
