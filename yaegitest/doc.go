// Package yaegitest holds the plugin's tests and benchmarks that need more than the standard
// library: Traefik's settings decoder (mapstructure) and interpreter (Yaegi). It is a module of
// its own so that the plugin's go.mod requires nothing, as Traefik's plugin catalog demands
// (traefik/piceus refuses a plugin module that requires github.com/traefik/yaegi). Every
// exchange table (internal/boundary, shared with the plugin's own tests) runs from one source
// compiled (buildCompiled) and interpreted by Yaegi as Traefik v3.6 loads the plugin (buildYaegi),
// and without the lanes under Yaegi (boundary_test.go; the plugin's tiers_test.go compiled).
package yaegitest
