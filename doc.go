// Package harbormirror is a Traefik middleware plugin that serves a Harbor project as the root of
// a registry host: a Docker Hub proxy-cache project becomes usable as a Docker registry-mirrors
// entry, a containerd or podman mirror, or a plain registry host. The rewriting rules live in the
// rewrite package (their grammar in rewrite/grammar.go); this package glues them to net/http:
// config.go reads the options and builds a Mirror from them once, plugin.go maps requests,
// and response.go and catalogpage.go rewrite Harbor's answers.
//
// A request takes the first of three tiers that maps it, each named so throughout: a lane
// (rewrite/lane.go; forwardLanePull and forwardLaneToken: one regexp over the whole request target
// for the common pull requests, and laneChallenge for Harbor's challenge to them), the pull path
// (rewrite/pull.go; pullPath and tokenPullPath: MapPull and MapTokenPull, one regexp over a parsed
// path or query), and the general path (generalPath and generalTokenPath: MapRequest and
// MapTokenRequest, and on the way back the general rules: Challenge, ErrorBody and the others).
// Where a lane or the pull path answers, the general path answers the same: TestTiersAgree and
// FuzzTiers (tiers_test.go) check it at the plugin boundary.
//
// The response rules read one record of the client's request, its request target as received
// (responseWriter.in, as httputil.ProxyRequest keeps In). The general path fills in the exchange
// (rewrite.Exchange) as it maps; after a lane or the pull path, fillExchange fills it from that
// record (rewrite.FillPull) only when a response needs it.
//
// # Written for Yaegi
//
// Traefik v3.6.12 runs plugins in Yaegi v0.16.1, an interpreter, and that shapes the code of this
// package and of rewrite. The code imports the standard library only (Yaegi loads nothing else)
// and uses no generics, reflection, unsafe or cgo. What Yaegi v0.16.1 does, and what the code does
// about it (bench/README.md, "How the per-request code is shaped for Yaegi", has the measurements):
//
// Speed: every local and every intermediate value of an interpreted function is allocated on each
// call, whether its branch runs or not. So per-request functions are small and hold only what
// their own request needs; rare branches live in functions of their own.
//
// Speed: a method call costs several times a function call, any call about a microsecond, and
// each call into compiled code about five allocations. So the per-request code is plain functions
// taking the Mirror or the writer, hot paths are written out rather than shared, and the work is
// done by few compiled calls: a regexp (rewrite/grammar.go) or strings.Replacer does what an
// interpreted loop over bytes would do at a hundred times the cost.
//
// Speed: a tuple assignment allocates a temporary per value, and a constant of another package
// costs an allocation where it is used. So the lanes assign one value per statement and use
// constants of this package (maxLaneTarget, maxLaneHost).
//
// Speed: an interpreted Write on a response wrapper costs about 1.4 µs and 18 allocations per
// call, paid on every 32 KiB of a blob. So the wrapper's Write and Header are promoted from the
// embedded writer, which Yaegi calls compiled.
//
// Memory: Yaegi holds every file and function of the plugin for the life of Traefik; on
// 2026-12-07 a file of its own cost BenchmarkYaegiHeap about 7 KiB and a small function about 5.
// So the package has few files, and a helper called once is written where it is used unless a
// speed rule keeps it apart.
//
// Correctness: a tuple assigned into a map or slice index (m[k], ok = f()), or a call's value in
// a tuple assignment of several values, is dropped. So such results go through a local first.
//
// Correctness: an interpreted function used as a value (a closure, a method value) and handed to
// compiled code races on its first concurrent calls. So the code switches on a key instead of
// passing functions, uses sort.SearchStrings rather than sort.Search, and sets no GetBody.
//
// Correctness: a call's result passed straight to compiled code loses its interface wrapper, and
// reflect panics. So such a result is put into a local first.
//
// Correctness: Traefik's compiled proxy cannot see the http.Flusher or http.Hijacker of an
// interpreted response wrapper (traefik#10269): its Flush is never called. So a response without
// Content-Length is flushed from the wrapper's Write.
//
// Each place that does one of these things says so in a comment starting "Yaegi (speed):" or
// "Yaegi (correctness):". A speed one may be tidied if the benchmarks (yaegitest, BenchmarkYaegi)
// show it costs nothing; a correctness one must stay while Traefik ships this Yaegi: the compiled
// tests cannot see it, and yaegitest only where it happens to hit it (some are races).
package harbormirror
