// Package harness runs a real Traefik v3.6.12 with the harbormirror plugin loaded as a
// local (Yaegi-interpreted) plugin, for end-to-end tests.
//
// The Traefik binary is built once per machine by scripts/build-traefik (~10 min cold) and
// cached; run that script before `go test` or give the test a long -timeout.
package harness

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
	"go.yaml.in/yaml/v3"
)

const (
	// RootModule is the plugin's module path; Traefik finds the sources under
	// plugins-local/src/<RootModule>.
	RootModule = "github.com/harbormirror/harbormirror"
	// PluginName is the key under experimental.localPlugins, i.e. what dynamic config
	// uses as `plugin: {harbormirror: {...}}`.
	PluginName = "harbormirror"

	// Logged by Traefik (cmd/traefik/traefik.go) after plugins are set up, or instead when
	// they are not; in the second case routers using a plugin silently disappear.
	LogPluginsLoaded   = "Plugins loaded."
	LogPluginsDisabled = "Plugins are disabled because an error has occurred"
)

// TLSFiles are PEM files for the websecure entrypoint's certificate.
type TLSFiles struct {
	CertFile string
	KeyFile  string
}

// TraefikConfig describes one Traefik instance.
type TraefikConfig struct {
	// Dynamic is the file provider's dynamic configuration (YAML), written verbatim.
	// Routers without entryPoints attach to web and, with TLS, websecure (Traefik then
	// names the websecure copy "websecure-<name>").
	Dynamic string
	// TLS adds a "websecure" entrypoint with TLS on; the harness writes the
	// tls.certificates section (and the default certificate) for these files itself.
	TLS *TLSFiles
	// ExtraStatic is YAML deep-merged into the generated static configuration (maps are
	// merged, other values replace), e.g. to add providers.docker or change accessLog.
	ExtraStatic string
	// Env is added to the test process's environment for Traefik (KEY=value).
	Env []string
	// PluginSource is the directory holding the plugin module's sources; default: the
	// repository root. Its .traefik.yml, go.mod, go.sum and non-test .go files (including
	// subpackages and vendor/) are copied; nested modules such as e2e/ are not.
	PluginSource string
	// NoPlugin leaves experimental.localPlugins out (plain Traefik, e.g. for baselines).
	NoPlugin bool
	// NoWait skips waiting for the routers named in Dynamic to be enabled (for tests of
	// broken configurations); StartTraefik still waits for the ping endpoint.
	NoWait bool
	// StartTimeout bounds readiness (ping and routers); default 60 s.
	StartTimeout time.Duration
}

// Traefik is a running Traefik child process.
type Traefik struct {
	// WebURL is the plain HTTP entrypoint, e.g. http://127.0.0.1:20001 (no trailing slash).
	WebURL string
	// TLSURL is the HTTPS entrypoint (https://127.0.0.1:port), empty without TraefikConfig.TLS.
	TLSURL string
	// APIURL serves Traefik's API (api.insecure), e.g. APIURL+"/api/http/routers".
	APIURL string
	// PingURL answers 200 once Traefik is up.
	PingURL string
	// Dir is Traefik's working directory: static.yml, dynamic/, plugins-local/, logs.
	Dir string

	t          testing.TB
	cmd        *exec.Cmd
	exited     chan struct{}
	logPath    string
	accessPath string
	outPath    string
	dynPath    string
	stopOnce   sync.Once
}

