package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/internal/readme"
)

// A trimmed `go test -bench` output of yaegitest: three runs of the compiled and Yaegi rows of
// one request, one of everything else.
const sample = `loadavg: 0.50 0.40 0.30 1/200 1234
goos: linux
cpu: Test CPU
BenchmarkHarborAlone/ManifestHEAD-2         	     200	       200 ns/op	      49 B/op	       3 allocs/op
BenchmarkHarborAlone/BlobGET1MiB-2          	     200	       200 ns/op	      49 B/op	       3 allocs/op
BenchmarkHarborAlone/TokenGET-2             	     200	       100 ns/op	      49 B/op	       2 allocs/op
BenchmarkHarborAlone/Challenge401-2         	     200	       300 ns/op	      49 B/op	       4 allocs/op
BenchmarkCompiled/ManifestHEAD-2            	     200	      2200 ns/op	      49 B/op	      10 allocs/op
BenchmarkCompiled/ManifestHEAD-2            	     200	      9900 ns/op	      49 B/op	      10 allocs/op
BenchmarkCompiled/ManifestHEAD-2            	     200	      2400 ns/op	      49 B/op	      10 allocs/op
BenchmarkCompiled/BlobGET1MiB-2             	     200	      3000 ns/op	      49 B/op	      10 allocs/op
BenchmarkCompiled/TokenGET-2                	     200	      2000 ns/op	      49 B/op	      10 allocs/op
BenchmarkCompiled/Challenge401-2            	     200	      8000 ns/op	      49 B/op	      30 allocs/op
BenchmarkYaegi/ManifestHEAD-2               	     200	     13200 ns/op	      49 B/op	     126 allocs/op
BenchmarkYaegi/BlobGET1MiB-2                	     200	     19000 ns/op	      49 B/op	     126 allocs/op
BenchmarkYaegi/TokenGET-2                   	     200	      7000 ns/op	      49 B/op	      76 allocs/op
BenchmarkYaegi/Challenge401-2               	     200	    150300 ns/op	      49 B/op	     366 allocs/op
BenchmarkYaegiEmptyPlugin/ManifestHEAD-2     	     200	      1400 ns/op	      49 B/op	      17 allocs/op
BenchmarkYaegiEmptyPlugin/BlobGET1MiB-2      	     200	      1500 ns/op	      49 B/op	      17 allocs/op
BenchmarkYaegiEmptyPlugin/TokenGET-2         	     200	      1100 ns/op	      49 B/op	      16 allocs/op
BenchmarkYaegiEmptyPlugin/Challenge401-2     	     200	      1330 ns/op	      49 B/op	      19 allocs/op
BenchmarkYaegiEmptyWrapper/ManifestHEAD-2    	     200	      5000 ns/op	      49 B/op	      45 allocs/op
BenchmarkYaegiEmptyWrapper/BlobGET1MiB-2     	     200	     11000 ns/op	      49 B/op	      45 allocs/op
BenchmarkYaegiEmptyWrapper/TokenGET-2        	     200	      4000 ns/op	      49 B/op	      44 allocs/op
BenchmarkYaegiEmptyWrapper/Challenge401-2    	     200	      6300 ns/op	      49 B/op	      47 allocs/op
BenchmarkYaegiFloor/PassThrough-2           	     200	      6700 ns/op	      49 B/op	     109 allocs/op
BenchmarkYaegiFloor/OriginFixWrapperOnly-2  	     200	      7900 ns/op	      49 B/op	     124 allocs/op
BenchmarkYaegiFloor/Refused404-2            	     200	     14000 ns/op	      49 B/op	     216 allocs/op
BenchmarkYaegiHostile/TokenGETAtBounds-2    	     200	    870000 ns/op	         0.8700 ms/req	      49 B/op	   11600 allocs/op
BenchmarkYaegiHostile/PullLongName-2        	     200	     17000 ns/op	         0.01700 ms/req	      49 B/op	     200 allocs/op
BenchmarkYaegiHeap-2                        	       5	 203646484 ns/op	         5.089 MiB-plugin/op	         1.239 MiB-stdlib/op	14254230 B/op	  197474 allocs/op
PASS
loadavg: 1.50 1.40 1.30 2/200 1234
`

func TestSection(t *testing.T) {
	run, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	got, err := run.section(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "go1.26.8")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Latest `make bench` run, 2026-12-07: Test CPU, GOMAXPROCS 2; go1.26.8",
		"medians of 3 runs",
		"Load average 0.50 0.40 0.30 at start, 1.50 1.40 1.30 at end",
		// median of 2200, 9900, 2400 is 2400; minus Harbor alone's 200 ns and 3 allocs
		"| manifest HEAD (containerd, `?ns=docker.io`) | 0.20 µs, 3 allocs | 2.20 µs, 7 allocs | **13.0 µs, 123 allocs** | 1.20 µs, 14 allocs | 4.80 µs, 42 allocs |",
		"| 401 challenge with Harbor's error document | 0.30 µs, 4 allocs | 7.70 µs, 26 allocs | **150 µs, 362 allocs** | 1.03 µs, 15 allocs | 6.00 µs, 43 allocs |",
		"| request | Harbor alone | plugin, compiled | plugin under Yaegi | empty Yaegi plugin | empty plugin + one-method wrapper |\n|---|---|---|---|---|---|\n",
		"a request passed through untouched 6.70 µs, 109 allocs",
		"5.1 MiB for its code, 1.2 MiB",
		"(`BenchmarkYaegiHostile`, 2 kinds; see [Security](#security)): TokenGETAtBounds, **0.87 ms** per request under Yaegi (target: ≤ 5 ms)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
}

func TestSectionNamesWhatIsMissing(t *testing.T) {
	for _, missing := range []string{"BenchmarkYaegi/TokenGET", "BenchmarkYaegiEmptyWrapper/Challenge401"} {
		run, err := parse(strings.NewReader(strings.Replace(sample, missing+"-", "BenchmarkOther-", 1)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run.section(time.Now(), "go"); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("error %v, want one naming %s", err, missing)
		}
	}
	if _, err := parse(strings.NewReader("FAIL\n")); err == nil {
		t.Error("an output without results parsed")
	}
}

func TestReadmeUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte("a\n"+readmeBegin+"\nold\n"+readmeEnd+"\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := readme.Update(path, readmeBegin, readmeEnd, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "a\n" + readmeBegin + "\nnew\n" + readmeEnd + "\nb\n"; string(b) != want {
		t.Errorf("README:\n%s\nwant\n%s", b, want)
	}
	if err := readme.Update(filepath.Join(t.TempDir(), "none.md"), readmeBegin, readmeEnd, ""); err == nil {
		t.Error("a missing README updated")
	}
}
