package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/harbormirror/harbormirror/e2e/images"
)

// TestAccessLogOriginStatus: Traefik's access log records, for the responses the plugin
// rewrites with a body (a pull's 401 with its error document, a 404's, tags/list, the catalog),
// the status and size Harbor's answer became, not OriginStatus 0 and OriginContentSize 0.
func TestAccessLogOriginStatus(t *testing.T) {
	m := startFakeMirror(t, mirrorOptions{ExtraStatic: "accessLog:\n  format: json\n"})
	ctx := context.Background()
	if err := images.Seed(ctx, m.Harbor, "hub/library", images.Single); err != nil {
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
	var token struct{ Token string }
	resp, err := client.Get("http://" + m.Host + "/service/token?scope=repository%3Alibrary%2Fsingle%3Apull&service=harbor-registry")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&token)
	_ = resp.Body.Close()
	if err != nil || token.Token == "" {
		t.Fatalf("token: %v", err)
	}
	bearer, admin := "Bearer "+token.Token, "Basic YWRtaW46SGFyYm9yMTIzNDU=" // admin:Harbor12345
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
