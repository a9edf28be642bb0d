package pullload

import (
	"errors"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Summary sums up a set of pulls.
type Summary struct {
	Pulls     int // attempted (not skipped)
	Completed int // finished with every digest verified
	Errors    int
	Skipped   int
	Verified  int   // digests verified, over all pulls
	Bytes     int64 // layer bytes read
	// Wall is from the first pull's start to the last one's end.
	Wall                       time.Duration
	Min, Median, P90, P99, Max time.Duration // of the completed pulls
	Mean                       time.Duration
	FirstErrors                []string // up to 5
	First, Last                time.Time
}

// Summarize sums up pulls.
func Summarize(pulls []Pull) Summary {
	var s Summary
	var durations []time.Duration
	for _, p := range pulls {
		if errors.Is(p.Err, ErrSkipped) {
			s.Skipped++
			continue
		}
		s.Pulls++
		s.Verified += p.Verified
		s.Bytes += p.Bytes
		if s.First.IsZero() || p.Start.Before(s.First) {
			s.First = p.Start
		}
		if end := p.Start.Add(p.Duration); end.After(s.Last) {
			s.Last = end
		}
		if p.Err != nil {
			s.Errors++
			if len(s.FirstErrors) < 5 {
				s.FirstErrors = append(s.FirstErrors, p.Err.Error())
			}
			continue
		}
		s.Completed++
		durations = append(durations, p.Duration)
	}
	s.Wall = s.Last.Sub(s.First)
	if len(durations) > 0 {
		slices.Sort(durations)
		s.Min, s.Max = durations[0], durations[len(durations)-1]
		s.Median = Percentile(durations, 50)
		s.P90 = Percentile(durations, 90)
		s.P99 = Percentile(durations, 99)
		var total time.Duration
		for _, d := range durations {
			total += d
		}
		s.Mean = total / time.Duration(len(durations))
	}
	return s
}

// Percentile is the nearest-rank percentile of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Trend compares the start and the end of a series of samples, after a warm-up.
type Trend struct {
	Samples             int // after the warm-up
	First, Last, Max    float64
	FirstQ, LastQ       float64 // means of the first and the last quarter (after the warm-up)
	Change              float64 // LastQ/FirstQ - 1
	FirstQFrom, LastQTo time.Time
}

// TrendOf computes the trend of value over the samples taken at or after warmEnd; First, Last
// and Max are over all samples.
func TrendOf(series []Sample, warmEnd time.Time, value func(Sample) float64) Trend {
	var t Trend
	var after []float64
	var times []time.Time
	for i, s := range series {
		v := value(s)
		if i == 0 {
			t.First = v
		}
		t.Last = v
		t.Max = max(t.Max, v)
		if !s.Time.Before(warmEnd) {
			after = append(after, v)
			times = append(times, s.Time)
		}
	}
	t.Samples = len(after)
	if len(after) < 4 {
		return t
	}
	q := len(after) / 4
	t.FirstQ, t.LastQ = mean(after[:q]), mean(after[len(after)-q:])
	t.FirstQFrom, t.LastQTo = times[0], times[len(times)-1]
	if t.FirstQ != 0 {
		t.Change = t.LastQ/t.FirstQ - 1
	}
	return t
}

func mean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// Machine describes where a run happened.
type Machine struct {
	CPU     string
	Cores   int
	Kernel  string
	Go      string
	MemoryB int64
}

// ThisMachine reads /proc for the CPU model, the kernel and the memory.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryB = statusKB(b, "MemTotal:") << 10
	}
	return m
}

// LoadAverage is /proc/loadavg's first three fields, e.g. "1.02 0.87 0.60".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
