package main

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/prometheus/procfs"

	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
)

//go:embed templates
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.tmpl"))

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Front end keys, in the order of the report's columns.
const (
	feDirect  = "direct"
	feTraefik = "traefik" // Traefik alone, mapping paths with replacePathRegex: the baseline
	feEmpty   = "empty"   // the baseline with an empty Yaegi plugin: the floor of any plugin
	feWrapper = "wrapper" // the same plugin wrapping the ResponseWriter: the floor of a rewriting one
	fePlugin  = "plugin"  // Traefik with harbormirror
	feNginx   = "nginx"
)

var feOrder = []string{feDirect, feTraefik, feEmpty, feWrapper, fePlugin, feNginx}

// frontend is one way to reach the registry.
type frontend struct {
	Key   string // feDirect ...
	Title string
	Addr  string // host:port clients connect to
	// RepoPrefix is what a client puts before a repository name in paths: the project when it
	// talks to Harbor directly, nothing through a mirror.
	RepoPrefix string
	// ScopePrefix is the same for the token scope the client asks for. Traefik alone maps only
	// paths, so its client asks Harbor's token service for the project's name itself.
	ScopePrefix string

	proc    *process // nil for the registry itself
	apiAddr string   // Traefik's API entrypoint (ping, routers, /debug/pprof)
	token   string   // a pull token obtained through this front end
	// Challenge is the 401's Www-Authenticate as a client of this front end sees it.
	Challenge string
}

// process is a child process pinned to the servers' core.
type process struct {
	name   string
	cmd    *exec.Cmd
	dir    string
	out    *os.File
	exited chan struct{}
	once   sync.Once
}

// startProcess starts argv under taskset (when cpus is set) in its own process group, killed
// with this process if it dies. Its output goes to dir/name.out, its stdout to stdout if set.
func startProcess(name, dir, cpus string, env []string, stdout io.Writer, argv ...string) (*process, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, dir: dir, out: out, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func (p *process) stop() {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.exited
		}
	})
}

func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.cmd.ProcessState, tail(readFile(filepath.Join(p.dir, p.name+".out")), 10))
	default:
		return nil
	}
}

// memory is a process tree's resident set: now (VmRSS) and its peak (VmHWM), summed over the
// process and its children (nginx's master and worker).
type memory struct {
	RSS, HWM int64 // bytes
}

func (p *process) memory() (memory, error) {
	var m memory
	for _, proc := range processTree(p.cmd.Process.Pid) {
		status, err := proc.NewStatus()
		if err != nil {
			return m, err
		}
		m.RSS += int64(status.VmRSS)
		m.HWM += int64(status.VmHWM)
	}
	return m, nil
}

// cpuSeconds is the CPU time (user and system) the process tree has used so far.
func (p *process) cpuSeconds() float64 { return cpuSeconds(p.cmd.Process.Pid) }

func cpuSeconds(pid int) float64 {
	var total float64
	for _, proc := range processTree(pid) {
		if stat, err := proc.Stat(); err == nil {
			total += stat.CPUTime()
		}
	}
	return total
}

// processTree is pid and its direct children.
func processTree(pid int) []procfs.Proc {
	self, err := procfs.NewProc(pid)
	if err != nil {
		return nil
	}
	tree := []procfs.Proc{self}
	all, _ := procfs.AllProcs()
	for _, proc := range all {
		if stat, err := proc.Stat(); err == nil && stat.PPID == pid {
			tree = append(tree, proc)
		}
	}
	return tree
}

// ---- the registry ----

// startRegistryProcess runs this binary again as the registry (registryMain) and waits for it
// to report, on its stdout, where it listens and what it stores.
func startRegistryProcess(o *options, work string) (*process, registryInfo, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, registryInfo{}, err
	}
	args, _ := json.Marshal(registryArgs{Listen: "127.0.0.1:0", SmallBlob: o.smallBlob, LargeBlob: o.largeBlob, PullTotal: o.pullTotal})
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return nil, registryInfo{}, err
	}
	p, err := startProcess("registry", work, o.serverCPUs, []string{roleEnv + "=registry", registryArgsEnv + "=" + string(args)}, infoW, self)
	infoW.Close() // the child has its own
	if err != nil {
		infoR.Close()
		return nil, registryInfo{}, err
	}
	line, err := bufio.NewReader(infoR).ReadBytes('\n')
	go func() { _, _ = io.Copy(io.Discard, infoR) }()
	var info registryInfo
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err == nil && info.Error != "" {
		err = errors.New(info.Error)
	}
	if err != nil {
		p.stop()
		return nil, info, fmt.Errorf("the registry: %w\n%s", err, tail(readFile(filepath.Join(work, "registry.out")), 10))
	}
	return p, info, nil
}

// ---- Traefik ----

// floorModule is the floor plugin (yaegitest/testdata/floorplugins, the source of the Go
// benchmarks BenchmarkYaegiEmptyPlugin and BenchmarkYaegiEmptyWrapper), loaded by Traefik
// under this module name.
const floorModule = "harbormirror.invalid/floorplugin"

