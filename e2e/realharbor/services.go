package realharbor

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Readiness bounds: generous, as two cores may be busy with other test binaries.
const (
	storeStartTimeout = 60 * time.Second
	coreStartTimeout  = 180 * time.Second // migrations of an empty database included
)

// registryUser is the account core uses with the registry (htpasswd), as Harbor's installer
// names it.
const registryUser = "harbor_registry_user"

// secrets are the shared secrets and key files of one stack.
type secrets struct {
	coreSecret, jobserviceSecret, registryPassword, csrfKey string
	keyPath, tokenKeyPath                                   string
}

func newSecrets(dir string) (*secrets, error) {
	s := &secrets{
		coreSecret:       randomString(16),
		jobserviceSecret: randomString(16),
		registryPassword: randomString(16),
		csrfKey:          randomString(32), // Harbor requires exactly 32 characters
		keyPath:          filepath.Join(dir, "secretkey"),
		tokenKeyPath:     filepath.Join(dir, "private_key.pem"),
	}
	// KEY_PATH: the 16-character key core encrypts stored secrets (registry passwords) with.
	if err := os.WriteFile(s.keyPath, []byte(randomString(16)), 0o600); err != nil {
		return nil, err
	}
	// The token service's key must be PKCS#1 ("RSA PRIVATE KEY"): core rejects PKCS#8.
	key, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return nil, err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(s.tokenKeyPath, pemKey, 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

func randomString(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startPostgres initialises a cluster and runs postgres in the foreground (so that it dies with
// the test binary), then creates the database registry. PostgreSQL refuses to run as root: as
// root it runs as the user postgres.
func (h *Harbor) startPostgres(ctx context.Context, p stackPorts) error {
	bin, err := postgresBin()
	if err != nil {
		return err
	}
	base := filepath.Join(h.Dir, "postgres")
	data, sockets := filepath.Join(base, "data"), filepath.Join(base, "run")
	for _, d := range []string{data, sockets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = credentialOf("postgres"); err != nil {
			return fmt.Errorf("PostgreSQL refuses to run as root and %w", err)
		}
		for _, d := range []string{base, data, sockets} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = base // the test's working dir may be closed to the user postgres
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Durability is of no use to a throwaway test database.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(p.postgres),
		"-k", sockets, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = base
	// SIGQUIT is PostgreSQL's immediate shutdown: nothing of the data dir is worth keeping.
	proc, err := h.run("postgres", cmd, syscall.SIGQUIT)
	if err != nil {
		return err
	}
	psql := filepath.Join(bin, "psql")
	return proc.waitReady(ctx, storeStartTimeout, func() error {
		out, err := exec.Command(psql, "-h", "127.0.0.1", "-p", strconv.Itoa(p.postgres), "-U", "postgres",
			"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE registry").CombinedOutput()
		if err != nil {
			return fmt.Errorf("create database registry: %w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

// postgresBin is the newest /usr/lib/postgresql/<major>/bin (Debian's layout).
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server under /usr/lib/postgresql/*/bin: run scripts/install-test-deps (Debian package postgresql)")
}

func credentialOf(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (h *Harbor) startRedis(ctx context.Context, p stackPorts) error {
	dir := filepath.Join(h.Dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(p.redis),
		"--save", "", "--appendonly", "no", "--dir", dir)
	proc, err := h.run("redis", cmd, syscall.SIGTERM)
	if err != nil {
		return err
	}
	return proc.waitReady(ctx, storeStartTimeout, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.redis), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		buf := make([]byte, 7)
		n, _ := c.Read(buf)
		if string(buf[:n]) != "+PONG\r\n" {
			return fmt.Errorf("redis answered %q to PING", buf[:n])
		}
		return nil
	})
}

// startRegistry runs Harbor's registry with its config rendered from Harbor's template:
// filesystem storage, the Redis layer-info cache (db 1) and htpasswd auth for core's account.
func (h *Harbor) startRegistry(ctx context.Context, p stackPorts, s *secrets) error {
	dir := filepath.Join(h.Dir, "registry")
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o700); err != nil {
		return err
	}
	passwd := filepath.Join(dir, "passwd")
	out, err := exec.Command("htpasswd", "-bnB", registryUser, s.registryPassword).Output()
	if err != nil {
		return fmt.Errorf("htpasswd (Debian package apache2-utils): %w", err)
	}
	if err := os.WriteFile(passwd, out, 0o600); err != nil {
		return err
	}
	config, err := h.registryConfig(p, filepath.Join(dir, "storage"), passwd)
	if err != nil {
		return err
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	proc, err := h.run("registry", exec.Command(filepath.Join(h.Build, "bin", "registry"), "serve", configPath), syscall.SIGTERM)
	if err != nil {
		return err
	}
	return proc.waitReady(ctx, storeStartTimeout, httpCheck(fmt.Sprintf("http://127.0.0.1:%d/v2/", p.registry), http.StatusUnauthorized, http.StatusOK))
}

// startCore runs harbor_core in a copy of its image's working dir layout (views, migrations,
// icons, versions from the build), with the environment of Harbor's core/env.jinja.
func (h *Harbor) startCore(ctx context.Context, p stackPorts, s *secrets) error {
	dir := filepath.Join(h.Dir, "core")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	appConf, env, err := h.coreConfig(p, s)
	if err != nil {
		return err
	}
	appConfPath := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(appConfPath, []byte(appConf), 0o600); err != nil {
		return err
	}
	env = append(env, "CONFIG_PATH="+appConfPath, "KEY_PATH="+s.keyPath, "TOKEN_PRIVATE_KEY_PATH="+s.tokenKeyPath)
	cmd := exec.Command(filepath.Join(h.Build, "bin", "harbor_core"))
	cmd.Dir = filepath.Join(h.Build, "runtime")
	cmd.Env = append(baseEnv(), env...)
	proc, err := h.run("core", cmd, syscall.SIGTERM)
	if err != nil {
		return err
	}
	return proc.waitReady(ctx, coreStartTimeout, httpCheck(h.CoreURL+"/api/v2.0/ping", http.StatusOK))
}

// startJobservice runs harbor_jobservice: creating a proxy-cache project submits a job, and
// the API answers 500 without it.
func (h *Harbor) startJobservice(ctx context.Context, p stackPorts, s *secrets) error {
	dir := filepath.Join(h.Dir, "jobservice")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return err
	}
	config, env, err := h.jobserviceConfig(p, s, filepath.Join(dir, "logs"))
	if err != nil {
		return err
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(h.Build, "bin", "harbor_jobservice"), "-c", configPath)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	proc, err := h.run("jobservice", cmd, syscall.SIGTERM)
	if err != nil {
		return err
	}
	// /api/v1/stats is jobservice's health check, the one path it serves without its secret.
	return proc.waitReady(ctx, coreStartTimeout, httpCheck(fmt.Sprintf("http://127.0.0.1:%d/api/v1/stats", p.jobservice), http.StatusOK))
}

// startNginx runs Debian's nginx with the configuration rendered from Harbor's
// nginx.http.conf.jinja, in the foreground.
func (h *Harbor) startNginx(ctx context.Context, p stackPorts) error {
	dir := filepath.Join(h.Dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h.requestLog = filepath.Join(dir, "requests.json")
	conf, err := h.nginxConfig(p, dir)
	if err != nil {
		return err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	// Its error log goes to its output, logs/nginx.log, with the other processes' logs.
	cmd := exec.Command(nginxBinary(), "-p", dir, "-c", confPath, "-e", "stderr", "-g", "daemon off;")
	// SIGTERM is nginx's fast shutdown: the master stops its workers before exiting.
	proc, err := h.run("nginx", cmd, syscall.SIGTERM)
	if err != nil {
		return err
	}
	return proc.waitReady(ctx, storeStartTimeout, httpCheck(h.URL+"/api/v2.0/ping", http.StatusOK))
}

// nginxBinary is nginx from PATH, else Debian's /usr/sbin/nginx, which an ordinary user's PATH
// leaves out.
func nginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

// baseEnv is the test's environment without proxy settings: every connection of the stack
// stays on loopback.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return env
}
