package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/harbormirror/harbormirror/e2e/clients"
	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

// Scenario 5: pushes through the mapping into the normal (private) project team: by hand
// (monolithic and chunked uploads following every Location), with go-containerregistry (including a
// cross-repository mount) and with skopeo; then behind Traefik terminating TLS while Harbor answers
// with absolute http:// upload Locations, where the push works with the plugin and fails without it.

// TestPushByHandMonolithicAndChunked drives the upload protocol with net/http, following each
// Location exactly as given: the config blob goes up monolithically (POST, then PUT with the
// body), each layer in chunks (POST, PATCH with Content-Range per chunk, the last layer's last
// chunk in the closing PUT), then the manifest. It pulls the image back and checks every digest.
func TestPushByHandMonolithicAndChunked(t *testing.T) {
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{Settings: teamSettings})
	reg := newTeamRegistry(t, "http://"+m.Host, nil, teamAliceCreds(m))
	img := testImage(t, images.Single)

	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	loc := reg.startUpload("hand")
	reg.finishUpload("hand", loc, cfgName.String(), cfg)

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	patches := 0
	for i, l := range layers {
		d, blob := teamLayer(t, l)
		chunks := teamSplit(blob, 3)
		last := i == len(layers)-1
		loc := reg.startUpload("hand")
		var offset int64
		for j, c := range chunks {
			if last && j == len(chunks)-1 {
				break // sent with the PUT
			}
			loc = reg.patchChunk("hand", loc, c, offset)
			offset += int64(len(c))
			patches++
		}
		var tail []byte
		if last {
			tail = chunks[len(chunks)-1]
		}
		reg.finishUpload("hand", loc, d, tail)
	}
	reg.putManifest("hand", "v1", img)

	// The first request was challenged in the client's names.
	if len(reg.challenges) == 0 {
		t.Fatal("the push was never challenged")
	}
	want := map[string]string{"realm": "http://" + m.Host + "/service/token", "service": "harbor-registry", "scope": "repository:hand:pull,push"}
	if got := reg.challenges[0]; !teamMapsEqual(got, want) {
		t.Errorf("push challenge %v, want %v", got, want)
	}
	teamPullBack(t, m, m.Host+"/hand:v1", nil, digestOf(t, images.Single))

	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	teamViaMirror(t, reqs, m.Host)
	if n := teamCount(reqs, "PATCH", "/v2/"+m.TeamProject+"/hand/blobs/uploads/", http.StatusAccepted); n != patches {
		t.Errorf("Harbor answered %d chunk PATCHes with 202, want %d:\n%s", n, patches, traceOf(reqs))
	}
	if n := teamCount(reqs, "PUT", "/v2/"+m.TeamProject+"/hand/blobs/uploads/", http.StatusCreated); n != len(layers)+1 {
		t.Errorf("Harbor completed %d uploads, want %d:\n%s", n, len(layers)+1, traceOf(reqs))
	}
	teamSawRequest(t, reqs, "PUT", "/v2/"+m.TeamProject+"/hand/manifests/v1", http.StatusCreated)
}

