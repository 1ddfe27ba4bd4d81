// Package interop holds tests that run jwtrevoke's pieces against real
// third-party systems (Ory Hydra, built by build-hydra.sh). It is a module of
// its own so that the main module's `go test ./...` never sees it; run it with
// `make interop`.
package interop
