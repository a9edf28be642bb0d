package yaegitest

// The checks of Traefik's Plugin Catalog, applied to this tree on every `make test`. The catalog's
// analyzer (traefik/piceus, pkg/core/scrapper.go) takes the latest tag of a public GitHub
// repository with the topic traefik-plugin, reads its .traefik.yml (loadManifestContent) and go.mod
// (checkModuleFile, checkRepoName), downloads the module's zip from the Go module proxy, unzips it
// into a GOPATH and loads the plugin with Yaegi, testData as its settings (yaegiMiddlewareCheck).
// A failure keeps the plugin out of the catalog and opens an issue on the repository. The same
// steps run here, on the module zip the proxy would serve for the working tree.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	pfile "github.com/traefik/paerser/file"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
	"gopkg.in/yaml.v3"
)

// catalogManifest is .traefik.yml as the catalog reads it (piceus's Manifest, with the images).
type catalogManifest struct {
	DisplayName   string                 `yaml:"displayName"`
	Type          string                 `yaml:"type"`
	Import        string                 `yaml:"import"`
	BasePkg       string                 `yaml:"basePkg"`
	Compatibility string                 `yaml:"compatibility"`
	Summary       string                 `yaml:"summary"`
	IconPath      string                 `yaml:"iconPath"`
	BannerPath    string                 `yaml:"bannerPath"`
	TestData      map[string]interface{} `yaml:"testData"`
}

// loadCatalogManifest follows piceus's loadManifestContent: YAML for the fields, then testData
// again through Traefik's file decoder (paerser), which delivers its values as Traefik's file
// provider does; then the required fields. Beyond piceus: import must name the module itself
// (Traefik's loader evaluates it as the package holding New), and an image path must exist,
// or the catalog shows a broken image.
func loadCatalogManifest(content []byte, modulePath string, exists func(rel string) bool) (catalogManifest, error) {
	var m catalogManifest
	if err := yaml.Unmarshal(content, &m); err != nil {
		return m, fmt.Errorf("failed to read manifest content: %w", err)
	}
	if len(m.TestData) > 0 {
		var mp catalogManifest
		if err := pfile.DecodeContent(string(content), ".yaml", &mp); err != nil {
			return m, fmt.Errorf("failed to read testdata from manifest: %w", err)
		}
		m.TestData = mp.TestData
	}
	switch {
	case m.Type != "middleware" && m.Type != "provider":
		return m, fmt.Errorf("unsupported type: %s", m.Type)
	case m.Import == "":
		return m, errors.New("missing import")
	case m.DisplayName == "":
		return m, errors.New("missing DisplayName")
	case m.Summary == "":
		return m, errors.New("missing Summary")
	case m.TestData == nil:
		return m, errors.New("missing TestData")
	case m.Import != modulePath:
		return m, fmt.Errorf("import %q is not the module %q", m.Import, modulePath)
	}
	for _, img := range []string{m.IconPath, m.BannerPath} {
		if img != "" && !exists(img) {
			return m, fmt.Errorf("image %s is not in the repository", img)
		}
	}
	return m, nil
}

// checkModuleFile follows piceus's checkModuleFile and checkRepoName, and adds this project's
// rule: the plugin's go.mod requires nothing at all (Yaegi loads only the standard library and the
// plugin's own packages; a requirement is either forbidden or would need vendoring).
func checkModuleFile(gomod []byte, manifest catalogManifest) error {
	mod, err := modfile.Parse("go.mod", gomod, nil)
	if err != nil {
		return err
	}
	for _, require := range mod.Require {
		for _, forbidden := range []string{"github.com/containous/yaegi", "github.com/containous/traefik", "github.com/containous/maesh", "github.com/traefik/yaegi", "github.com/traefik/traefik", "github.com/traefik/mesh"} {
			if strings.Contains(require.Mod.Path, forbidden) {
				return fmt.Errorf("a plugin cannot have a dependence to: %s", require.Mod.Path)
			}
		}
	}
	if !strings.HasPrefix(strings.ReplaceAll(manifest.Import, "-", "_"), strings.ReplaceAll(mod.Module.Mod.Path, "-", "_")) {
		return fmt.Errorf("the import %q must be related to the module name %q", manifest.Import, mod.Module.Mod.Path)
	}
	if parts := strings.Split(mod.Module.Mod.Path, "/"); len(parts) < 3 || parts[0] != "github.com" {
		return fmt.Errorf("unsupported plugin: the module name (%s) is not github.com/<owner>/<repository>", mod.Module.Mod.Path)
	}
	if len(mod.Require) > 0 {
		return fmt.Errorf("go.mod requires %s: the plugin's module must require nothing", mod.Require[0].Mod.Path)
	}
	return nil
}

