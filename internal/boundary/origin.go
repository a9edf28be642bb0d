package boundary

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// originCapture is what Traefik's access log records as OriginStatus and OriginContentSize: the
// status and size that have reached the router's capture writer (outside the plugin) when the
// service handler, the plugin's next, returns (accesslog.AddServiceFields reads them then).
type originCapture struct {
	rw     http.ResponseWriter
	status int
	size   int
}

func (c *originCapture) Header() http.Header { return c.rw.Header() }

func (c *originCapture) WriteHeader(code int) {
	c.rw.WriteHeader(code)
	c.status = code
}

func (c *originCapture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.rw.Write(p)
	c.size += n
	return n, err
}

// Every response the plugin rewrites with a body has reached Traefik's writer, status and body,
// by the time Harbor's handler returns, when Harbor declared its length; otherwise Traefik logs
// OriginStatus 0 and OriginContentSize 0.
func RunOriginCapture(t *testing.T, build Build) {
	for _, e := range originExchanges {
		t.Run(e.name, func(t *testing.T) {
			var seen harborStub
			capture := &originCapture{rw: httptest.NewRecorder()}
			originStatus, originSize := -1, -1
			harbor := e.harbor(&seen)
			service := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				harbor.ServeHTTP(w, r)
				originStatus, originSize = capture.status, capture.size
			})
			handler, err := build(t, map[string]interface{}{"project": "hub"}, service)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(e.method, e.target, nil)
			req.Host = "mirror.example.com"
			handler.ServeHTTP(capture, req)
			rec := capture.rw.(*httptest.ResponseRecorder)
			if rec.Code != e.status || !strings.Contains(rec.Body.String(), e.bodyHas) {
				t.Fatalf("answered %d %s, want %d with %s", rec.Code, rec.Body, e.status, e.bodyHas)
			}
			if originStatus != rec.Code || originSize != rec.Body.Len() {
				t.Errorf("when Harbor's handler returned, Traefik's writer had status %d and %d bytes; the client got %d and %d bytes",
					originStatus, originSize, rec.Code, rec.Body.Len())
			}
		})
	}
}

var originExchanges = []Exchange{
	{name: "pull lane 401 with its error document", method: "GET", target: "/v2/library/hello/manifests/latest",
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Content-Length": {strconv.Itoa(len(HarborUnauthorized))},
			"Www-Authenticate": {RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		harborBody: HarborUnauthorized, status: 401, bodyHas: clientUnauthorized},
	{name: "general 401 with its error document", method: "GET", target: "/v2/library/hello/manifests/latest?x=1",
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Content-Length": {strconv.Itoa(len(HarborUnauthorized))},
			"Www-Authenticate": {RealmIn + `,scope="repository:hub/library/hello:pull"`}},
		harborBody: HarborUnauthorized, status: 401, bodyHas: clientUnauthorized},
	{name: "404 error document", method: "GET", target: "/v2/nope/manifests/latest",
		harborStatus: 404, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(harborNotFound))}},
		harborBody: harborNotFound, status: 404, bodyHas: clientLibraryNotFound},
	{name: "tags/list with a length", method: "GET", target: "/v2/hello/tags/list",
		harborStatus: 200, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {"47"}},
		harborBody: `{"name":"hub/library/hello","tags":["latest"]}` + "\n", status: 200, bodyHas: `{"name":"hello","tags":["latest"]}`},
	{name: "catalog with a length", method: "GET", target: "/v2/_catalog?n=1",
		harborStatus: 200, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(harborCatalog))}},
		harborBody: harborCatalog, status: 200, bodyHas: `{"repositories":["hub/x"]}`},
	{name: "catalog 401", method: "GET", target: "/v2/_catalog",
		harborStatus: 401, harborHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {"20"}, "Www-Authenticate": {`Basic realm="harbor"`}},
		harborBody: `{"errors":"denied"}` + "\n", status: 401, bodyHas: `{"errors":"denied"}`},
}
