package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Buckets of CPU time in a profile, by what the sampled stack was doing.
const (
	bucketPlugin    = "plugin" // interpreted plugin code: Yaegi, its reflect calls, its allocations
	bucketGC        = "gc"     // the collector's background work (proportional to all allocation)
	bucketSyscall   = "syscall"
	bucketAlloc     = "alloc" // allocation and GC assists outside the plugin
	bucketOtherCode = "other" // Traefik, net/http, the scheduler, ...
)

// attribution is a CPU profile split into buckets, in seconds; Plugin* split the plugin's share.
type attribution struct {
	Total   float64            `json:"total_s"`
	Buckets map[string]float64 `json:"buckets_s"`
	// Plugin's share by the innermost frame: Yaegi's own code, reflect, allocation, other.
	PluginParts map[string]float64 `json:"plugin_parts_s"`
}

// attribute reads a CPU profile's stacks (go tool pprof -traces) and gives each sample to its
// innermost owner: the interpreted plugin when a Yaegi frame comes before (closer to the leaf
// than) any of Traefik's proxy, transport or connection-writing frames, which the plugin calls
// but which Traefik alone runs too.
func attribute(cpuProfile string) (attribution, error) {
	out, err := exec.Command("go", "tool", "pprof", "-traces", cpuProfile).Output()
	if err != nil {
		return attribution{}, err
	}
	a := attribution{Buckets: map[string]float64{}, PluginParts: map[string]float64{}}
	var value float64
	var stack []string
	flush := func() {
		if len(stack) > 0 {
			a.add(value, stack)
		}
		stack, value = nil, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			continue
		}
		if len(line) < 12 {
			continue
		}
		head, fn := strings.TrimSpace(line[:11]), strings.TrimSpace(line[11:])
		if head != "" {
			d, err := time.ParseDuration(head)
			if err != nil {
				continue // a header line of the report
			}
			flush()
			value = d.Seconds()
		}
		if fn != "" && value > 0 {
			fn, _, _ = strings.Cut(fn, " (inline)")
			stack = append(stack, fn)
		}
	}
	flush()
	return a, sc.Err()
}

func (a *attribution) add(v float64, stack []string) {
	a.Total += v
	has := func(sub string) bool {
		for _, f := range stack {
			if strings.Contains(f, sub) {
				return true
			}
		}
		return false
	}
	inPlugin := false
	for _, f := range stack {
		if strings.Contains(f, "yaegi/interp.") {
			inPlugin = true
			break
		}
		if strings.Contains(f, "ReverseProxy") || strings.Contains(f, "net/http.(*persistConn)") || strings.Contains(f, "net/http.(*Transport)") ||
			strings.Contains(f, "net/http.(*response)") || strings.Contains(f, "net/http.(*chunkWriter)") || strings.Contains(f, "net.(*conn)") {
			break
		}
	}
	leaf := stack[0]
	alloc := has("runtime.mallocgc") || has("runtime.gcAssistAlloc")
	switch {
	case has("runtime.gcBgMarkWorker") || has("runtime.bgsweep") || has("runtime.bgscavenge"):
		a.Buckets[bucketGC] += v
	case inPlugin:
		a.Buckets[bucketPlugin] += v
		switch {
		case alloc:
			a.PluginParts["allocation"] += v
		case strings.HasPrefix(leaf, "reflect."):
			a.PluginParts["reflect"] += v
		case strings.Contains(leaf, "yaegi/"):
			a.PluginParts["yaegi"] += v
		default:
			a.PluginParts["other"] += v
		}
	case alloc:
		a.Buckets[bucketAlloc] += v
	case strings.Contains(strings.ToLower(leaf), "syscall"):
		a.Buckets[bucketSyscall] += v
	default:
		a.Buckets[bucketOtherCode] += v
	}
}

// perUnit turns seconds of profile into µs per unit of work (a request, a MB): the profile
// covered profileSecs of a run of runSecs that did units.
func perUnit(seconds, units, profileSecs, runSecs float64) float64 {
	if units == 0 || runSecs == 0 {
		return 0
	}
	return seconds / (units * profileSecs / runSecs) * 1e6
}

func fmtUS(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
