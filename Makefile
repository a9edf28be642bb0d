# The README's commands. Each target's work lives in scripts/ or e2e/; this file only names it.
# `make` alone prints the list below (make help); nothing is installed or built without a target.
# Needs Go 1.26 or later (the e2e module's go.mod); Debian 12's own golang (1.19) is too old.
.DEFAULT_GOAL := help

# make help: every target, with the variables it reads, from the "##" lines of this file.
.PHONY: help
help:
	@echo 'Targets (variables in parentheses; see README.md "Commands"):'
	@sed -n 's/^## \{0,1\}/  /p' $(MAKEFILE_LIST)

## test           every test of every module, as CI runs it (GO_TEST_FLAGS, HARBORMIRROR_SKIP_CLIENTS).
##                As root on Debian it first installs dockerd, containerd, podman, skopeo, wrk, nginx,
##                PostgreSQL, Redis;
##                it builds Traefik v3.6.12 and real Harbor v2.15.2 once (cached; README "Commands").
.PHONY: test bench
test:
	scripts/test

## bench          Go benchmarks of the per-request work, compiled and under Yaegi (yaegitest/);
##                writes bench/results/gobench-latest.txt and their table in README.md (BENCH_COUNT=5).
BENCH_COUNT ?= 5
bench:
	@mkdir -p bench/results && cd yaegitest && \
	{ echo "loadavg: $$(cat /proc/loadavg)"; go test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m .; \
	  echo "loadavg: $$(cat /proc/loadavg)"; } | tee ../bench/results/gobench-latest.txt && \
	grep -q '^ok' ../bench/results/gobench-latest.txt && \
	cd ../e2e && go run ./cmd/benchtable -in ../bench/results/gobench-latest.txt -readme ../README.md

## bench-compare  BenchmarkYaegi, its floors and the heap on BASE (default main) and this tree, in
##                alternating rounds (COUNT=6), compared by benchstat; bench/results/compare-*.txt.
.PHONY: bench-compare
BASE ?= main
COUNT ?= 6
bench-compare:
	scripts/bench-compare $(BASE) $(COUNT)

## check-catalog  the Plugin Catalog's checks (traefik/piceus) on this tree: .traefik.yml, go.mod,
##                imports, the plugin loaded by Yaegi from its module zip with testData (also in test).
.PHONY: check-catalog
check-catalog:
	cd yaegitest && go test -count=1 -run '^(TestCatalogChecks|TestCatalogChecksFail|TestManifestTestData)$$' -v .

## demo           a local demo on loopback, no internet: Traefik + harbormirror in front of real
##                Harbor v2.15.2 (a "hub" proxy-cache project of a local upstream registry); pulls
##                hello through the mirror and runs until Ctrl-C (DEMO_LISTEN=127.0.0.1:5000 the
##                mirror, DEMO_HARBOR=127.0.0.1:5001 Harbor's nginx, DEMO_API=127.0.0.1:5002
##                Traefik's API, DEMO_FLAGS e.g. -once, HARBORMIRROR_TRAEFIK, HARBORMIRROR_HARBOR_BUILD).
# A local demo, no internet needed: a local upstream registry holding library/hello, real Harbor
# v2.15.2 (PostgreSQL, Redis, Harbor's registry, core, jobservice, Harbor's nginx; e2e/realharbor)
# with a "hub" proxy-cache project of it, and Traefik with the plugin in front of Harbor's nginx,
# all on loopback. It pulls hello through the mirror, prints each request as the client sent it
# and as Harbor received it, prints the Docker/containerd/podman configuration, and runs until
# Ctrl-C, then stops every process and removes its temp dirs. As root on Debian it first installs
# PostgreSQL, Redis, nginx, htpasswd and skopeo (scripts/install-test-deps --demo); Traefik and
# Harbor are built once and cached (scripts/build-traefik, scripts/build-harbor; README "Commands").
# DEMO_FLAGS="-once" pulls, checks the pull went through the plugin to Harbor and its upstream,
# and exits 0 or 1 (TestDemoOnce runs it so in make test).
# Ports: make demo DEMO_LISTEN=127.0.0.1:5050 DEMO_HARBOR=127.0.0.1:5051 DEMO_API=127.0.0.1:5052
.PHONY: demo
DEMO_LISTEN ?= 127.0.0.1:5000
DEMO_HARBOR ?= 127.0.0.1:5001
DEMO_API ?= 127.0.0.1:5002
DEMO_FLAGS ?=
demo:
	@scripts/install-test-deps --demo && \
	traefik="$${HARBORMIRROR_TRAEFIK:-$$(scripts/build-traefik)}" && \
	harbor="$${HARBORMIRROR_HARBOR_BUILD:-$$(scripts/build-harbor)}" && \
	echo "make demo: building e2e/cmd/demo" >&2 && \
	cd e2e && go build -o ../.cache/demo/demo ./cmd/demo && \
	exec ../.cache/demo/demo -traefik "$$traefik" -harbor-build "$$harbor" -repo "$(CURDIR)" \
		-listen $(DEMO_LISTEN) -harbor $(DEMO_HARBOR) -api $(DEMO_API) $(DEMO_FLAGS)