// StartTraefik starts Traefik with cfg and returns once it answers ping and the routers of
// cfg.Dynamic are enabled. Traefik is stopped when the test ends; if the test failed, the
// tail of its logs is added to the test output.
func StartTraefik(t testing.TB, cfg TraefikConfig) *Traefik {
	t.Helper()
	bin := TraefikBinary(t)
	src := cfg.PluginSource
	if src == "" && !cfg.NoPlugin {
		src = RepoRoot(t)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	var routers []string
	if !cfg.NoWait {
		var err error
		if routers, err = routerNames(cfg.Dynamic); err != nil {
			t.Fatalf("harness: TraefikConfig.Dynamic: %v", err)
		}
	}

	// A port picked by FreePort can be taken before Traefik binds it: retry with new ones.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		tr, err := startOnce(t, bin, src, cfg)
		if err == nil {
			if err = tr.waitReady(routers, cfg.StartTimeout); err == nil {
				return tr
			}
		}
		lastErr = err
		if tr != nil {
			tr.Stop()
			if strings.Contains(tr.Log()+tr.stdout(), "address already in use") {
				t.Logf("harness: Traefik port clash, retrying (%d): %v", attempt, err)
				continue
			}
		}
		break
	}
	t.Fatalf("harness: start Traefik: %v", lastErr)
	return nil
}

func startOnce(t testing.TB, bin, pluginSrc string, cfg TraefikConfig) (*Traefik, error) {
	dir := t.TempDir()
	nports := 3
	if cfg.TLS != nil {
		nports++
	}
	ports, err := freePorts(nports)
	if err != nil {
		return nil, err
	}
	webPort, pingPort, apiPort := ports[0], ports[1], ports[2]

	tr := &Traefik{
		WebURL:     fmt.Sprintf("http://127.0.0.1:%d", webPort),
		APIURL:     fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		PingURL:    fmt.Sprintf("http://127.0.0.1:%d/ping", pingPort),
		Dir:        dir,
		t:          t,
		exited:     make(chan struct{}),
		logPath:    filepath.Join(dir, "traefik.log"),
		accessPath: filepath.Join(dir, "access.log"),
		outPath:    filepath.Join(dir, "traefik.out"),
		dynPath:    filepath.Join(dir, "dynamic", "dynamic.yml"),
	}

	if !cfg.NoPlugin {
		dst := filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(RootModule))
		if err := copyPlugin(pluginSrc, dst); err != nil {
			return nil, fmt.Errorf("copy plugin from %s: %w", pluginSrc, err)
		}
	}

	if err := os.MkdirAll(filepath.Dir(tr.dynPath), 0o755); err != nil {
		return nil, err
	}
	if cfg.Dynamic != "" {
		if err := os.WriteFile(tr.dynPath, []byte(cfg.Dynamic), 0o644); err != nil {
			return nil, err
		}
	}

	eps := map[string]any{
		// asDefault keeps routers without entryPoints off the ping and API entrypoints.
		"web":     map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", webPort), "asDefault": true},
		"ping":    map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", pingPort)},
		"traefik": map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", apiPort)},
	}
	if cfg.TLS != nil {
		tr.TLSURL = fmt.Sprintf("https://127.0.0.1:%d", ports[3])
		eps["websecure"] = map[string]any{
			"address":   fmt.Sprintf("127.0.0.1:%d", ports[3]),
			"asDefault": true,
			"http":      map[string]any{"tls": map[string]any{}},
		}
		certs := map[string]any{"certFile": cfg.TLS.CertFile, "keyFile": cfg.TLS.KeyFile}
		tlsDyn := map[string]any{"tls": map[string]any{
			"certificates": []any{certs},
			// The default certificate also covers clients that send no SNI (IP addresses).
			"stores": map[string]any{"default": map[string]any{"defaultCertificate": certs}},
		}}
		if err := writeYAML(filepath.Join(dir, "dynamic", "zz-harness-tls.yml"), tlsDyn); err != nil {
			return nil, err
		}
	}
	static := map[string]any{
		"global":      map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
		"entryPoints": eps,
		"ping":        map[string]any{"entryPoint": "ping"},
		"api":         map[string]any{"insecure": true, "dashboard": false},
		"log":         map[string]any{"level": "DEBUG", "filePath": tr.logPath, "noColor": true},
		"accessLog":   map[string]any{"filePath": tr.accessPath},
		"providers": map[string]any{"file": map[string]any{
			"directory": filepath.Dir(tr.dynPath),
			"watch":     true,
		}},
	}
	if !cfg.NoPlugin {
		static["experimental"] = map[string]any{"localPlugins": map[string]any{
			PluginName: map[string]any{"moduleName": RootModule},
		}}
	}
	if cfg.ExtraStatic != "" {
		var extra map[string]any
		if err := yaml.Unmarshal([]byte(cfg.ExtraStatic), &extra); err != nil {
			return nil, fmt.Errorf("TraefikConfig.ExtraStatic: %w", err)
		}
		mergeMaps(static, extra)
	}
	staticPath := filepath.Join(dir, "static.yml")
	if err := writeYAML(staticPath, static); err != nil {
		return nil, err
	}

	out, err := os.Create(tr.outPath)
	if err != nil {
		return nil, err
	}
	// Traefik resolves plugins-local/ relative to its working directory.
	cmd := exec.Command(bin, "--configFile="+staticPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Stdout = out
	cmd.Stderr = out
	// Do not outlive a test binary that is killed (e.g. by -timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	tr.cmd = cmd
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(tr.exited)
	}()
	t.Cleanup(func() {
		tr.Stop()
		if t.Failed() {
			tr.dumpLogs()
		}
	})
	return tr, nil
}