// TestPushGGCRWriteAndMount: go-containerregistry pushes an image to <mirror>/app (token scopes
// and every upload request mapped to team/app), then pushes the same image, read back from
// <mirror>/app, to <mirror>/other: every blob is mounted across repositories with from=team/app,
// nothing is uploaded again. Both repositories pull back with the built digests.
func TestPushGGCRWriteAndMount(t *testing.T) {
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{Settings: teamSettings})
	app := teamRef(t, m.Host+"/app:v1")
	if err := remote.Write(app, testImage(t, images.Single), remote.WithAuth(teamAlice(m))); err != nil {
		t.Fatalf("push %s: %v", app, err)
	}
	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	teamViaMirror(t, reqs, m.Host)
	teamSawRequest(t, reqs, "POST", "/v2/"+m.TeamProject+"/app/blobs/uploads/", http.StatusAccepted)
	if teamCount(reqs, "PATCH", "/v2/"+m.TeamProject+"/app/blobs/uploads/", http.StatusAccepted) == 0 ||
		teamCount(reqs, "PUT", "/v2/"+m.TeamProject+"/app/blobs/uploads/", http.StatusCreated) == 0 {
		t.Errorf("no blob upload reached team/app:\n%s", traceOf(reqs))
	}
	teamSawRequest(t, reqs, "PUT", "/v2/"+m.TeamProject+"/app/manifests/v1", http.StatusCreated)
	teamAssertScope(t, reqs, m.TeamProject+"/app", "pull", "push")

	// The same image, as a remote image of <mirror>/app: its layers and config are mountable.
	mark := len(reqs)
	src, err := remote.Image(app, remote.WithAuth(teamAlice(m)))
	if err != nil {
		t.Fatalf("read %s: %v", app, err)
	}
	other := teamRef(t, m.Host+"/other:v1")
	if err := remote.Write(other, src, remote.WithAuth(teamAlice(m))); err != nil {
		t.Fatalf("push %s: %v", other, err)
	}
	reqs = requests(m)[mark:]
	assertConfined(t, reqs, m.TeamProject)
	teamViaMirror(t, reqs, m.Host)
	teamAssertScope(t, reqs, m.TeamProject+"/other", "pull", "push")
	teamAssertScope(t, reqs, m.TeamProject+"/app", "pull")
	mounts := 0
	for _, r := range reqs {
		if r.Method == "POST" && r.Path == "/v2/"+m.TeamProject+"/other/blobs/uploads/" {
			q, _ := url.ParseQuery(r.RawQuery)
			if q.Get("from") != m.TeamProject+"/app" || q.Get("mount") == "" || r.Status != http.StatusCreated ||
				!strings.Contains(r.RawQuery, "from="+m.TeamProject+"%2Fapp") {
				t.Errorf("blob not mounted from team/app: %s", r)
				continue
			}
			mounts++
		}
		if r.Method == "PATCH" || (r.Method == "PUT" && strings.Contains(r.Path, "/blobs/")) {
			t.Errorf("a blob was uploaded instead of mounted: %s", r)
		}
	}
	if want := len(teamBlobsOf(t, images.Single)) - 1; mounts != want { // all but the manifest
		t.Errorf("Harbor mounted %d blobs into team/other, want %d:\n%s", mounts, want, traceOf(reqs))
	}
	teamSawRequest(t, reqs, "PUT", "/v2/"+m.TeamProject+"/other/manifests/v1", http.StatusCreated)

	teamPullBack(t, m, m.Host+"/app:v1", nil, digestOf(t, images.Single))
	teamPullBack(t, m, m.Host+"/other:v1", nil, digestOf(t, images.Single))
}

// TestPushSkopeoFromLayouts: skopeo copies a dir: copy of the Single image (Docker media types)
// to <mirror>/tools/skopeo:v1 and an OCI layout of it (OCI media types) to :oci, with alice's
// --dest-creds; both land in team/tools/skopeo and pull back with the built digests.
func TestPushSkopeoFromLayouts(t *testing.T) {
	clients.Require(t, clients.ClientSkopeo)
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{Settings: teamSettings})
	repo := m.Host + "/tools/skopeo"
	if out, err := clients.SkopeoCopy(t, "dir:"+teamDirLayout(t, images.Single), "docker://"+repo+":v1", "--dest-creds", teamAliceCreds(m)); err != nil {
		t.Fatalf("skopeo copy dir: to %s:v1: %v\n%s", repo, err, out)
	}
	ociImage := teamOCIImage(t, images.Single)
	ociDigest, err := ociImage.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := clients.SkopeoCopy(t, "oci:"+teamOCILayout(t, ociImage, "oci")+":oci", "docker://"+repo+":oci", "--dest-creds", teamAliceCreds(m)); err != nil {
		t.Fatalf("skopeo copy oci: to %s:oci: %v\n%s", repo, err, out)
	}
	teamPullBack(t, m, repo+":v1", nil, digestOf(t, images.Single))
	teamPullBack(t, m, repo+":oci", nil, ociDigest.String())

	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	teamViaMirror(t, reqs, m.Host)
	teamAssertScope(t, reqs, m.TeamProject+"/tools/skopeo", "pull", "push")
	teamAssertUploaded(t, reqs, m.TeamProject+"/tools/skopeo", testImage(t, images.Single), "v1")
	teamSawRequest(t, reqs, "PUT", "/v2/"+m.TeamProject+"/tools/skopeo/manifests/oci", http.StatusCreated)
}