## loadbench      the load benchmark: registry, Traefik alone, the two Yaegi floors, Traefik + harbormirror,
##                nginx; ~20 min; writes bench/results/ and README.md's table (LOADBENCH_FLAGS, HARBORMIRROR_TRAEFIK).
# The load benchmark of issues #5 and #14 (e2e/cmd/loadbench, bench/README.md): the registry
# directly, Traefik alone (replacePathRegex), the same with an empty Yaegi plugin and with a
# one-method ResponseWriter wrapper (yaegitest/testdata/floorplugins), Traefik + harbormirror and
# the nginx recipe, alternated in rounds, servers pinned to one core and the load generators to
# the other. ~20 min; writes bench/results/<date>-<machine>.{md,json} and latest.md.
# Flags: make loadbench LOADBENCH_FLAGS="-quick" (or "-rounds 7 -duration 4s", "-profile=false").
.PHONY: loadbench
LOADBENCH_FLAGS ?=
loadbench:
	@scripts/install-test-deps && \
	traefik="$${HARBORMIRROR_TRAEFIK:-$$(scripts/build-traefik)}" && \
	cd e2e && go build -o ../.cache/loadbench/loadbench ./cmd/loadbench && \
	exec ../.cache/loadbench/loadbench -traefik "$$traefik" -repo "$(CURDIR)" $(LOADBENCH_FLAGS)

## load           LOAD_PULLS concurrent pulls, LOAD_LARGE of them of 50 MiB; ~2 min; bench/soak/ (LOAD_FLAGS).
## soak           SOAK_RATE pulls a minute for SOAK_DURATION, memory sampled; ~12 min (SOAK_FLAGS).
# Load and soak runs through Traefik + harbormirror (issue #6; e2e/cmd/soak): go-containerregistry
# pulls in front of the fake Harbor's proxy-cache project, every digest of every pull verified,
# Traefik's resident memory (VmRSS, VmHWM) and goroutines (api.debug) sampled. Benchmarks with a
# report, not assertions: bench/soak/load-latest.md, bench/soak/soak-latest.md (also printed).
# make load: LOAD_PULLS pulls all at once (200), LOAD_LARGE of them of the 50 MiB image; ~2 min.
# make soak: SOAK_RATE pulls per minute for SOAK_DURATION, samples every 10 s; ~12 min.
# More flags: make load LOAD_FLAGS="-keep -load-sample 100ms"; see e2e/cmd/soak.
.PHONY: load soak
LOAD_PULLS ?= 200
LOAD_LARGE ?= 20
LOAD_FLAGS ?=
SOAK_RATE ?= 60
SOAK_DURATION ?= 10m
SOAK_FLAGS ?=
load:
	@traefik="$${HARBORMIRROR_TRAEFIK:-$$(scripts/build-traefik)}" && \
	cd e2e && go build -o ../.cache/soak/soak ./cmd/soak && \
	exec ../.cache/soak/soak -mode load -traefik "$$traefik" -repo "$(CURDIR)" -invoked-as "make load" \
		-pulls $(LOAD_PULLS) -large $(LOAD_LARGE) $(LOAD_FLAGS)
soak:
	@traefik="$${HARBORMIRROR_TRAEFIK:-$$(scripts/build-traefik)}" && \
	cd e2e && go build -o ../.cache/soak/soak ./cmd/soak && \
	exec ../.cache/soak/soak -mode soak -traefik "$$traefik" -repo "$(CURDIR)" -invoked-as "make soak" \
		-rate $(SOAK_RATE) -duration $(SOAK_DURATION) $(SOAK_FLAGS)