// moduleTree lays the plugin out as the catalog gets it: the module zip the Go proxy would serve
// for the working tree (the files git tracks or would track, without nested modules), unzipped
// into GOPATH/src/<module>. It returns the GOPATH and the plugin's directory in it.
func moduleTree(t testing.TB, repo, modulePath string) (goPath, dir string) {
	t.Helper()
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []modzip.File
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if _, err := os.Lstat(filepath.Join(repo, name)); err == nil { // not deleted in the tree
			files = append(files, zipFile{repo, filepath.ToSlash(name)})
		}
	}
	version := module.Version{Path: modulePath, Version: "v0.1.0"}
	var zip bytes.Buffer
	if err := modzip.Create(&zip, version, files); err != nil {
		t.Fatalf("the module zip: %v", err)
	}
	goPath = t.TempDir()
	archive := filepath.Join(goPath, "plugin.zip")
	if err := os.WriteFile(archive, zip.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(goPath, "src", filepath.FromSlash(modulePath))
	if err := modzip.Unzip(dir, version, archive); err != nil {
		t.Fatalf("unzip: %v", err)
	}
	return goPath, dir
}

// zipFile is a file of the working tree for modzip.Create (which leaves out nested modules).
type zipFile struct{ repo, name string }

func (f zipFile) Path() string { return f.name }
func (f zipFile) Lstat() (os.FileInfo, error) {
	return os.Lstat(filepath.Join(f.repo, filepath.FromSlash(f.name)))
}
func (f zipFile) Open() (io.ReadCloser, error) {
	return os.Open(filepath.Join(f.repo, filepath.FromSlash(f.name)))
}

// checkImports: every non-test Go file imports only the standard library as Yaegi provides it
// (stdlib.Symbols: no unsafe, no cgo) or the plugin's own packages, so no vendor directory is
// needed and Yaegi can load it.
func checkImports(dir, modulePath string) error {
	var problems []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			ipath, _ := strconv.Unquote(imp.Path.Value)
			if ipath == modulePath || strings.HasPrefix(ipath, modulePath+"/") {
				continue
			}
			if _, ok := stdlib.Symbols[ipath+"/"+path.Base(ipath)]; !ok {
				rel, _ := filepath.Rel(dir, p)
				problems = append(problems, rel+" imports "+ipath)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "vendor")); err == nil {
		problems = append(problems, "a vendor directory, which nothing needs")
	}
	if len(problems) > 0 {
		return fmt.Errorf("beyond what Yaegi loads: %s", strings.Join(problems, "; "))
	}
	return nil
}

// catalogYaegiCheck follows piceus's yaegiMiddlewareCheck: an interpreter without the
// environment, the plugin imported, CreateConfig, testData decoded as Traefik decodes
// settings, New's signature checked, then New called with testData.
func catalogYaegiCheck(goPath string, m catalogManifest) (err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("panic from yaegi: %v", rec)
		}
	}()
	i := interp.New(interp.Options{GoPath: goPath})
	if err := i.Use(stdlib.Symbols); err != nil {
		return err
	}
	if _, err := i.Eval(fmt.Sprintf("import %q", m.Import)); err != nil {
		return fmt.Errorf("an error, inside the plugin, occurs during the load: %w", err)
	}
	basePkg := m.BasePkg
	if basePkg == "" {
		basePkg = strings.ReplaceAll(path.Base(m.Import), "-", "_")
	}
	vConfig, err := i.Eval(basePkg + ".CreateConfig()")
	if err != nil {
		return fmt.Errorf("failed to eval `CreateConfig` function: %w", err)
	}
	if err := decodeSettings(m.TestData, vConfig.Interface()); err != nil {
		return fmt.Errorf("plugin: failed to decode configuration: %w", err)
	}
	fnNew, err := i.Eval(basePkg + ".New")
	if err != nil {
		return fmt.Errorf("failed to eval `New` function: %w", err)
	}
	typ := fnNew.Type()
	if typ.NumIn() != 4 || typ.NumOut() != 2 || !typ.In(2).AssignableTo(vConfig.Type()) || typ.In(3).Kind() != reflect.String ||
		!typ.Out(0).Implements(reflect.TypeOf((*http.Handler)(nil)).Elem()) {
		return fmt.Errorf("the signature of the function `New` is invalid: %s", typ)
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	results := fnNew.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(next), vConfig, reflect.ValueOf("test")})
	if e := results[1].Interface(); e != nil {
		return fmt.Errorf("failed to create a new plugin instance: %v", e)
	}
	if _, ok := results[0].Interface().(http.Handler); !ok {
		return fmt.Errorf("invalid handler type: %T", results[0].Interface())
	}
	return nil
}

