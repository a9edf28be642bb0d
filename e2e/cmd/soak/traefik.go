package main

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
	"syscall"
	"time"
)

const (
	moduleName = "github.com/harbormirror/harbormirror" // the plugin's module, as Traefik loads it
	pluginKey  = "harbormirror"                         // its key under experimental.localPlugins
	routerName = "mirror@file"
)

// traefik is Traefik with the plugin in front of Harbor, as e2e/cmd/demo runs it, plus
// api.debug for the goroutine profile.
type traefik struct {
	bin, dir            string
	webAddr, apiURL     string
	logPath, accessPath string
	cmd                 *exec.Cmd
	exited              chan struct{}
}

// startTraefik writes the configuration and the plugin's sources into work (Traefik reads
// plugins-local/ relative to its working directory), starts Traefik there and waits until the
// router is enabled with the plugin.
func startTraefik(bin, repo, work, project, harborURL string) (*traefik, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	tr := &traefik{
		bin:        bin,
		dir:        work,
		webAddr:    fmt.Sprintf("127.0.0.1:%d", ports[0]),
		apiURL:     fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		logPath:    filepath.Join(work, "traefik.log"),
		accessPath: filepath.Join(work, "access.log"),
		exited:     make(chan struct{}),
	}
	if err := copyPlugin(repo, filepath.Join(work, "plugins-local", "src", filepath.FromSlash(moduleName))); err != nil {
		return nil, fmt.Errorf("copy the plugin from %s: %w", repo, err)
	}
	dynamicPath := filepath.Join(work, "dynamic.yml")
	static := fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: %q
  traefik:
    address: %q
ping:
  entryPoint: traefik
# api.debug serves /debug/pprof on the API entrypoint: the goroutine count comes from there.
api:
  insecure: true
  dashboard: false
  debug: true
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
`, tr.webAddr, strings.TrimPrefix(tr.apiURL, "http://"), tr.logPath, tr.accessPath, dynamicPath, pluginKey, moduleName)
	dynamic := fmt.Sprintf(`http:
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
`, pluginKey, pluginKey, pluginKey, project, harborURL)
	staticPath := filepath.Join(work, "traefik.yml")
	if err := os.WriteFile(staticPath, []byte(static), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(dynamicPath, []byte(dynamic), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(work, "traefik.out"))
	if err != nil {
		return nil, err
	}
	tr.cmd = exec.Command(tr.bin, "--configFile="+staticPath)
	tr.cmd.Dir = work
	tr.cmd.Stdout, tr.cmd.Stderr = out, out
	// Its own process group, so Ctrl-C reaches only this command, which stops Traefik; and
	// killed with this command.
	tr.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := tr.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", tr.bin, err)
	}
	go func() {
		_ = tr.cmd.Wait()
		out.Close()
		close(tr.exited)
	}()
	if err := tr.waitReady(60 * time.Second); err != nil {
		tr.stop()
		return nil, err
	}
	return tr, nil
}

func (tr *traefik) pid() int { return tr.cmd.Process.Pid }

// alive fails once Traefik has exited.
func (tr *traefik) alive() error {
	select {
	case <-tr.exited:
		return fmt.Errorf("traefik exited (%v):\n%s", tr.cmd.ProcessState, tail(readFile(tr.logPath), 10))
	default:
		return nil
	}
}

// waitReady waits for the router: enabled, with the plugin's middleware, plugins loaded.
func (tr *traefik) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := tr.alive(); err != nil {
			return fmt.Errorf("at start-up: %w%s", err, tail(readFile(filepath.Join(tr.dir, "traefik.out")), 10))
		}
		log := readFile(tr.logPath)
		if line := findLine(log, "Plugins are disabled"); line != "" {
			return fmt.Errorf("traefik could not load the plugin:\n%s", line)
		}
		var routers []struct {
			Name        string   `json:"name"`
			Status      string   `json:"status"`
			Middlewares []string `json:"middlewares"`
			Errors      []string `json:"error"`
		}
		if getJSON(tr.apiURL+"/api/http/routers", &routers) == nil {
			for _, r := range routers {
				if r.Name != routerName {
					continue
				}
				if r.Status != "enabled" {
					return fmt.Errorf("router %s is %s: %s", r.Name, r.Status, strings.Join(r.Errors, "; "))
				}
				if !slices.Contains(r.Middlewares, pluginKey+"@file") {
					return fmt.Errorf("router %s has middlewares %v, not %s@file", r.Name, r.Middlewares, pluginKey)
				}
				if !strings.Contains(log, "Plugins loaded.") {
					return errors.New("traefik did not log \"Plugins loaded.\"")
				}
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("traefik not ready within %v; log:\n%s", timeout, tail(log, 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (tr *traefik) stop() {
	_ = tr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tr.exited:
	case <-time.After(10 * time.Second):
		_ = tr.cmd.Process.Kill()
		<-tr.exited
	}
}

// accessLogLines counts the lines of the access log (one per request Traefik answered).
func (tr *traefik) accessLogLines() int {
	return bytes.Count([]byte(readFile(tr.accessPath)), []byte("\n"))
}

// copyPlugin copies what Traefik's local plugin loader reads: .traefik.yml, go.mod, go.sum and
// the non-test .go files of the module and its packages; nested modules (e2e/), testdata and
// hidden directories are left out.
func copyPlugin(src, dst string) error {
	if _, err := os.Stat(filepath.Join(src, ".traefik.yml")); err != nil {
		return fmt.Errorf("not a Traefik plugin: %w", err)
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if n := d.Name(); strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		n := d.Name()
		keep := strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")
		keep = keep || (rel == n && (n == ".traefik.yml" || n == "go.mod" || n == "go.sum"))
		if !keep || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// freePorts returns n distinct free loopback ports (free when asked; Traefik binds them next).
func freePorts(n int) ([]int, error) {
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

var apiClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

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

// findRepo returns the nearest directory at or above the working directory whose go.mod
// declares the plugin's module.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module "+moduleName+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory: pass -repo", moduleName)
		}
		dir = parent
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func findLine(s, substr string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