// TestPushTLSLargeWithPlugin: Traefik terminates TLS and, like an old nginx in front of Harbor,
// sends Harbor X-Forwarded-Proto: http, so Harbor answers uploads with absolute http:// Locations
// (and, its external URL being http, an http:// realm). Through the plugin the client gets
// https://<TLS host>/... instead, both when it maps names into the private project and in
// origin-fix-only mode (no project: clients name the project themselves); skopeo (verifying
// against the test CA) and go-containerregistry push the Large image (50 MiB layer), and it pulls
// back over TLS intact.
func TestPushTLSLargeWithPlugin(t *testing.T) {
	clients.Require(t, clients.ClientSkopeo)
	t.Parallel()
	for _, mode := range []struct {
		name     string
		settings func(m *mirror) map[string]any
		// clientName is the name a client uses for repo of the private project.
		clientName func(m *mirror, repo string) string
	}{
		{"mapped", teamSettings, func(_ *mirror, repo string) string { return repo }},
		{"origin-fix-only", func(*mirror) map[string]any { return map[string]any{"tokenPath": "/service/token"} },
			func(m *mirror, repo string) string { return m.TeamProject + "/" + repo }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			teamTimed(t)
			m := startMirror(t, mirrorOptions{Settings: mode.settings, TLS: true, ForwardedProtoHTTP: true})
			name := func(repo string) string { return mode.clientName(m, repo) }
			pushTLSLarge(t, m, name)
		})
	}
}

func pushTLSLarge(t *testing.T, m *mirror, name func(repo string) string) {
	tlsTransport := &http.Transport{TLSClientConfig: m.CA.ClientTLSConfig()}
	t.Cleanup(tlsTransport.CloseIdleConnections)

	// The upload Location as the client gets it.
	reg := newTeamRegistry(t, "https://"+m.TLSHost, tlsTransport, teamAliceCreds(m))
	loc := reg.startUpload(name("probe"))
	if prefix := "https://" + m.TLSHost + "/v2/" + name("probe") + "/blobs/uploads/"; !strings.HasPrefix(loc, prefix) {
		t.Fatalf("upload Location %q, want %s...", loc, prefix)
	}
	reg.finishUpload(name("probe"), loc, teamDigestOf([]byte("probe\n")), []byte("probe\n"))

	// skopeo, verifying the certificate.
	dst := "docker://" + m.TLSHost + "/" + name("large") + ":v1"
	if out, err := clients.SkopeoCopy(t, "dir:"+teamDirLayout(t, images.Large), dst, "--dest-creds", teamAliceCreds(m),
		"--dest-tls-verify=true", "--dest-cert-dir", teamCertDir(t, m)); err != nil {
		t.Fatalf("skopeo copy to %s: %v\n%s", dst, err, out)
	}
	reqs := requests(m)
	teamAssertUploaded(t, reqs, m.TeamProject+"/large", testImage(t, images.Large), "v1")

	// go-containerregistry, recording the Locations it is sent.
	mark := len(reqs)
	rec := &locationRecorder{inner: tlsTransport}
	ggcrRef := teamTLSRef(t, m.TLSHost+"/"+name("ggcr/large")+":v1")
	if err := remote.Write(ggcrRef, testImage(t, images.Large), remote.WithAuth(teamAlice(m)), remote.WithTransport(rec)); err != nil {
		t.Fatalf("push %s: %v", ggcrRef, err)
	}
	uploads := 0
	for _, l := range rec.locations() {
		if strings.Contains(l, "/blobs/uploads/") {
			uploads++
			if prefix := "https://" + m.TLSHost + "/v2/" + name("ggcr/large") + "/blobs/uploads/"; !strings.HasPrefix(l, prefix) {
				t.Errorf("go-containerregistry got upload Location %q, want %s...", l, prefix)
			}
		}
	}
	if uploads == 0 {
		t.Errorf("go-containerregistry got no upload Location: %q", rec.locations())
	}
	teamAssertUploaded(t, requests(m)[mark:], m.TeamProject+"/ggcr/large", testImage(t, images.Large), "v1")

	teamPullBack(t, m, m.TLSHost+"/"+name("large")+":v1", tlsTransport, digestOf(t, images.Large))
	teamPullBack(t, m, m.TLSHost+"/"+name("ggcr/large")+":v1", tlsTransport, digestOf(t, images.Large))
	reqs = requests(m)
	assertConfined(t, reqs, m.TeamProject)
	teamViaMirror(t, reqs, m.TLSHost)
	teamAssertForwardedHTTP(t, reqs)
}

