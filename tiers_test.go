package harbormirror

import (
	"context"
	"net/http"
	"testing"

	"github.com/harbormirror/harbormirror/internal/boundary"
)

// The tiers at the plugin boundary, compiled: a Mirror with its lanes against withoutLanes, the
// same configuration served by the pull path and the general path only (internal/boundary holds
// the harness; yaegitest runs the same under Yaegi).

// buildWithLanes builds the middleware as New does, and fails when it has no lanes to compare.
func buildWithLanes(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	m, err := newMirror(&Config{Settings: settings})
	if err != nil {
		return nil, err
	}
	if m.pullLane == nil {
		t.Fatalf("%v: no lanes to compare", settings)
	}
	m.next = next
	return m, nil
}

// buildWithoutLanes builds the middleware as New does and serves it without its lanes.
func buildWithoutLanes(_ testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	h, err := New(context.Background(), next, &Config{Settings: settings}, "test")
	if m, ok := h.(*Mirror); ok {
		return &withoutLanes{m}, nil
	}
	return h, err
}

func TestTiersAgree(t *testing.T) { boundary.RunTiersAgree(t, buildWithLanes, buildWithoutLanes, 1) }

// FuzzTiers: any method, target, request body and Harbor answer, under each configuration of
// boundary.TierSettings: the tiers forward the same request and give the same response, without
// a panic.
func FuzzTiers(f *testing.F) { boundary.FuzzTiers(f, buildWithLanes, buildWithoutLanes) }

// TestExchangesWithoutLanes runs every exchange table (yaegitest runs them with the lanes,
// compiled and under Yaegi) without the lanes: the pull path and the general path must meet each
// table's expectations alone.
func TestExchangesWithoutLanes(t *testing.T) { boundary.RunEveryTable(t, buildWithoutLanes) }
