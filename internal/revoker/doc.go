// Package revoker is jwtrevoke's revoker: the only publisher of revocation
// events. Its [Server] serves
//
//	POST /v1/revocations  revoke a token (by jti and exp, or the token
//	                      itself), a session, a subject, a signing key, an
//	                      epoch scope (a claim's value) or a whole issuer;
//	                      answers 201 {"id","seq"} only after the
//	                      JetStream stream acknowledged the event
//	POST /oauth2/introspect  RFC 7662, revocation-aware, for services that
//	                      cannot embed the verifier
//	GET  /healthz, /readyz, /metrics
//
// A revocation is validated, recorded in Redis (internal/store, so it can be
// looked up without the stream), then published (pkg/events). Every step is
// idempotent or monotonic, so a request that failed half-way (503) is
// finished by a retry with the same Idempotency-Key, which republishes the
// very same event (same id: the stream stores it once).
//
// Introspection and revocation by token check a token with a
// verifier.Checker (keys and claims) and its revocation against the Redis
// records, not with a stream-fed verifier: every revocation is recorded
// before it is published, so the records hold all the stream does and what
// the outbox has yet to deliver (docs/operations.md, "Who reads what").
//
// The package also holds the HTTP [Client] other services use to call the
// revoker, and [NewRedisFallback], the verifier fallback that answers from
// the Redis records while a verifier's stream state is too stale.
package revoker