// traefikSetup is one Traefik front end: its plugin (none for the baseline), the plugin's
// settings, and whether replacePathRegex maps the paths (everywhere but with harbormirror,
// which maps them itself).
type traefikSetup struct {
	title    string
	module   string // the plugin's module name, "" for none
	src      string // the plugin's sources, below the repository
	settings map[string]string
	mapPaths bool
}

var traefikSetups = map[string]traefikSetup{
	feTraefik: {title: "Traefik alone", mapPaths: true},
	feEmpty: {title: "Traefik + empty Yaegi plugin", mapPaths: true,
		module: floorModule, src: "yaegitest/testdata/floorplugins/src/" + floorModule, settings: map[string]string{"wrapResponse": "false"}},
	feWrapper: {title: "Traefik + empty Yaegi plugin, one-method wrapper", mapPaths: true,
		module: floorModule, src: "yaegitest/testdata/floorplugins/src/" + floorModule, settings: map[string]string{"wrapResponse": "true"}},
	fePlugin: {title: "Traefik + harbormirror",
		module: traefikproc.ModuleName, src: ".", settings: map[string]string{"project": project}},
}

func startTraefik(o *options, work, key, registryURL string) (*frontend, error) {
	setup := traefikSetups[key]
	dir := filepath.Join(work, key)
	ports, err := traefikproc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	fe := &frontend{Key: key, Title: setup.title,
		Addr:    "127.0.0.1:" + strconv.Itoa(ports[0]),
		apiAddr: "127.0.0.1:" + strconv.Itoa(ports[1]),
	}
	if setup.mapPaths {
		fe.ScopePrefix = project + "/" // its clients ask the token service for the project's names
	}
	if setup.module != "" {
		// Traefik resolves plugins-local/ relative to its working directory.
		src, dst := filepath.Join(o.repo, setup.src), filepath.Join(dir, "plugins-local", "src", setup.module)
		if err := traefikproc.CopyPlugin(src, dst); err != nil {
			return nil, fmt.Errorf("copy the plugin from %s: %w", src, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	data := map[string]any{
		"Listen": fe.Addr, "API": fe.apiAddr, "Module": setup.module, "Settings": setup.settings, "MapPaths": setup.mapPaths,
		"Project": project, "Registry": registryURL,
		"Log": filepath.Join(dir, "traefik.log"), "Dynamic": filepath.Join(dir, "dynamic.yml"),
	}
	for name, file := range map[string]string{"traefik.yml.tmpl": "traefik.yml", "dynamic.yml.tmpl": "dynamic.yml"} {
		b, err := render(name, data)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			return nil, err
		}
	}
	if fe.proc, err = startProcess("traefik", dir, o.serverCPUs, nil, nil, o.traefik, "--configFile="+filepath.Join(dir, "traefik.yml")); err != nil {
		return nil, err
	}
	middleware := "mappaths@file"
	if setup.module != "" {
		middleware = "plugin@file"
	}
	logPath := filepath.Join(dir, "traefik.log")
	alive := func() error {
		if err := fe.proc.alive(); err != nil {
			return fmt.Errorf("%w\n%s", err, tail(readFile(logPath), 10))
		}
		return nil
	}
	want := traefikproc.Router{Name: "mirror@file", Middleware: middleware, Plugin: setup.module != ""}
	if err := traefikproc.WaitRouter("http://"+fe.apiAddr, logPath, want, 90*time.Second, alive); err != nil {
		fe.proc.stop()
		return nil, fmt.Errorf("%s: %w", fe.Title, err)
	}
	return fe, nil
}

// ---- nginx ----

func startNginx(o *options, work, registryHost string) (*frontend, error) {
	dir := filepath.Join(work, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := traefikproc.FreePorts(1)
	if err != nil {
		return nil, err
	}
	fe := &frontend{Key: feNginx, Title: "nginx, the three-map recipe", Addr: "127.0.0.1:" + strconv.Itoa(ports[0])}
	conf, err := render("nginx.conf.tmpl", map[string]any{"Dir": dir, "Listen": fe.Addr, "Registry": registryHost, "Project": project})
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, err
	}
	if fe.proc, err = startProcess("nginx", dir, o.serverCPUs, nil, nil, o.nginx, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log")); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := fe.proc.alive(); err != nil {
			return nil, fmt.Errorf("nginx: %w\n%s", err, tail(readFile(filepath.Join(dir, "error.log")), 10))
		}
		if c, err := net.DialTimeout("tcp", fe.Addr, time.Second); err == nil {
			c.Close()
			// The worker, not only the master, must be up before its memory is read.
			if len(processTree(fe.proc.cmd.Process.Pid)) > 1 {
				return fe, nil
			}
		}
		if time.Now().After(deadline) {
			fe.proc.stop()
			return nil, fmt.Errorf("nginx not listening on %s within 20 s:\n%s", fe.Addr, tail(readFile(filepath.Join(dir, "error.log")), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- helpers ----

// readFile and tail are traefikproc's: the whole file, or "" when unreadable; the last n lines.
var (
	readFile = traefikproc.ReadFile
	tail     = traefikproc.Tail
)
