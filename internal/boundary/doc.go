// Package boundary is test support for the plugin boundary, shared by the plugin's own tests and
// yaegitest (a module of its own, which Go's internal rule lets import it): the exchange tables
// with their runner (RunExchanges, RunEveryTable) and the tiers' differential (RunTiersAgree,
// FuzzTiers), each given a Build that makes the middleware compiled or under Yaegi, with its
// lanes or without.
//
// The plugin never imports it, so neither Traefik nor the Plugin Catalog loads it, although it
// ships in the module zip. It imports only the standard library and rewrite, so that the
// catalog check of every file's imports (yaegitest/catalog_test.go) still holds.
package boundary
