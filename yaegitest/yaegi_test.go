package yaegitest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

const moduleName = "github.com/harbormirror/harbormirror"

// yaegiPlugin is the plugin as Traefik v3.6's loader sees it: New and CreateConfig evaluated
// by Yaegi from the sources laid out under a GOPATH.
type yaegiPlugin struct {
	fnNew, fnCreateConfig reflect.Value
}

var (
	loadOnce   sync.Once
	loaded     yaegiPlugin
	loadFailed error
)

func loadYaegi(t testing.TB) yaegiPlugin {
	loadOnce.Do(func() { loaded, loadFailed = interpretPlugin() })
	if loadFailed != nil {
		t.Fatalf("Yaegi could not load the plugin: %v", loadFailed)
	}
	return loaded
}

func interpretPlugin() (yaegiPlugin, error) {
	i, err := interpreter()
	if err != nil {
		return yaegiPlugin{}, err
	}
	return importPlugin(i, moduleName)
}

// importPlugin evaluates the plugin package importPath, then its New and CreateConfig, as
// Traefik's loader does.
func importPlugin(i *interp.Interpreter, importPath string) (yaegiPlugin, error) {
	if _, err := i.Eval(fmt.Sprintf("import %q", importPath)); err != nil {
		return yaegiPlugin{}, fmt.Errorf("import: %w", err)
	}
	basePkg := path.Base(importPath)
	fnNew, err := i.Eval(basePkg + ".New")
	if err != nil {
		return yaegiPlugin{}, err
	}
	fnCreateConfig, err := i.Eval(basePkg + ".CreateConfig")
	if err != nil {
		return yaegiPlugin{}, err
	}
	return yaegiPlugin{fnNew: fnNew, fnCreateConfig: fnCreateConfig}, nil
}

// interpreter is set up as Traefik's loader sets it up, with the plugin (the parent directory of
// this module) under its GOPATH.
func interpreter() (*interp.Interpreter, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	src, goPath, err := pluginDir()
	if err != nil {
		return nil, err
	}
	if err := os.Symlink(root, src); err != nil {
		return nil, err
	}
	return interpreterAt(goPath)
}

// pluginDir makes a GOPATH for an interpreter and returns the plugin's directory in it, to be
// made. The interpreter reads sources lazily; the GOPATH stays for the life of the test binary.
func pluginDir() (src, goPath string, err error) {
	goPath, err = os.MkdirTemp("", "harbormirror-yaegi-")
	if err != nil {
		return "", "", err
	}
	src = filepath.Join(goPath, "src", filepath.FromSlash(moduleName))
	return src, goPath, os.MkdirAll(filepath.Dir(src), 0o755)
}

// withoutLanesInterpreter is interpreter with one file more in the plugin's package,
// testdata/withoutlanes/withoutlanes.go: the plugin's directory holds links to each of its
// non-test Go files and subdirectories, and to that file.
func withoutLanesInterpreter() (*interp.Interpreter, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	extra, err := filepath.Abs(filepath.Join("testdata", "withoutlanes", "withoutlanes.go"))
	if err != nil {
		return nil, err
	}
	src, goPath, err := pluginDir()
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	links := map[string]string{"withoutlanes.go": extra}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			links[name] = filepath.Join(root, name)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			return nil, err
		}
	}
	return interpreterAt(goPath)
}

// interpreterAt is set up as Traefik's loader sets it up, with goPath as its GOPATH.
func interpreterAt(goPath string) (*interp.Interpreter, error) {
	i := interp.New(interp.Options{GoPath: goPath, Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		return nil, err
	}
	return i, nil
}

func newInterpreter(t testing.TB) *interp.Interpreter {
	i, err := interpreter()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// buildYaegi builds the plugin under Yaegi.
func buildYaegi(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	return loadYaegi(t).build(t, settings, next)
}

// build follows Traefik's yaegiMiddlewareBuilder: CreateConfig, mapstructure, then New called
// through reflect.
func (p yaegiPlugin) build(t testing.TB, settings map[string]interface{}, next http.Handler) (http.Handler, error) {
	results := p.fnCreateConfig.Call(nil)
	if len(results) != 1 {
		return nil, fmt.Errorf("CreateConfig returned %d values", len(results))
	}
	config := results[0]
	if err := decodeSettings(settings, config.Interface()); err != nil {
		return nil, err
	}
	args := []reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(next), config, reflect.ValueOf("test")}
	results = p.fnNew.Call(args)
	if len(results) > 1 && results[1].Interface() != nil {
		err, ok := results[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type %T", results[1].Interface())
		}
		return nil, err
	}
	handler, ok := results[0].Interface().(http.Handler)
	if !ok {
		return nil, errors.New("New did not return an http.Handler")
	}
	return handler, nil
}

func TestYaegiConfigErrors(t *testing.T)     { runConfigErrors(t, buildYaegi) }
func TestYaegiStreaming(t *testing.T)        { runStreaming(t, buildYaegi) }
func TestYaegiBodyBeforeHeader(t *testing.T) { runBodyBeforeHeader(t, buildYaegi) }