// teamAssertForwardedHTTP fails unless every request reached Harbor with X-Forwarded-Proto: http,
// the fault of the TLS scenarios (without it Harbor would answer with https:// URLs itself).
func teamAssertForwardedHTTP(t *testing.T, reqs []harbor.Request) {
	t.Helper()
	for _, r := range reqs {
		if r.ForwardedProto != "http" {
			t.Errorf("request reached Harbor with X-Forwarded-Proto %q, want http: %s", r.ForwardedProto, r)
		}
	}
}

// TestPushTLSLargeWithoutPluginFails is the same world with Traefik routing straight to Harbor:
// Harbor's realm and upload Locations are http://<TLS host>/..., a client that follows them as
// given speaks plain HTTP to Traefik's TLS entrypoint, where no router serves plain HTTP, and
// gets Traefik's 404. A client that found a token anyway is sent to an http:// upload Location and
// fails there; skopeo's push of the Large image fails, and no upload data ever reaches Harbor.
func TestPushTLSLargeWithoutPluginFails(t *testing.T) {
	clients.Require(t, clients.ClientSkopeo)
	t.Parallel()
	teamTimed(t)
	m := startMirror(t, mirrorOptions{NoMiddleware: true, TLS: true, ForwardedProtoHTTP: true})
	tlsTransport := &http.Transport{TLSClientConfig: m.CA.ClientTLSConfig()}
	t.Cleanup(tlsTransport.CloseIdleConnections)
	probe := m.TeamProject + "/probe"

	// Harbor's challenge sends the client to an http:// realm on the TLS host.
	client := &http.Client{Transport: tlsTransport}
	resp := teamMustDo(t, client, http.MethodPost, "https://"+m.TLSHost+"/v2/"+probe+"/blobs/uploads/", nil, nil)
	scheme, challenge := teamChallenge(resp.Header.Get("Www-Authenticate"))
	if want := "http://" + m.TLSHost + "/service/token"; resp.StatusCode != http.StatusUnauthorized || scheme != "bearer" || challenge["realm"] != want {
		t.Fatalf("anonymous POST: %s, challenge %s %v, want 401 with realm %s", resp.Status, scheme, challenge, want)
	}
	// A client that knew better and asked the https realm gets a token, and then an http://
	// upload Location.
	challenge["realm"] = "https://" + m.TLSHost + "/service/token"
	reg := newTeamRegistry(t, "https://"+m.TLSHost, tlsTransport, teamAliceCreds(m))
	reg.checkLocations = false
	reg.token = teamFetchToken(t, client, challenge, teamAliceCreds(m)).Token
	loc := reg.startUpload(probe)
	if prefix := "http://" + m.TLSHost + "/v2/" + probe + "/blobs/uploads/"; !strings.HasPrefix(loc, prefix) {
		t.Fatalf("without the plugin, upload Location %q, want Harbor's %s...", loc, prefix)
	}
	resp = reg.expect(http.StatusNotFound, http.MethodPatch, loc, []byte("probe\n"), map[string]string{"Content-Type": "application/octet-stream"})
	if body := teamBody(resp); body != "404 page not found\n" {
		t.Errorf("PATCH to Harbor's http:// Location: body %q, want Traefik's own 404", body)
	}

	dst := "docker://" + m.TLSHost + "/" + m.TeamProject + "/large:v1"
	out, err := clients.SkopeoCopy(t, "dir:"+teamDirLayout(t, images.Large), dst, "--dest-creds", teamAliceCreds(m),
		"--dest-tls-verify=true", "--dest-cert-dir", teamCertDir(t, m))
	if err == nil {
		t.Fatalf("skopeo push of the Large image succeeded without the plugin:\n%s", out)
	}
	// skopeo follows the http:// realm first, and fails there (Traefik's log below shows where).
	if !strings.Contains(out, "Requesting bearer token: invalid status code from registry 404") {
		t.Errorf("skopeo failed, but not on its token request:\n%s", out)
	}
	t.Logf("skopeo without the plugin: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))

	// Harbor handed out the probe's upload session and never saw upload data.
	reqs := requests(m)
	assertConfined(t, reqs, m.TeamProject)
	teamViaMirror(t, reqs, m.TLSHost)
	teamAssertForwardedHTTP(t, reqs)
	teamSawRequest(t, reqs, "POST", "/v2/"+probe+"/blobs/uploads/", http.StatusAccepted)
	for _, r := range reqs {
		if strings.Contains(r.Path, "/blobs/uploads/") && r.Method != "POST" {
			t.Errorf("upload data reached Harbor although its Location was unusable: %s", r)
		}
		if strings.Contains(r.Path, "/manifests/") && r.Method == "PUT" {
			t.Errorf("a manifest was pushed: %s", r)
		}
	}
	// Traefik's access log: the PATCH and skopeo's token request arrived over plain HTTP on the
	// TLS port and matched no router. Traefik writes a line once its handler returns, so the last
	// may lag the client.
	missedPatch, missedToken := false, false
	for deadline := time.Now().Add(5 * time.Second); !(missedPatch && missedToken) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(m.Traefik.AccessLog(), "\n") {
			if f := teamAccessLine.FindStringSubmatch(line); f != nil && f[2] == "404" && f[3] == "-" {
				missedPatch = missedPatch || f[1] == "PATCH"
				missedToken = missedToken || strings.Contains(line, `"GET /service/token?`)
			}
		}
	}
	if !missedPatch || !missedToken {
		t.Errorf("Traefik's access log: a PATCH answered 404 by no router %v, a token GET %v; want both:\n%s", missedPatch, missedToken, m.Traefik.AccessLog())
	}
}