// TestCatalogChecks runs every check of the catalog on this tree.
func TestCatalogChecks(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	modulePath := modfile.ModulePath(gomod)
	goPath, dir := moduleTree(t, repo, modulePath)
	content, err := os.ReadFile(filepath.Join(dir, ".traefik.yml"))
	if err != nil {
		t.Fatalf("the module zip has no .traefik.yml: %v", err)
	}
	inRepo := func(rel string) bool {
		_, err := os.Stat(filepath.Join(repo, filepath.FromSlash(rel)))
		return err == nil
	}
	m, err := loadCatalogManifest(content, modulePath, inRepo)
	if err != nil {
		t.Fatalf(".traefik.yml: %v", err)
	}
	if err := checkModuleFile(gomod, m); err != nil {
		t.Errorf("go.mod: %v", err)
	}
	if err := checkImports(dir, modulePath); err != nil {
		t.Errorf("imports: %v", err)
	}
	if err := catalogYaegiCheck(goPath, m); err != nil {
		t.Errorf("failed to run the plugin with Yaegi: %v", err)
	}
}

// Each check fails on what the catalog refuses.
func TestCatalogChecksFail(t *testing.T) {
	good := catalogManifest{Import: "github.com/harbormirror/harbormirror"}
	before, err := os.ReadFile("testdata/go.mod.requiring-yaegi") // the go.mod before yaegitest existed
	if err != nil {
		t.Fatal(err)
	}
	if err := checkModuleFile(before, good); err == nil || !strings.Contains(err.Error(), "a plugin cannot have a dependence to: github.com/traefik/yaegi") {
		t.Errorf("the go.mod that required Yaegi: %v", err)
	}
	withOther := []byte("module github.com/harbormirror/harbormirror\n\ngo 1.22\n\nrequire github.com/mitchellh/mapstructure v1.5.0\n")
	if err := checkModuleFile(withOther, good); err == nil || !strings.Contains(err.Error(), "must require nothing") {
		t.Errorf("a go.mod with a requirement: %v", err)
	}
	plain := []byte("module github.com/harbormirror/harbormirror\n\ngo 1.22\n")
	if err := checkModuleFile(plain, catalogManifest{Import: "github.com/other/plugin"}); err == nil {
		t.Error("an import unrelated to the module passed")
	}

	valid := "displayName: D\ntype: middleware\nimport: example.com/p\nsummary: S\ntestData:\n  project: hub\n"
	none := func(string) bool { return false }
	if _, err := loadCatalogManifest([]byte(valid), "example.com/p", none); err != nil {
		t.Fatalf("a valid manifest: %v", err)
	}
	for name, content := range map[string]string{
		"no summary":      strings.Replace(valid, "summary: S\n", "", 1),
		"no displayName":  strings.Replace(valid, "displayName: D\n", "", 1),
		"no testData":     strings.Replace(valid, "testData:\n  project: hub\n", "", 1),
		"another type":    strings.Replace(valid, "middleware", "router", 1),
		"another import":  strings.Replace(valid, "example.com/p", "example.com/p/sub", 1),
		"a missing icon":  valid + "iconPath: .assets/none.png\n",
		"not YAML at all": "displayName: [",
	} {
		if _, err := loadCatalogManifest([]byte(content), "example.com/p", none); err == nil {
			t.Errorf("manifest with %s passed", name)
		}
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte("package p\n\nimport (\n\t\"net/http\"\n\t\"unsafe\"\n\t\"gopkg.in/yaml.v3\"\n)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkImports(dir, "example.com/p"); err == nil || !strings.Contains(err.Error(), "p.go imports unsafe") || !strings.Contains(err.Error(), "p.go imports gopkg.in/yaml.v3") || strings.Contains(err.Error(), "net/http") {
		t.Errorf("imports of unsafe and a third-party package: %v", err)
	}

	if err := catalogYaegiCheck(t.TempDir(), catalogManifest{Import: "example.com/missing"}); err == nil {
		t.Error("a plugin Yaegi cannot find loaded")
	}
}

// TestManifestTestData: the catalog's testData, decoded as the catalog decodes it, builds a
// working mirror compiled and under Yaegi: the Plugin Catalog's snippet for users is this data.
func TestManifestTestData(t *testing.T) {
	content, err := os.ReadFile("../.traefik.yml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadCatalogManifest(content, moduleName, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	for name, build := range map[string]build{"compiled": buildCompiled, "yaegi": buildYaegi} {
		var reached string
		handler, err := build(t, m.TestData, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = r.RequestURI }))
		if err != nil {
			t.Fatalf("%s: testData does not build: %v", name, err)
		}
		handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/owner/app/manifests/v1?ns=ghcr.io", nil))
		if reached != "/v2/ghcr/owner/app/manifests/v1" {
			t.Errorf("%s: testData mirror forwarded %q", name, reached)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("PUT", "/v2/x/manifests/v1", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: testData is readOnly, PUT got %d", name, rec.Code)
		}
	}
}