// waitReady waits for ping, then for the named routers, failing fast if Traefik exits
// or reports that plugins are disabled.
func (tr *Traefik) waitReady(routers []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := tr.exitErr(); err != nil {
			return err
		}
		resp, err := pollClient.Get(tr.PingURL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no ping answer from %s within %v (last error: %v)", tr.PingURL, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range routers {
		if err := tr.WaitRouter(r, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

func (tr *Traefik) exitErr() error {
	select {
	case <-tr.exited:
		return fmt.Errorf("traefik exited early (%v); output:\n%s\nlog tail:\n%s",
			tr.cmd.ProcessState, tail(tr.stdout(), 20), tail(tr.Log(), 20))
	default:
		return nil
	}
}

// pollClient keeps no idle connections, so polling leaves nothing open in Traefik.
var pollClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// RouterInfo is one entry of Traefik's /api/http/routers.
type RouterInfo struct {
	Name        string   `json:"name"`
	Provider    string   `json:"provider"`
	Status      string   `json:"status"` // enabled, disabled or warning
	Rule        string   `json:"rule"`
	Service     string   `json:"service"`
	EntryPoints []string `json:"entryPoints"`
	Middlewares []string `json:"middlewares"`
	Errors      []string `json:"error"`
}

// Routers returns Traefik's current HTTP routers as reported by its API.
func (tr *Traefik) Routers() ([]RouterInfo, error) {
	resp, err := pollClient.Get(tr.APIURL + "/api/http/routers?per_page=10000")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/http/routers: %s", resp.Status)
	}
	var rs []RouterInfo
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return nil, fmt.Errorf("GET /api/http/routers: %w", err)
	}
	return rs, nil
}

// WaitRouter waits until the router is enabled (or in "warning" state, which still serves).
// name is as written in the dynamic config ("r", matching "r@file" and Traefik's
// per-entrypoint copies such as "websecure-r@file") or fully qualified ("r@docker").
// It fails early if Traefik logs that plugins are disabled or reports the router disabled.
func (tr *Traefik) WaitRouter(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	match := func(n string) bool {
		if strings.Contains(name, "@") {
			return n == name
		}
		base, prov, _ := strings.Cut(n, "@")
		return prov == "file" && (base == name || strings.HasSuffix(base, "-"+name))
	}
	var last string
	for {
		if err := tr.exitErr(); err != nil {
			return err
		}
		if line := findLine(tr.Log(), LogPluginsDisabled); line != "" {
			return fmt.Errorf("router %q: traefik could not load the plugins: %s", name, line)
		}
		rs, err := tr.Routers()
		if err != nil {
			last = err.Error()
		} else {
			found, ready := 0, 0
			var bad []string
			for _, r := range rs {
				if !match(r.Name) {
					continue
				}
				found++
				switch r.Status {
				case "enabled", "warning":
					ready++
				default:
					bad = append(bad, fmt.Sprintf("%s: %s %v", r.Name, r.Status, r.Errors))
				}
			}
			if found > 0 && ready == found {
				return nil
			}
			last = fmt.Sprintf("router not in the API (%d routers listed)", len(rs))
			if len(bad) > 0 {
				// A router's status does not change without a new configuration: fail now.
				return fmt.Errorf("router %q is not enabled: %s", name, strings.Join(bad, "; "))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("router %q not enabled within %v: %s", name, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// UpdateDynamic replaces the dynamic configuration; the file provider picks it up.
// Call WaitRouter afterwards for the routers that must be live.
func (tr *Traefik) UpdateDynamic(dynamic string) error {
	tmp := filepath.Join(filepath.Dir(tr.dynPath), ".dynamic.yml.tmp") // ignored: not .yml
	if err := os.WriteFile(tmp, []byte(dynamic), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, tr.dynPath)
}

// Log returns Traefik's DEBUG log so far (plugin stdout/stderr lands here too).
func (tr *Traefik) Log() string { return readFile(tr.logPath) }

// AccessLog returns the access log so far (Common Log Format unless ExtraStatic changes it).
func (tr *Traefik) AccessLog() string { return readFile(tr.accessPath) }

func (tr *Traefik) stdout() string { return readFile(tr.outPath) }

// WaitLog waits until the DEBUG log contains substr.
func (tr *Traefik) WaitLog(substr string, timeout time.Duration) error {
	return waitFile(tr.logPath, substr, timeout)
}

// WaitAccessLog waits until the access log contains substr (it is written after the
// response, so a client can see the response before its line exists).
func (tr *Traefik) WaitAccessLog(substr string, timeout time.Duration) error {
	return waitFile(tr.accessPath, substr, timeout)
}

func waitFile(path, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(readFile(path), substr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %q not logged within %v", filepath.Base(path), substr, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop kills Traefik and waits for it to exit. It is idempotent and runs automatically at
// the end of the test. SIGKILL rather than a graceful stop: Traefik would wait up to its
// grace timeout for idle keep-alive connections, and its logs are written unbuffered anyway.
func (tr *Traefik) Stop() {
	tr.stopOnce.Do(func() {
		if tr.cmd == nil || tr.cmd.Process == nil {
			return
		}
		_ = tr.cmd.Process.Kill()
		<-tr.exited
	})
}

func (tr *Traefik) dumpLogs() {
	tr.t.Logf("harness: Traefik in %s\n--- traefik.out ---\n%s\n--- traefik.log (tail) ---\n%s\n--- access.log (tail) ---\n%s",
		tr.Dir, tail(tr.stdout(), 20), tail(tr.Log(), 60), tail(tr.AccessLog(), 20))
}

// routerNames lists http.routers of a dynamic configuration.
func routerNames(dynamic string) ([]string, error) {
	var doc struct {
		HTTP struct {
			Routers map[string]any `yaml:"routers"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(dynamic), &doc); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(doc.HTTP.Routers))
	for n := range doc.HTTP.Routers {
		names = append(names, n)
	}
	return names, nil
}

// mergeMaps deep-merges src into dst: nested maps merge, anything else replaces.
func mergeMaps(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeMaps(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// Tail returns the last n lines of s, for logs in test output.
func Tail(s string, n int) string { return tail(s, n) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func findLine(s, substr string) string {
	i := strings.Index(s, substr)
	if i < 0 {
		return ""
	}
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}

// copyPlugin copies what Traefik's local plugin loader reads from the plugin module at src to
// dst: see traefikproc.CopyPlugin, which the demo, soak and loadbench commands use too.
func copyPlugin(src, dst string) error { return traefikproc.CopyPlugin(src, dst) }

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the repository root: the nearest directory at or above the working
// directory (a package dir inside the e2e module, under go test) whose go.mod declares
// RootModule.
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == RootModule {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = fmt.Errorf("no go.mod declaring module %s above the working directory", RootModule)
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatalf("harness: %v", rootErr)
	}
	return rootDir
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

var (
	binMu   sync.Mutex
	binPath string
	binErr  error
)

// TraefikBinary returns the path of the cached Traefik binary, running
// scripts/build-traefik first if it is missing (progress goes to the test log; the
// script's lock keeps concurrent test processes from building twice). The environment
// variable HARBORMIRROR_TRAEFIK, if set, names a binary to use instead.
func TraefikBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HARBORMIRROR_TRAEFIK"); p != "" {
		return p
	}
	binMu.Lock()
	defer binMu.Unlock()
	if binPath == "" && binErr == nil {
		binPath, binErr = buildTraefik(t)
	}
	if binErr != nil {
		t.Fatalf("harness: %v", binErr)
	}
	return binPath
}

func buildTraefik(t testing.TB) (string, error) {
	script := filepath.Join(RepoRoot(t), "scripts", "build-traefik")
	out, err := exec.Command(script, "--print-path").Output()
	if err != nil {
		return "", fmt.Errorf("%s --print-path: %w", script, err)
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	// go test's default -timeout (10 m) would kill a cold build half-way: say so up front.
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok && time.Until(dl) < 20*time.Minute {
			return "", fmt.Errorf("Traefik is not built yet (%s) and a build takes ~10 min: run %s first, or go test -timeout 30m", path, script)
		}
	}
	t.Logf("harness: building Traefik with %s (~10 min cold)", script)
	start := time.Now()
	path, err = RunBuildScript(t.Logf, script)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", script, path, err)
	}
	t.Logf("harness: Traefik built in %v: %s", time.Since(start).Round(time.Second), path)
	return path, nil
}

// RunBuildScript runs a build script (scripts/build-*) with its progress (stderr) going to logf
// (a test log, or a command's output) line by line, and returns what it printed on stdout,
// trimmed.
func RunBuildScript(logf func(format string, args ...any), script string) (string, error) {
	cmd := exec.Command(script)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		logf("%s", sc.Text())
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, tail(strings.Join(lines, "\n"), 15))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// TestCA is a throwaway CA and a server certificate it signed, as PEM files in Dir.
type TestCA struct {
	Dir      string
	CAFile   string // CA certificate (PEM)
	CertFile string // server certificate (PEM)
	KeyFile  string // server private key (PEM, PKCS#8)
	Pool     *x509.CertPool
}

// TLSFiles returns the server certificate for TraefikConfig.TLS.
func (ca *TestCA) TLSFiles() *TLSFiles {
	return &TLSFiles{CertFile: ca.CertFile, KeyFile: ca.KeyFile}
}

// ClientTLSConfig returns a client configuration trusting only this CA.
func (ca *TestCA) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
}

// GenerateTestCA writes a new CA and a server certificate valid for 127.0.0.1, ::1,
// localhost and the extra hosts (IP addresses or DNS names) into a temp dir.
func GenerateTestCA(t testing.TB, hosts ...string) *TestCA {
	t.Helper()
	ca, err := generateTestCA(t.TempDir(), hosts)
	if err != nil {
		t.Fatalf("harness: generate test CA: %v", err)
	}
	return ca
}

func generateTestCA(dir string, hosts []string) (*TestCA, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "harbormirror test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}

	ca := &TestCA{
		Dir:      dir,
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		Pool:     x509.NewCertPool(),
	}
	ca.Pool.AddCert(caCert)
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{
		{ca.CAFile, "CERTIFICATE", caDER},
		{ca.CertFile, "CERTIFICATE", der},
		{ca.KeyFile, "PRIVATE KEY", keyDER},
	} {
		b := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, b, 0o600); err != nil {
			return nil, err
		}
	}
	return ca, nil
}
