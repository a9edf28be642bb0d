package harbormirror

// Not part of the plugin: yaegitest (withoutLanesInterpreter) lays this file beside the plugin's
// own files in the interpreter's GOPATH, so that Yaegi serves a configuration without its lanes as
// the plugin's compiled tests do (tiers_test.go). It uses only what the plugin's tests use.

import (
	"context"
	"net/http"
)

// NewWithoutLanes builds the middleware as New does and serves it without its lanes: the pull
// path and the general path only.
func NewWithoutLanes(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	h, err := New(ctx, next, config, name)
	if m, ok := h.(*Mirror); ok {
		return &withoutLanes{m}, nil
	}
	return h, err
}

// HasLanes says whether the middleware config builds has lanes to compare.
func HasLanes(config *Config) bool {
	m, err := newMirror(config)
	return err == nil && m.pullLane != nil
}
