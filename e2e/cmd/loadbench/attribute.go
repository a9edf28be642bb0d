package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
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

// attribute reads a CPU profile's stacks and gives each sample to its innermost owner: the
// interpreted plugin when a Yaegi frame comes before (closer to the leaf than) any of Traefik's
// proxy, transport or connection-writing frames, which the plugin calls but which Traefik alone
// runs too.
func attribute(cpuProfile string) (attribution, error) {
	f, err := os.Open(cpuProfile)
	if err != nil {
		return attribution{}, err
	}
	defer f.Close()
	prof, err := profile.Parse(f)
	if err != nil {
		return attribution{}, err
	}
	cpu := slices.IndexFunc(prof.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" })
	if cpu < 0 {
		return attribution{}, fmt.Errorf("%s: not a CPU profile", cpuProfile)
	}
	a := attribution{Buckets: map[string]float64{}, PluginParts: map[string]float64{}}
	for _, s := range prof.Sample {
		var stack []string // leaf first; a location's inlined functions innermost first
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				stack = append(stack, line.Function.Name)
			}
		}
		if len(stack) > 0 {
			a.add(float64(s.Value[cpu])/1e9, stack)
		}
	}
	return a, nil
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
