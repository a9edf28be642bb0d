module github.com/harbormirror/harbormirror

go 1.22

require (
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c
	github.com/traefik/yaegi v0.16.1
)

require gopkg.in/yaml.v3 v3.0.1
