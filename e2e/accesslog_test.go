package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/images"
	"github.com/harbormirror/harbormirror/e2e/realharbor"
)

// TestAccessLogOriginStatus: Traefik's access log records, for the responses the plugin
// rewrites with a body (a pull's 401 with its error document, a 404's, tags/list, the catalog),
// the status and size real Harbor's answer became, not OriginStatus 0 and OriginContentSize 0.
// The served project is the private one (Harbor takes no push into a proxy cache).
func TestAccessLogOriginStatus(t *testing.T) {
	t.Parallel()
	m := startMirror(t, mirrorOptions{Settings: teamSettings, ExtraStatic: "accessLog:\n  format: json\n"})
	ctx := context.Background()
	if err := images.Seed(ctx, harborStore{m}, m.TeamProject+"/library", images.Single); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(client.CloseIdleConnections)
	send := func(target, authorization string) (int, int) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+m.Host+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, len(body)
	}
	token := teamFetchToken(t, client, map[string]string{
		"realm": "http://" + m.Host + "/service/token", "service": "harbor-registry", "scope": "repository:library/single:pull",
	}, teamAliceCreds(m))
	bearer := "Bearer " + token.Token
	admin := "Basic " + base64.StdEncoding.EncodeToString([]byte(realharbor.AdminUser+":"+realharbor.AdminPassword))
	targets := map[string]int{}
	for _, r := range []struct {
		target, authorization string
		status                int
	}{
		{"/v2/library/single/manifests/latest", "", http.StatusUnauthorized},     // the pull lane
		{"/v2/library/single/manifests/latest?x=1", "", http.StatusUnauthorized}, // the general path
		{"/v2/library/single/tags/list", bearer, http.StatusOK},
		{"/v2/library/single/manifests/nope", bearer, http.StatusNotFound},
		{"/v2/_catalog?n=1", admin, http.StatusOK},
	} {
		if status, _ := send(r.target, r.authorization); status != r.status {
			t.Fatalf("%s: %d, want %d", r.target, status, r.status)
		}
		targets[r.target] = r.status // Traefik's RequestPath holds the query too
	}

	// Traefik writes a line once its handler has returned: wait for all of them.
	var lines []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lines = nil
		for _, line := range strings.Split(strings.TrimSpace(m.Traefik.AccessLog()), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil {
				lines = append(lines, entry)
			}
		}
		if len(lines) >= len(targets)+1 || time.Now().After(deadline) {
			break
		}
	}
	checked := 0
	for _, entry := range lines {
		path, _ := entry["RequestPath"].(string)
		want, ok := targets[path]
		if !ok || entry["DownstreamStatus"] != float64(want) {
			continue
		}
		checked++
		if entry["OriginStatus"] != entry["DownstreamStatus"] || entry["OriginContentSize"] != entry["DownstreamContentSize"] || entry["OriginContentSize"] == float64(0) {
			t.Errorf("%s: OriginStatus %v OriginContentSize %v, DownstreamStatus %v DownstreamContentSize %v",
				path, entry["OriginStatus"], entry["OriginContentSize"], entry["DownstreamStatus"], entry["DownstreamContentSize"])
		}
	}
	if checked != len(targets) {
		t.Errorf("checked %d of %d requests in the access log:\n%s", checked, len(targets), m.Traefik.AccessLog())
	}
}
