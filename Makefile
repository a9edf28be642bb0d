# The README's commands. Each target's work lives in scripts/ or e2e/; this file only names it.
.PHONY: test bench

# Every test of both modules, as CI runs it (installs the Debian clients, builds Traefik once).
test:
	scripts/test

# The Go benchmarks of the per-request work, compiled and under Yaegi.
bench:
	go test -run '^$$' -bench . -benchmem -count 5 .

# A local demo, no internet needed: a fake Docker Hub, a fake Harbor with a "hub" proxy-cache
# project and Traefik with the plugin in front of it, on loopback. It pulls hello through the
# mirror, prints each request as the client sent it and as Harbor received it, prints the
# Docker/containerd/podman configuration, and runs until Ctrl-C. Traefik is built once
# (~10 min cold) and cached by scripts/build-traefik; HARBORMIRROR_TRAEFIK names another binary.
# Ports: make demo DEMO_LISTEN=127.0.0.1:5050 DEMO_HARBOR=127.0.0.1:5051 DEMO_API=127.0.0.1:5052
.PHONY: demo
DEMO_LISTEN ?= 127.0.0.1:5000
DEMO_HARBOR ?= 127.0.0.1:5001
DEMO_API ?= 127.0.0.1:5002
DEMO_FLAGS ?=
demo:
	@traefik="$${HARBORMIRROR_TRAEFIK:-$$(scripts/build-traefik)}" && \
	cd e2e && go build -o ../.cache/demo/demo ./cmd/demo && \
	exec ../.cache/demo/demo -traefik "$$traefik" -repo "$(CURDIR)" \
		-listen $(DEMO_LISTEN) -harbor $(DEMO_HARBOR) -api $(DEMO_API) $(DEMO_FLAGS)
