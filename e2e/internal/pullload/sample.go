package pullload

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one look at a process: resident memory now (VmRSS) and its peak so far (VmHWM),
// its threads and open file descriptors, the CPU time it has used, and its goroutines (-1 when
// the profile could not be read).
type Sample struct {
	Time       time.Time
	Label      string
	RSS, HWM   int64 // bytes
	Threads    int
	FDs        int           // open file descriptors: sockets of client and backend connections, logs
	CPU        time.Duration // user + system, since the process started
	Goroutines int
}

// Sampler reads a process's /proc/<pid>/status and, for a Go server such as Traefik with
// api.debug, its goroutine count from GoroutineURL (…/debug/pprof/goroutine?debug=1).
type Sampler struct {
	PID          int
	GoroutineURL string // empty: no goroutine count

	client http.Client
	mu     sync.Mutex
	series []Sample
}

// NewSampler samples pid; goroutineURL may be empty.
func NewSampler(pid int, goroutineURL string) *Sampler {
	return &Sampler{PID: pid, GoroutineURL: goroutineURL, client: http.Client{Timeout: 5 * time.Second}}
}

// Take samples once, labelled (e.g. "before"); it is not added to the series.
func (s *Sampler) Take(label string) Sample {
	sm := Sample{Time: time.Now(), Label: label, Goroutines: -1}
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID)); err == nil {
		sm.RSS = statusKB(status, "VmRSS:") << 10
		sm.HWM = statusKB(status, "VmHWM:") << 10
		sm.Threads = int(statusKB(status, "Threads:"))
	}
	sm.CPU = cpuTime(s.PID)
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.PID)); err == nil {
		sm.FDs = len(fds)
	}
	if s.GoroutineURL != "" {
		if n, err := s.goroutines(); err == nil {
			sm.Goroutines = n
		}
	}
	return sm
}

// Run adds a sample to the series every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			sm := s.Take("")
			s.mu.Lock()
			s.series = append(s.series, sm)
			s.mu.Unlock()
		}
	}
}

// Series returns the samples Run took.
func (s *Sampler) Series() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.series...)
}

// goroutines reads the first line of the goroutine profile: "goroutine profile: total N".
func (s *Sampler) goroutines() (int, error) {
	resp, err := s.client.Get(s.GoroutineURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, fmt.Errorf("GET %s: %s", s.GoroutineURL, resp.Status)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	const prefix = "goroutine profile: total "
	if !strings.HasPrefix(line, prefix) {
		return 0, fmt.Errorf("GET %s: unexpected first line %q", s.GoroutineURL, line)
	}
	return strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, prefix)))
}

// cpuTime is utime + stime of /proc/<pid>/stat, in clock ticks of 10 ms (USER_HZ is 100 on
// every Linux architecture Go supports).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from its end.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func statusKB(status []byte, key string) int64 {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			fields := strings.Fields(string(rest))
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// PIDWithCwd finds the process whose working directory is dir and whose executable is named
// base (e.g. a Traefik started in its own temporary directory), or returns 0.
func PIDWithCwd(dir, base string) int {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || cwd != want {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && filepath.Base(exe) == base {
			return pid
		}
	}
	return 0
}
