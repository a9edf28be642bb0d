package realharbor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/harbormirror/harbormirror/e2e/harbor"
)

// Exchange is one line of nginx's JSON request log: a request as Harbor's nginx received it
// (from Traefik) and the headers of Harbor's answer that tests look at.
type Exchange struct {
	Time   string `json:"time"`
	Method string `json:"method"`
	// URI is the request target as received, query included.
	URI    string `json:"uri"`
	Status int    `json:"status"`
	// Host is the Host header as received (port included).
	Host           string `json:"host"`
	ForwardedProto string `json:"x_forwarded_proto"`
	AuthScheme     string `json:"auth_scheme"`
	// Test is the TestHeader of the request: the test whose Traefik sent it.
	Test            string `json:"test"`
	Location        string `json:"location"`
	WWWAuthenticate string `json:"www_authenticate"`
	ContentType     string `json:"content_type"`
}

// Request is the exchange as the fake Harbor's log records requests (harbor.Request), so the
// scenario assertions work on both.
func (e Exchange) Request() (harbor.Request, error) {
	r, err := harbor.RequestOf(e.Method, e.URI, e.Host, e.AuthScheme, e.Status)
	if err != nil {
		return r, fmt.Errorf("log line %+v: %w", e, err)
	}
	r.ForwardedProto = e.ForwardedProto
	r.Time, _ = time.Parse(time.RFC3339, e.Time)
	return r, nil
}

// Exchanges returns every logged exchange of the test testID (its TestHeader value), in order.
func (h *Harbor) Exchanges(testID string) ([]Exchange, error) {
	return h.ExchangesWhere(func(e Exchange) bool { return e.Test == testID })
}

// ExchangesWhere returns every logged exchange that keep accepts, in order.
func (h *Harbor) ExchangesWhere(keep func(Exchange) bool) ([]Exchange, error) {
	b, err := os.ReadFile(h.requestLog)
	if err != nil {
		return nil, err
	}
	// A line nginx is still writing has no newline yet: leave it for the next read.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []Exchange
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e Exchange
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", h.requestLog, err, line)
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Requests returns the requests of test testID as harbor.Request records (see Exchanges).
func (h *Harbor) Requests(testID string) ([]harbor.Request, error) {
	exchanges, err := h.Exchanges(testID)
	if err != nil {
		return nil, err
	}
	reqs := make([]harbor.Request, 0, len(exchanges))
	for _, e := range exchanges {
		r, err := e.Request()
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

// WaitRequests reads the requests of test testID until done accepts them or timeout passes,
// and returns the last read either way: nginx logs a request only once it has answered it, so
// a client can have its answer before the line exists.
func (h *Harbor) WaitRequests(testID string, done func([]harbor.Request) bool, timeout time.Duration) ([]harbor.Request, error) {
	deadline := time.Now().Add(timeout)
	for {
		reqs, err := h.Requests(testID)
		if err != nil || done(reqs) || time.Now().After(deadline) {
			return reqs, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