// teamAccessLine picks method, status and router out of a Traefik access log line (CLF).
var teamAccessLine = regexp.MustCompile(`"(\w+) \S+ HTTP/[\d.]+" (\d+) \d+ "[^"]*" "[^"]*" \d+ "([^"]*)"`)

// --- helpers of the push scenarios ---

// teamRef parses a reference on the plain-HTTP mirror.
func teamRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// teamTLSRef parses a reference on the TLS mirror (go-containerregistry tries https first).
func teamTLSRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func teamLayer(t *testing.T, l v1.Layer) (string, []byte) {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), blob
}

// teamSplit cuts b into n nearly equal non-empty chunks (fewer if b is shorter).
func teamSplit(b []byte, n int) [][]byte {
	size := (len(b) + n - 1) / n
	var chunks [][]byte
	for len(b) > size {
		chunks = append(chunks, b[:size])
		b = b[size:]
	}
	return append(chunks, b)
}

func teamDigestOf(b []byte) string {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	return h.String()
}

// teamPullBack reads ref back as alice (through the mirror), checks the manifest digest against
// want (the image as built), and validates every blob's digest and the config against the manifest.
func teamPullBack(t *testing.T, m *mirror, ref string, rt http.RoundTripper, want string) {
	t.Helper()
	var r name.Reference
	opts := []remote.Option{remote.WithAuth(teamAlice(m))}
	if rt != nil {
		r = teamTLSRef(t, ref)
		opts = append(opts, remote.WithTransport(rt))
	} else {
		r = teamRef(t, ref)
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != want {
		t.Errorf("pull %s: digest %s, want %s", ref, d, want)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("pull %s: content does not match its digests: %v", ref, err)
	}
}

// teamDirLayout writes a standard image in skopeo's dir: format (manifest.json, blobs named by
// their hex digest), which keeps its Docker media types and so its digest.
func teamDirLayout(t *testing.T, image string) string {
	t.Helper()
	img := testImage(t, image)
	dir := filepath.Join(t.TempDir(), "dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("version", []byte("Directory Transport Version: 1.1\n"))
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	write("manifest.json", raw)
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	write(cfgName.Hex, cfg)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, blob := teamLayer(t, l)
		write(strings.TrimPrefix(d, "sha256:"), blob)
	}
	return dir
}

// teamOCIImage is a standard image rebuilt with OCI media types (skopeo's oci: transport only
// reads OCI manifests); its digest differs from the Docker original's.
func teamOCIImage(t *testing.T, image string) v1.Image {
	t.Helper()
	src := testImage(t, image)
	cfg, err := src.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := src.Layers()
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, l := range layers {
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
			t.Fatal(err)
		}
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// teamOCILayout writes img as an OCI layout with the given tag (ref.name).
func teamOCILayout(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// teamCertDir is a directory holding the test CA as ca.crt, for skopeo's --dest-cert-dir.
func teamCertDir(t *testing.T, m *mirror) string {
	t.Helper()
	ca, err := os.ReadFile(m.CA.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// teamCount counts the requests Harbor answered with status whose path starts with prefix.
func teamCount(reqs []harbor.Request, method, prefix string, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) && r.Status == status {
			n++
		}
	}
	return n
}

// teamViaMirror fails unless every request reached Harbor with the mirror's Host, which only
// Traefik passes on: a client that went around the mirror would show Harbor's own.
func teamViaMirror(t *testing.T, reqs []harbor.Request, host string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Error("Harbor received no request")
	}
	for _, r := range reqs {
		if r.Host != host {
			t.Errorf("request did not come through the mirror %s: %s", host, r)
		}
	}
}

// teamAssertScope fails unless some token request asked for actions on repo, as Harbor names it
// (what Harbor granted shows in the statuses it answered with).
func teamAssertScope(t *testing.T, reqs []harbor.Request, repo string, actions ...string) {
	t.Helper()
	for _, r := range reqs {
		for _, s := range r.Scopes {
			if s.Type == "repository" && s.Name == repo && teamContainsAll(s.Actions, actions) {
				return
			}
		}
	}
	t.Errorf("no token request asked for %v on %s:\n%s", actions, repo, traceOf(reqs))
}

func teamContainsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// teamAssertUploaded fails unless every blob of img was uploaded to repo (a completed PUT with its
// digest) and its manifest was pushed as tag.
func teamAssertUploaded(t *testing.T, reqs []harbor.Request, repo string, img v1.Image, tag string) {
	t.Helper()
	done := map[string]bool{}
	for _, r := range reqs {
		if r.Method == "PUT" && strings.HasPrefix(r.Path, "/v2/"+repo+"/blobs/uploads/") && r.Status == http.StatusCreated {
			q, _ := url.ParseQuery(r.RawQuery)
			done[q.Get("digest")] = true
		}
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{cfg.String()}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d.String())
	}
	for _, d := range want {
		if !done[d] {
			t.Errorf("blob %s was not uploaded to %s:\n%s", d, repo, traceOf(reqs))
		}
	}
	teamSawRequest(t, reqs, "PUT", "/v2/"+repo+"/manifests/"+tag, http.StatusCreated)
}

// teamRegistry is a minimal registry client that follows Locations exactly as given and answers
// Bearer challenges with a token fetched with Basic credentials.
type teamRegistry struct {
	t          *testing.T
	client     *http.Client
	origin     string // scheme://host of the registry
	creds      string
	token      string
	challenges []map[string]string // every Bearer challenge received, in order
	locations  []string            // every Location received, as given
	// checkLocations makes every upload Location name the client's repository on its origin
	// (or be relative); off where Harbor's own Locations are expected.
	checkLocations bool
}

func newTeamRegistry(t *testing.T, origin string, rt http.RoundTripper, creds string) *teamRegistry {
	if rt == nil {
		rt = http.DefaultTransport
	}
	// Redirects are not followed: a registry client treats Location headers itself.
	client := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &teamRegistry{t: t, client: client, origin: origin, creds: creds, checkLocations: true}
}

// send makes one request, answering a Bearer challenge once.
func (r *teamRegistry) send(method, rawURL string, body []byte, header map[string]string) (*http.Response, error) {
	r.t.Helper()
	for attempt := 0; ; attempt++ {
		h := map[string]string{}
		for k, v := range header {
			h[k] = v
		}
		if r.token != "" {
			h["Authorization"] = "Bearer " + r.token
		}
		resp, err := teamDo(r.client, method, rawURL, body, h)
		if err != nil {
			return nil, err
		}
		if l := resp.Header.Get("Location"); l != "" {
			r.locations = append(r.locations, l)
		}
		scheme, params := teamChallenge(resp.Header.Get("Www-Authenticate"))
		if resp.StatusCode != http.StatusUnauthorized || scheme != "bearer" || attempt > 0 {
			return resp, nil
		}
		r.challenges = append(r.challenges, params)
		r.token = teamFetchToken(r.t, r.client, params, r.creds).Token
	}
}

// expect sends a request and fails the test unless it is answered with status.
func (r *teamRegistry) expect(status int, method, rawURL string, body []byte, header map[string]string) *http.Response {
	r.t.Helper()
	resp, err := r.send(method, rawURL, body, header)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != status {
		r.t.Fatalf("%s %s: %s, want %d: %s", method, rawURL, resp.Status, status, teamBody(resp))
	}
	return resp
}

// location resolves a response's Location against its request URL, as clients do.
func (r *teamRegistry) location(resp *http.Response) string {
	r.t.Helper()
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		r.t.Fatalf("%s %s: Location %q: %v", resp.Request.Method, resp.Request.URL, resp.Header.Get("Location"), err)
	}
	return loc.String()
}

