module github.com/harbormirror/harbormirror/yaegitest

go 1.22

// The plugin from this repository: the tests load its sources from ../ (compiled through this
// replace, interpreted by Yaegi from a GOPATH that points at ../).
replace github.com/harbormirror/harbormirror => ../

require (
	github.com/harbormirror/harbormirror v0.0.0
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c
	github.com/traefik/yaegi v0.16.1
	gopkg.in/yaml.v3 v3.0.1
)
