package realharbor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Each configuration is Harbor's own template (runtime/templates in the build) rendered with
// the values Harbor's prepare step computes for a plain-HTTP install without internal TLS,
// metrics, tracing or Trivy; then the container host names and fixed paths are swapped for
// this stack's loopback ports and temp dirs. Every swap must find its text, so a template
// that changes upstream fails here instead of quietly running with another configuration.

// disabledFeatures are the template switches a plain-HTTP single-host install leaves off.
func disabledFeatures() map[string]any {
	off := map[string]any{"enabled": false}
	return map[string]any{
		"internal_tls": map[string]any{"enabled": false, "verify_client_cert": false},
		"metric":       off,
		"trace":        off,
		"cache":        off,
		"purge_upload": off,
	}
}

func (h *Harbor) renderTemplate(name string, vars map[string]any) (string, error) {
	b, err := os.ReadFile(filepath.Join(h.Build, "runtime", "templates", name))
	if err != nil {
		return "", err
	}
	all := disabledFeatures()
	for k, v := range vars {
		all[k] = v
	}
	out, err := renderJinja(string(b), all)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return out, nil
}

// swap replaces each old text of pairs (old, new, old, new...) with its new one; each old text
// must occur.
func swap(name, s string, pairs ...string) (string, error) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			return "", fmt.Errorf("%s: %q not found: has Harbor's template changed?", name, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s, nil
}