// checkUploadLocation fails unless an upload Location names the client's repository (no project
// prefix leaking) on the client's origin, or is relative.
func (r *teamRegistry) checkUploadLocation(repo string, resp *http.Response) {
	r.t.Helper()
	if !r.checkLocations {
		return
	}
	raw := resp.Header.Get("Location")
	path := strings.TrimPrefix(raw, r.origin)
	if !strings.HasPrefix(path, "/v2/"+repo+"/blobs/") {
		r.t.Errorf("%s %s: Location %q, want %s/v2/%s/blobs/... or relative", resp.Request.Method, resp.Request.URL.Path, raw, r.origin, repo)
	}
}

// startUpload POSTs a new upload session and returns its resolved Location.
func (r *teamRegistry) startUpload(repo string) string {
	r.t.Helper()
	resp := r.expect(http.StatusAccepted, http.MethodPost, r.origin+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.Header.Get("Docker-Upload-Uuid") == "" {
		r.t.Errorf("POST /v2/%s/blobs/uploads/: no Docker-Upload-UUID", repo)
	}
	r.checkUploadLocation(repo, resp)
	return r.location(resp)
}

// patchChunk sends one chunk at offset and returns the next Location.
func (r *teamRegistry) patchChunk(repo, loc string, chunk []byte, offset int64) string {
	r.t.Helper()
	end := offset + int64(len(chunk)) - 1
	resp := r.expect(http.StatusAccepted, http.MethodPatch, loc, chunk, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", offset, end),
	})
	if got, want := resp.Header.Get("Range"), "0-"+strconv.FormatInt(end, 10); got != want {
		r.t.Errorf("PATCH chunk %d-%d: Range %q, want %q", offset, end, got, want)
	}
	r.checkUploadLocation(repo, resp)
	return r.location(resp)
}

// finishUpload closes an upload with its digest (and a last piece of data, if any).
func (r *teamRegistry) finishUpload(repo, loc, digest string, body []byte) {
	r.t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		r.t.Fatal(err)
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	resp := r.expect(http.StatusCreated, http.MethodPut, u.String(), body, map[string]string{"Content-Type": "application/octet-stream"})
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		r.t.Errorf("PUT upload of %s: Docker-Content-Digest %q", digest, got)
	}
	r.checkUploadLocation(repo, resp)
}

func (r *teamRegistry) putManifest(repo, tag string, img v1.Image) {
	r.t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		r.t.Fatal(err)
	}
	mediaType, err := img.MediaType()
	if err != nil {
		r.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	resp := r.expect(http.StatusCreated, http.MethodPut, r.origin+"/v2/"+repo+"/manifests/"+tag, raw, map[string]string{"Content-Type": string(mediaType)})
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		r.t.Errorf("PUT manifest: Docker-Content-Digest %q, want %s", got, d)
	}
	if want := "/v2/" + repo + "/manifests/" + d.String(); strings.TrimPrefix(resp.Header.Get("Location"), r.origin) != want {
		r.t.Errorf("PUT manifest: Location %q, want %s", resp.Header.Get("Location"), want)
	}
}
