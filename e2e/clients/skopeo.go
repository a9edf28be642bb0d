package clients

import (
	"path/filepath"
	"strings"
	"testing"
)

// SkopeoCopy runs `skopeo copy --src-tls-verify=false --dest-tls-verify=false args... src dst`, e.g.
// SkopeoCopy(t, "docker://127.0.0.1:22001/library/hello:latest", "dir:"+t.TempDir()). args come after
// the defaults, so "--src-tls-verify=true", "--src-cert-dir", dir turns verification back on; use
// "--src-creds", "user:pass" for credentials.
func SkopeoCopy(t testing.TB, src, dst string, args ...string) (string, error) {
	t.Helper()
	Require(t, ClientSkopeo)
	flags := append([]string{"copy", "--src-tls-verify=false", "--dest-tls-verify=false"}, args...)
	return skopeo(t, append(flags, src, dst)...)
}

// SkopeoInspectDigest returns the digest of the manifest ref resolves to (the index for a
// multi-platform image), from `skopeo inspect --tls-verify=false args... ref`, failing the test on
// error. Use "--creds", "user:pass" for credentials.
func SkopeoInspectDigest(t testing.TB, ref string, args ...string) string {
	t.Helper()
	Require(t, ClientSkopeo)
	flags := append([]string{"inspect", "--tls-verify=false", "--format", "{{.Digest}}"}, args...)
	out, err := skopeo(t, append(flags, ref)...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// skopeo runs skopeo with a private policy, registries.conf, auth file, HOME and temporary directory.
// Only its blob-info cache stays machine-wide: as root, containers/image always keeps it in
// /var/lib/containers/cache and skopeo has no flag to move it.
func skopeo(t testing.TB, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	registriesConf := filepath.Join(dir, "registries.conf")
	home := filepath.Join(dir, "home")
	tmp := filepath.Join(dir, "tmp")
	mkdirs(t, home, tmp)
	writeFile(t, policy, []byte(acceptAnythingPolicy), 0o644)
	writeFile(t, registriesConf, nil, 0o644)
	env := []string{
		"REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json"),
		// Keeps ~/.docker/config.json and ~/.config/containers/auth.json out of the credential search.
		"HOME=" + home,
	}
	// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF; its hidden --registries-conf flag works. The
	// /etc/containers/registries.conf.d drop-ins (short-name aliases) are still read.
	global := []string{"--policy", policy, "--registries-conf", registriesConf, "--tmpdir", tmp}
	return runCommand(env, nil, "skopeo", append(global, args...)...)
}
