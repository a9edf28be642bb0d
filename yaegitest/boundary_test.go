package yaegitest

import (
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/harbormirror/harbormirror/internal/boundary"
)

// The plugin boundary under Yaegi: the plugin's New with its lanes against the same configuration
// served without them (testdata/withoutlanes), both interpreted. The plugin's own tests
// (tiers_test.go) compare the same compiled.

// withoutLanesPlugin is the plugin interpreted with testdata/withoutlanes/withoutlanes.go in its
// package: New, NewWithoutLanes and HasLanes.
type withoutLanesPlugin struct {
	lanes, general yaegiPlugin
	hasLanes       reflect.Value
}

var (
	withoutLanesOnce   sync.Once
	withoutLanesLoaded withoutLanesPlugin
	withoutLanesFailed error
)

func loadWithoutLanes(t testing.TB) withoutLanesPlugin {
	withoutLanesOnce.Do(func() {
		withoutLanesLoaded, withoutLanesFailed = interpretWithoutLanes()
	})
	if withoutLanesFailed != nil {
		t.Fatalf("Yaegi could not load the plugin with testdata/withoutlanes: %v", withoutLanesFailed)
	}
	return withoutLanesLoaded
}

func interpretWithoutLanes() (withoutLanesPlugin, error) {
	i, err := withoutLanesInterpreter()
	if err != nil {
		return withoutLanesPlugin{}, err
	}
	lanes, err := importPlugin(i, moduleName)
	if err != nil {
		return withoutLanesPlugin{}, err
	}
	general, hasLanes := lanes, reflect.Value{}
	if general.fnNew, err = i.Eval("harbormirror.NewWithoutLanes"); err != nil {
		return withoutLanesPlugin{}, err
	}
	if hasLanes, err = i.Eval("harbormirror.HasLanes"); err != nil {
		return withoutLanesPlugin{}, err
	}
	return withoutLanesPlugin{lanes: lanes, general: general, hasLanes: hasLanes}, nil
}

// buildYaegiWithoutLanes builds the plugin under Yaegi and serves it without its lanes.
func buildYaegiWithoutLanes(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	return loadWithoutLanes(t).general.build(t, settings, next)
}

// buildYaegiWithLanes builds the plugin under Yaegi as New does, and fails when it has no lanes
// to compare.
func buildYaegiWithLanes(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	p := loadWithoutLanes(t)
	config := p.lanes.fnCreateConfig.Call(nil)[0]
	if err := decodeSettings(settings, config.Interface()); err != nil {
		return nil, err
	}
	if !p.hasLanes.Call([]reflect.Value{config})[0].Bool() {
		t.Fatalf("%v: no lanes to compare", settings)
	}
	return p.lanes.build(t, settings, next)
}

// TestYaegiExchangesWithoutLanes runs every exchange table under Yaegi without the lanes (the
// tables' own tests run them with the lanes, compiled and under Yaegi; tiers_test.go without the
// lanes compiled).
func TestYaegiExchangesWithoutLanes(t *testing.T) {
	boundary.RunEveryTable(t, buildYaegiWithoutLanes)
}

// TestYaegiTiersAgree is the plugin's TestTiersAgree under Yaegi, on every fifth exchange of its
// grid: the whole grid under -race takes a minute.
func TestYaegiTiersAgree(t *testing.T) {
	boundary.RunTiersAgree(t, buildYaegiWithLanes, buildYaegiWithoutLanes, 5)
}

// FuzzYaegiTiers is the plugin's FuzzTiers under Yaegi, its seeds and its corpus included: any
// method, target, request body and Harbor answer; the tiers forward the same request and give the
// same response, without a panic.
func FuzzYaegiTiers(f *testing.F) {
	boundary.AddTiersCorpus(f, filepath.Join("..", "testdata", "fuzz", "FuzzTiers"))
	boundary.FuzzTiers(f, buildYaegiWithLanes, buildYaegiWithoutLanes)
}
