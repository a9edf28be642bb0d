// Package yaegitest holds the plugin's tests and benchmarks that need more than the standard
// library: Traefik's settings decoder (mapstructure) and interpreter (Yaegi). It is a module of
// its own so that the plugin's go.mod requires nothing, as Traefik's plugin catalog demands
// (traefik/piceus refuses a plugin module that requires github.com/traefik/yaegi). Every
// exchange table here runs twice from one source: compiled (buildCompiled) and interpreted by
// Yaegi as Traefik v3.6 loads the plugin (buildYaegi).
package yaegitest
