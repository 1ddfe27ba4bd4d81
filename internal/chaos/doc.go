// Package chaos is jwtrevoke's failure suite: real servers in one process
// (a 3-node NATS cluster with JetStream, redis-server, the revoker, several
// verifier replicas), faults injected into them (node restarts, a TCP proxy
// that adds latency, resets connections or partitions a replica), one
// [History] of everything that happened, and [Check], which proves
// afterwards that no acknowledged revocation was lost or ignored.
//
// It is for tests only. The scenarios live in this package's tests; run the
// long version with
//
//	go test ./internal/chaos -run . -chaos.long
//
// and see docs/failure-testing.md for the matrix.
package chaos
