module github.com/harbormirror/harbormirror/yaegitest

go 1.24.0

// The plugin from this repository: the tests load its sources from ../ (compiled through this
// replace, interpreted by Yaegi from a GOPATH that points at ../).
replace github.com/harbormirror/harbormirror => ../

require (
	github.com/harbormirror/harbormirror v0.0.0
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c
	github.com/traefik/paerser v0.2.2
	github.com/traefik/yaegi v0.16.1
	golang.org/x/mod v0.32.0
	gopkg.in/yaml.v3 v3.0.1
)

require github.com/BurntSushi/toml v1.4.0 // indirect
