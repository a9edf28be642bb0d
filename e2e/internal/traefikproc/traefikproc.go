// Package traefikproc runs Traefik with the harbormirror plugin, loaded from this repository's
// sources, outside tests: the demo, soak and loadbench commands share it, and e2e/harness
// shares its plugin copy.
package traefikproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	ModuleName = "github.com/harbormirror/harbormirror" // the plugin's module, as Traefik loads it
	PluginKey  = "harbormirror"                         // its key under experimental.localPlugins
	RouterName = "mirror@file"                          // the router Start configures
)

// PluginDir is where Traefik, started in dir, looks for the plugin's sources: it resolves
// plugins-local/ relative to its working directory.
func PluginDir(dir string) string {
	return filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(ModuleName))
}

// CopyPlugin copies what Traefik's local plugin loader reads from the plugin module at src to
// dst: .traefik.yml, go.mod, go.sum and non-test .go files of the module and its subpackages
// (vendor/ included). Nested modules (e2e/), testdata, plugins-local and hidden directories are
// left out.
func CopyPlugin(src, dst string) error {
	if _, err := os.Stat(filepath.Join(src, ".traefik.yml")); err != nil {
		return fmt.Errorf("not a Traefik plugin (no .traefik.yml): %w", err)
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" ||
				name == "plugins-local" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		name := d.Name()
		keep := strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
		if rel == name { // module root
			keep = keep || name == ".traefik.yml" || name == "go.mod" || name == "go.sum"
		}
		if strings.HasPrefix(rel, "vendor"+string(filepath.Separator)) && name == "modules.txt" {
			keep = true
		}
		if !keep || !d.Type().IsRegular() {
			return nil
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// FindRepo returns the nearest directory at or above the working directory whose go.mod
// declares the plugin's module.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module "+ModuleName+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory: pass -repo", ModuleName)
		}
		dir = parent
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1 (free when asked; Traefik binds
// them next).
func FreePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Config is one Traefik with the plugin in front of one upstream.
type Config struct {
	Bin  string // the Traefik v3 binary
	Repo string // the plugin's repository
	Dir  string // the working directory: configuration, logs and plugins-local/

	Listen string // host:port of the web entrypoint (the mirror)
	API    string // host:port of the API and ping entrypoint

	Project  string // the plugin's project option
	Upstream string // the URL of Harbor

	// GraceTimeOut, when set, is the web entrypoint's lifeCycle.graceTimeOut ("1s").
	GraceTimeOut string
	// Debug turns on api.debug: /debug/pprof on the API entrypoint.
	Debug bool
}

// StaticConfig is cfg's traefik.yml; dynamicPath is where the file provider reads.
func StaticConfig(cfg Config, dynamicPath string) string {
	var web, debug string
	if cfg.GraceTimeOut != "" {
		web = fmt.Sprintf("\n    transport:\n      lifeCycle:\n        graceTimeOut: %s", cfg.GraceTimeOut)
	}
	if cfg.Debug {
		debug = "\n  debug: true"
	}
	return fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: %q%s
  traefik:
    address: %q
ping:
  entryPoint: traefik
api:
  insecure: true
  dashboard: false%s
log:
  level: INFO
  filePath: %q
  noColor: true
accessLog:
  filePath: %q
  format: json
providers:
  file:
    filename: %q
experimental:
  localPlugins:
    %s:
      moduleName: %s
`, cfg.Listen, web, cfg.API, debug, filepath.Join(cfg.Dir, "traefik.log"), filepath.Join(cfg.Dir, "access.log"),
		dynamicPath, PluginKey, ModuleName)
}

// DynamicConfig is cfg's dynamic.yml: one router for every path, through the plugin, to the
// upstream.
func DynamicConfig(cfg Config) string {
	return fmt.Sprintf(`http:
  routers:
    mirror:
      rule: "PathPrefix(`+"`/`"+`)"
      entryPoints: [web]
      middlewares: [%s]
      service: harbor
  middlewares:
    %s:
      plugin:
        %s:
          project: %q
  services:
    harbor:
      loadBalancer:
        servers:
          - url: %q
`, PluginKey, PluginKey, PluginKey, cfg.Project, cfg.Upstream)
}

// Traefik is a started Traefik.
type Traefik struct {
	Bin, Dir   string
	APIURL     string // http://API
	LogPath    string // traefik.log
	AccessPath string // access.log, JSON lines
	OutPath    string // traefik.out: its stdout and stderr
	Cmd        *exec.Cmd

	exited   chan struct{}
	stopOnce sync.Once
	state    string
}

// Start writes the static and dynamic configuration and the plugin's sources into cfg.Dir and
// starts Traefik there, in its own process group (Ctrl-C reaches only the command, which stops
// Traefik itself) and killed when the command dies. It does not wait: see WaitReady.
func Start(cfg Config) (*Traefik, error) {
	tr := &Traefik{
		Bin:        cfg.Bin,
		Dir:        cfg.Dir,
		APIURL:     "http://" + cfg.API,
		LogPath:    filepath.Join(cfg.Dir, "traefik.log"),
		AccessPath: filepath.Join(cfg.Dir, "access.log"),
		OutPath:    filepath.Join(cfg.Dir, "traefik.out"),
		exited:     make(chan struct{}),
	}
	if err := CopyPlugin(cfg.Repo, PluginDir(cfg.Dir)); err != nil {
		return nil, fmt.Errorf("copy the plugin from %s: %w", cfg.Repo, err)
	}
	dynamicPath := filepath.Join(cfg.Dir, "dynamic.yml")
	staticPath := filepath.Join(cfg.Dir, "traefik.yml")
	if err := os.WriteFile(staticPath, []byte(StaticConfig(cfg, dynamicPath)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(dynamicPath, []byte(DynamicConfig(cfg)), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(tr.OutPath)
	if err != nil {
		return nil, err
	}
	tr.Cmd = exec.Command(tr.Bin, "--configFile="+staticPath)
	tr.Cmd.Dir = cfg.Dir
	tr.Cmd.Stdout, tr.Cmd.Stderr = out, out
	tr.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := tr.Cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", tr.Bin, err)
	}
	go func() {
		_ = tr.Cmd.Wait()
		out.Close()
		close(tr.exited)
	}()
	return tr, nil
}

// Pid is Traefik's process id.
func (tr *Traefik) Pid() int { return tr.Cmd.Process.Pid }

// Exited is closed once Traefik has exited.
func (tr *Traefik) Exited() <-chan struct{} { return tr.exited }

// Alive fails, with the end of Traefik's log, once Traefik has exited.
func (tr *Traefik) Alive() error {
	select {
	case <-tr.exited:
		return fmt.Errorf("traefik exited (%v):\n%s", tr.Cmd.ProcessState, Tail(ReadFile(tr.LogPath), 10))
	default:
		return nil
	}
}

// WaitReady waits until the router Start configured is enabled with the plugin's middleware
// and the plugin is loaded.
func (tr *Traefik) WaitReady(timeout time.Duration) error {
	alive := func() error {
		select {
		case <-tr.exited:
			return fmt.Errorf("traefik exited at start-up (%v):\n%s%s", tr.Cmd.ProcessState,
				Tail(ReadFile(tr.OutPath), 10), Tail(ReadFile(tr.LogPath), 10))
		default:
			return nil
		}
	}
	return WaitRouter(tr.APIURL, tr.LogPath, Router{Name: RouterName, Middleware: PluginKey + "@file", Plugin: true}, timeout, alive)
}

// Stop asks Traefik to shut down gracefully (SIGTERM), killing it after 10 s; it returns how
// Traefik ended. Later calls return the same.
func (tr *Traefik) Stop() string {
	tr.stopOnce.Do(func() {
		start := time.Now()
		_ = tr.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-tr.exited:
			tr.state = fmt.Sprintf("Traefik stopped in %v (%v)", time.Since(start).Round(time.Millisecond), tr.Cmd.ProcessState)
		case <-time.After(10 * time.Second):
			_ = tr.Cmd.Process.Kill()
			<-tr.exited
			tr.state = "Traefik did not stop within 10 s and was killed"
		}
	})
	return tr.state
}

// Router is what WaitRouter waits for.
type Router struct {
	Name       string // e.g. mirror@file
	Middleware string // a middleware the router must have, e.g. harbormirror@file
	Plugin     bool   // the plugin must be loaded: Traefik logged "Plugins loaded."
}

var apiClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// WaitRouter polls the API at apiURL until want's router is enabled with its middleware (and,
// with want.Plugin, the log at logPath says the plugins loaded). It fails at once when alive
// fails (e.g. the process exited), Traefik logs that plugins are disabled or the router is in
// error.
func WaitRouter(apiURL, logPath string, want Router, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := alive(); err != nil {
			return err
		}
		log := ReadFile(logPath)
		if line := findLine(log, "Plugins are disabled"); line != "" {
			return fmt.Errorf("traefik could not load the plugin:\n%s", line)
		}
		var routers []struct {
			Name        string   `json:"name"`
			Status      string   `json:"status"`
			Middlewares []string `json:"middlewares"`
			Errors      []string `json:"error"`
		}
		if getJSON(apiURL+"/api/http/routers", &routers) == nil {
			for _, r := range routers {
				if r.Name != want.Name {
					continue
				}
				if r.Status != "enabled" {
					return fmt.Errorf("router %s is %s: %s", r.Name, r.Status, strings.Join(r.Errors, "; "))
				}
				if !slices.Contains(r.Middlewares, want.Middleware) {
					return fmt.Errorf("router %s has middlewares %v, not %s", r.Name, r.Middlewares, want.Middleware)
				}
				// Traefik loads plugins before it serves its API: read the log again in case it
				// grew since.
				if want.Plugin && !strings.Contains(log, "Plugins loaded.") && !strings.Contains(ReadFile(logPath), "Plugins loaded.") {
					return errors.New("traefik did not log \"Plugins loaded.\"")
				}
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("traefik not ready within %v; log:\n%s", timeout, Tail(log, 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(u string, v any) error {
	resp, err := apiClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// ReadFile is the file at path, or "" when it cannot be read.
func ReadFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// Tail is the last n lines of s, newline-terminated.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func findLine(s, substr string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}
