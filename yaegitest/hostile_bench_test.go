package yaegitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/harbormirror/harbormirror/internal/boundary"
	"github.com/harbormirror/harbormirror/rewrite"
)

// hostileBenchRequest is a request near the bounds of issue #13's class 1: the most expensive ones
// Traefik's default limits (1 MiB of request line and headers) let through to the plugin.
type hostileBenchRequest struct {
	method, target, body, host string
	header                     http.Header
	answer                     int // Harbor's status: 200, or 401 with Harbor's challenge
	status                     int // the plugin's answer, or Harbor's when forwarded
}

// nearMiB is a request line just under Traefik's 1 MiB limit on the request line and headers.
const nearMiB = 1<<20 - 4<<10

func hostileBenchRequests() map[string]hostileBenchRequest {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	// The most a token request may ask for: MaxScopes scope parameters and more pairs up to
	// MaxQueryParams, within MaxRequestTarget (GET) or MaxTokenForm (POST).
	atBounds := "service=harbor-registry&" + boundary.ScopeParams(rewrite.MaxScopes) + strings.Repeat("&sc%6Fpx=y", rewrite.MaxQueryParams-rewrite.MaxScopes-3)
	tokenGET := "/service/token?" + atBounds
	tokenGET += "&pad=" + strings.Repeat("p", rewrite.MaxRequestTarget-len(tokenGET)-len("&pad="))
	tokenForm := "grant_type=password&" + atBounds
	tokenForm += "&pad=" + strings.Repeat("p", rewrite.MaxTokenForm-len(tokenForm)-len("&pad="))
	catalog := "/v2/_catalog?n=1" + strings.Repeat("&%6C%61%73%74=x", rewrite.MaxQueryParams-2)
	catalog += "&pad=" + strings.Repeat("p", rewrite.MaxRequestTarget-len(catalog)-len("&pad=")-len("&last=hub%2F"))
	return map[string]hostileBenchRequest{
		"PullLongName":          {method: "GET", target: "/v2/" + strings.Repeat("a", nearMiB) + "/manifests/latest", status: 414},
		"PullLongQuery":         {method: "GET", target: "/v2/library/hello/manifests/latest?ns=docker.io&pad=" + strings.Repeat("p", nearMiB), status: 414},
		"Challenge401Host1MiB":  {method: "GET", target: "/v2/library/hello/manifests/latest", host: strings.Repeat("a-", nearMiB/2) + "b", answer: 401, status: 400},
		"PullLaneHeader1MiB":    {method: "GET", target: "/v2/library/hello/manifests/latest", header: http.Header{"X-Big": {strings.Repeat("h", nearMiB)}}, status: 200},
		"TokenLongService":      {method: "GET", target: "/service/token?scope=repository%3Alibrary%2Fhello%3Apull&service=" + strings.Repeat("s", nearMiB), status: 414},
		"TokenManyPairs":        {method: "GET", target: "/service/token?" + strings.Repeat("scope=&", nearMiB/7), status: 414},
		"TokenGETAtBounds":      {method: "GET", target: tokenGET, status: 200},
		"TokenPOSTAtBounds":     {method: "POST", target: "/service/token", body: tokenForm, header: form, status: 200},
		"CatalogEscapedKeys":    {method: "GET", target: "/v2/_catalog?" + strings.Repeat("%6C%61%73%74=x&", nearMiB/15), status: 414},
		"CatalogAtBounds":       {method: "GET", target: catalog, status: 200},
		"UploadPathOfEscapes":   {method: "PATCH", target: "/v2/team/app/blobs/uploads/" + strings.Repeat("%41", nearMiB/3), status: 414},
		"UploadEscapesAtBounds": {method: "PATCH", target: "/v2/team/app/blobs/uploads/" + strings.Repeat("%41", (rewrite.MaxRequestTarget-100)/6), status: 404},
		"UploadStateAtBounds":   {method: "PUT", target: "/v2/team/app/blobs/uploads/u-1?digest=" + digest + "&_state=" + strings.Repeat("s", rewrite.MaxRequestTarget-200), status: 200},
		"TokenScopeListAtOnce":  {method: "GET", target: "/service/token?service=harbor-registry&" + boundary.ScopeList(rewrite.MaxScopes), status: 200},
		// 1 MiB of headers the plugin reads: Content-Type of an upload, Content-Encoding of a token form.
		"UploadManyContentTypes": {method: "POST", target: "/v2/team/app/blobs/uploads/", header: http.Header{"Content-Type": manyValues("application/octet-stream", "text/plain")}, status: 200},
		"TokenManyEncodings":     {method: "POST", target: "/service/token", body: "scope=repository%3Ax%3Apull", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": manyValues("identity", "identity")}, status: 415},
	}
}

// manyValues is first, then copies of other, in about 1 MiB of header lines.
func manyValues(first, other string) []string {
	values := []string{first}
	for n := 0; n < nearMiB/(len(other)+20); n++ {
		values = append(values, other)
	}
	return values
}

func runHostileBenchmark(b *testing.B, build build, c hostileBenchRequest) {
	handler, err := build(b, map[string]interface{}{"project": "hub"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/_catalog" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"repositories":["hub/library/hello","other/x"]}`)
			return
		}
		w.Header().Set("Content-Length", "0")
		if c.answer == http.StatusUnauthorized {
			w.Header().Set("Www-Authenticate", realmIn+`,scope="repository:hub/library/hello:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(c.method, c.target, nil)
	req.Host = "mirror.example.com"
	if c.host != "" {
		req.Host = c.host
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	serveRepeatedly(b, handler, req, c.body, c.status)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/req")
}

// BenchmarkYaegiHostile measures, under Yaegi as Traefik runs the plugin, the requests of
// hostileBenchRequests. Target (issue #13): at most 5 ms of CPU per request (ms/req), and none of
// them grows with the request beyond the bounds of rewrite/limits.go.
func BenchmarkYaegiHostile(b *testing.B) {
	for name, c := range hostileBenchRequests() {
		b.Run(name, func(b *testing.B) { runHostileBenchmark(b, buildYaegi, c) })
	}
}

func BenchmarkCompiledHostile(b *testing.B) {
	for name, c := range hostileBenchRequests() {
		b.Run(name, func(b *testing.B) { runHostileBenchmark(b, buildCompiled, c) })
	}
}
