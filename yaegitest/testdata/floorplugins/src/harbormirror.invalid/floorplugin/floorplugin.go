// Package floorplugin is the least a Traefik plugin can be, to measure under Yaegi the floor
// every interpreted plugin pays (BenchmarkYaegiEmptyPlugin): its ServeHTTP only calls next. With
// wrapResponse, it is the least a response-rewriting plugin can be (BenchmarkYaegiEmptyWrapper):
// next gets a wrapper of the ResponseWriter with one interpreted method, WriteHeader, that only
// passes the call on; Write is promoted, as harbormirror's wrapper promotes it. New picks the
// handler, so that neither pays a branch per request.
package floorplugin

import (
	"context"
	"net/http"
)

// Config holds the one setting.
type Config struct {
	WrapResponse bool `json:"wrapResponse,omitempty"`
}

// CreateConfig is what Traefik's loader calls first.
func CreateConfig() *Config { return &Config{} }

// New is what Traefik's loader calls with the decoded Config.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config.WrapResponse {
		return &wrapping{next: next}, nil
	}
	return &empty{next: next}, nil
}

type empty struct{ next http.Handler }

func (p *empty) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.next.ServeHTTP(w, r) }

type wrapping struct{ next http.Handler }

func (p *wrapping) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.next.ServeHTTP(&responseWriter{w}, r)
}

type responseWriter struct{ http.ResponseWriter }

func (w *responseWriter) WriteHeader(code int) { w.ResponseWriter.WriteHeader(code) }