func redisURL(p stackPorts, db int) string {
	if db == 0 {
		return fmt.Sprintf("redis://127.0.0.1:%d?idle_timeout_seconds=30", p.redis)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/%d?idle_timeout_seconds=30", p.redis, db)
}

// registryConfig renders templates/registry/config.yml.jinja.
func (h *Harbor) registryConfig(p stackPorts, storage, passwd string) (string, error) {
	const name = "registry/config.yml.jinja"
	out, err := h.renderTemplate(name, map[string]any{
		"level":                     "info",
		"storage_provider_info":     "filesystem:\n    rootdirectory: " + storage,
		"storage_redirect_disabled": false,
		"sentinel_master_set":       "",
		"redis_host":                fmt.Sprintf("127.0.0.1:%d", p.redis),
		"redis_password":            "",
		"redis_username":            "",
		"redis_db_index_reg":        1,
		"redis_enableTLS":           "false",
	})
	if err != nil {
		return "", err
	}
	return swap(name, out,
		"addr: :5000", fmt.Sprintf("addr: 127.0.0.1:%d", p.registry),
		"addr: localhost:5001", fmt.Sprintf("addr: 127.0.0.1:%d", p.registryDebug),
		"path: /etc/registry/passwd", "path: "+passwd,
	)
}

// coreConfig renders templates/core/app.conf.jinja and the environment of core/env.jinja.
func (h *Harbor) coreConfig(p stackPorts, s *secrets) (appConf string, env []string, err error) {
	const appName = "core/app.conf.jinja"
	if appConf, err = h.renderTemplate(appName, nil); err != nil {
		return "", nil, err
	}
	// httpaddr keeps core off every interface but loopback.
	if appConf, err = swap(appName, appConf, "httpport = 8080", fmt.Sprintf("httpaddr = 127.0.0.1\nhttpport = %d", p.core)); err != nil {
		return "", nil, err
	}
	coreURL := fmt.Sprintf("http://127.0.0.1:%d", p.core)
	envText, err := h.renderTemplate("core/env.jinja", map[string]any{
		"redis_url_core":               redisURL(p, 0),
		"redis_url_harbor":             "",
		"redis_url_reg":                redisURL(p, 1),
		"log_level":                    "info",
		"public_url":                   h.URL,
		"harbor_db_host":               "127.0.0.1",
		"harbor_db_port":               p.postgres,
		"harbor_db_username":           "postgres",
		"harbor_db_password":           "root123",
		"harbor_db_name":               "registry",
		"harbor_db_sslmode":            "disable",
		"harbor_db_max_idle_conns":     100,
		"harbor_db_max_open_conns":     900,
		"harbor_db_conn_max_lifetime":  "5m",
		"harbor_db_conn_max_idle_time": "0",
		"registry_url":                 fmt.Sprintf("http://127.0.0.1:%d", p.registry),
		"portal_url":                   "http://127.0.0.1:9", // no portal: the UI is not tested
		"token_service_url":            coreURL + "/service/token",
		"harbor_admin_password":        AdminPassword,
		"max_job_workers":              4,
		"core_secret":                  s.coreSecret,
		"jobservice_secret":            s.jobserviceSecret,
		"with_trivy":                   false,
		"core_url":                     coreURL,
		"core_local_url":               coreURL,
		"jobservice_url":               fmt.Sprintf("http://127.0.0.1:%d", p.jobservice),
		"trivy_adapter_url":            "",
		"storage_provider_name":        "filesystem",
		"reload_key":                   "",
		"registry_controller_url":      "http://127.0.0.1:9", // no registryctl: garbage collection is not tested
		"registry_username":            registryUser,
		"registry_password":            s.registryPassword,
		"csrf_key":                     s.csrfKey,
		"scan_robot_prefix":            randomString(8),
		"core_http_proxy":              "",
		"core_https_proxy":             "",
		"core_no_proxy":                "",
		"core":                         map[string]any{"quota_update_provider": ""},
	})
	if err != nil {
		return "", nil, err
	}
	env, err = envLines(envText)
	if err != nil {
		return "", nil, err
	}
	// The template's PORT is the container's; core's own port comes from app.conf and PORT.
	return appConf, append(env, fmt.Sprintf("PORT=%d", p.core)), nil
}

// jobserviceConfig renders templates/jobservice/config.yml.jinja and env.jinja.
func (h *Harbor) jobserviceConfig(p stackPorts, s *secrets, logDir string) (config string, env []string, err error) {
	const name = "jobservice/config.yml.jinja"
	config, err = h.renderTemplate(name, map[string]any{
		"max_job_workers":         4,
		"redis_url":               redisURL(p, 2),
		"job_loggers":             []string{"STD_OUTPUT", "FILE"},
		"level":                   "INFO",
		"logger_sweeper_duration": 1,
		"max_job_duration_hours":  24,
	})
	if err != nil {
		return "", nil, err
	}
	if config, err = swap(name, config,
		"port: 8080", fmt.Sprintf("port: %d", p.jobservice),
		"/var/log/jobs", logDir,
	); err != nil {
		return "", nil, err
	}
	envText, err := h.renderTemplate("jobservice/env.jinja", map[string]any{
		"core_secret":                        s.coreSecret,
		"registry_url":                       fmt.Sprintf("http://127.0.0.1:%d", p.registry),
		"jobservice_secret":                  s.jobserviceSecret,
		"core_url":                           fmt.Sprintf("http://127.0.0.1:%d", p.core),
		"registry_controller_url":            "http://127.0.0.1:9",
		"notification_webhook_job_max_retry": 3,
		"notification_webhook_job_http_client_timeout": 3,
		"log_level":              "info",
		"jobservice_http_proxy":  "",
		"jobservice_https_proxy": "",
		"jobservice_no_proxy":    "",
		"registry_username":      registryUser,
		"registry_password":      s.registryPassword,
	})
	if err != nil {
		return "", nil, err
	}
	env, err = envLines(envText)
	return config, env, err
}

// envLines turns a rendered env file into KEY=value entries, leaving out empty values (in a
// container they are set but empty, which Harbor reads as unset) and the container paths
// the caller sets itself.
func envLines(text string) ([]string, error) {
	var env []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("env file line %q", line)
		}
		switch k {
		case "CONFIG_PATH", "UAA_CA_ROOT", "PORT":
			continue
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env, nil
}

// nginxLogFormat is one JSON object per request: what the request looked like as nginx
// received it (from Traefik), and the headers of the answer that tests look at.
const nginxLogFormat = `  map $http_authorization $harbormirror_auth_scheme {
    default "";
    "~^(?<harbormirror_scheme>[^ ]+)" $harbormirror_scheme;
  }

  log_format harbormirror_json escape=json '{"time":"$time_iso8601","method":"$request_method",'
    '"uri":"$request_uri","status":$status,"host":"$http_host",'
    '"x_forwarded_proto":"$http_x_forwarded_proto","auth_scheme":"$harbormirror_auth_scheme",'
    '"test":"$http_x_harbormirror_test","location":"$sent_http_location",'
    '"www_authenticate":"$sent_http_www_authenticate","content_type":"$sent_http_content_type"}';

  access_log %s harbormirror_json;
`

// nginxConfig renders templates/nginx/nginx.http.conf.jinja (Harbor's proxy container).
func (h *Harbor) nginxConfig(p stackPorts, dir string) (string, error) {
	const name = "nginx/nginx.http.conf.jinja"
	out, err := h.renderTemplate(name, nil)
	if err != nil {
		return "", err
	}
	return swap(name, out,
		"pid /tmp/nginx.pid;", "pid "+filepath.Join(dir, "nginx.pid")+";",
		"/tmp/client_body_temp", filepath.Join(dir, "client_body_temp"),
		"/tmp/proxy_temp", filepath.Join(dir, "proxy_temp"),
		"/tmp/fastcgi_temp", filepath.Join(dir, "fastcgi_temp"),
		"/tmp/uwsgi_temp", filepath.Join(dir, "uwsgi_temp"),
		"/tmp/scgi_temp", filepath.Join(dir, "scgi_temp"),
		"server core:8080;", fmt.Sprintf("server 127.0.0.1:%d;", p.core),
		"server portal:8080;", "server 127.0.0.1:9;", // no portal: / answers 502
		"access_log /dev/stdout timed_combined;", "access_log "+filepath.Join(dir, "access.log")+" timed_combined;\n"+
			fmt.Sprintf(nginxLogFormat, h.requestLog),
		"listen 8080;", fmt.Sprintf("listen %s;", h.Host),
		"include /etc/nginx/conf.d/harbor.http.*.conf;", "# (no customized location files)",
	)
}
