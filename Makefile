# The README's commands. Each target's work lives in scripts/ or e2e/; this file only names it.
.PHONY: test bench

# Every test of both modules, as CI runs it (installs the Debian clients, builds Traefik once).
test:
	scripts/test

# The Go benchmarks of the per-request work, compiled and under Yaegi.
bench:
	go test -run '^$$' -bench . -benchmem -count 5 .
