// Package verifier is the library every jwtrevoke backend embeds: it checks
// access tokens locally — no network call per request — and still honours a
// logout within milliseconds, because revocations arrive as events on a NATS
// JetStream stream and are kept in memory for exactly as long as they matter.
//
// # Use
//
//	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: "https://issuer.example/.well-known/jwks.json"})
//	if err != nil { ... }
//	v, err := verifier.New(verifier.Config{
//		Issuer:     "https://issuer.example",
//		Audiences:  []string{"api"},
//		Algorithms: []string{verifier.EdDSA},
//		Keys:       keys,      // or verifier.StaticKeys(...), or any KeySource
//		JetStream:  js,        // jetstream.New(natsConn)
//	})
//	if err != nil { ... }          // every config error surfaces here
//	go v.Run(ctx)                  // replay the stream, follow it, keep the JWKS fresh
//	mux.Handle("/readyz", v.ReadyHandler())
//	mux.Handle("/v1/", v.Middleware(verifier.MiddlewareConfig{})(api))
//
// In a handler, [ClaimsFromContext] returns the verified [Claims].
//
// A [Checker] ([NewChecker]) is the stateless half: keys and claims, no
// stream and no revocation state, for code that only inspects tokens. A
// [Verifier] is a Checker plus the revocation state and its feed.
//
// Outside identity providers: Config.Providers trusts further issuers, each
// with its own keys ([StaticKeys], a [JWKS], or [Discovery] from the
// provider's OpenID discovery document), audiences, algorithms and claim
// names. A [LogoutChecker] ([NewLogoutChecker]) checks a provider's OpenID
// Connect back-channel logout tokens on the same JWS steps; the revoker
// turns them into revocations scoped to the provider (docs/providers.md).
//
// # What Verify checks, in order
//
//  1. Size (Config.MaxTokenSize) before any parsing.
//  2. Header: alg in the explicit allow-list (never "none", never HMAC), a
//     short printable kid, no jku, x5u, jwk, x5c or crit — the verifier never
//     fetches a location a token names, and the key is chosen by kid from
//     keys given by configuration.
//  3. Signature, with the key's type matched to the alg.
//  4. Claims: exp (required), nbf, iat (required, not in the future), iss
//     (exact), aud (one of Config.Audiences), sub and jti (required), and
//     exp - iat at most Config.MaxTokenLifetime; then Config.Validate. An
//     outside provider's names for the session and the token id are
//     Config.SessionClaim and Config.TokenIDClaim (Entra ID: uti);
//     Config.TokenIDOptional accepts tokens with none (docs/providers.md).
//  5. Only then revocation: the signing key, the jti, the session (sid), and
//     the subject's logout epoch (a token whose iat is not after the epoch
//     is revoked; iat and epochs compare to the nanosecond).
//
// A token seen before skips steps 1-4 (a verified-token cache keyed by the
// whole token), never its expiry or step 5.
//
// # Errors
//
// Every error wraps [ErrInvalidToken] (the token is bad: 401) or
// [ErrUnavailable] (cannot decide now: 503, retry), and one precise reason
// such as [ErrSessionRevoked] or [ErrStale]; [Reason] gives its short code.
// The verifier fails closed: before the stream is replayed ([ErrNotReady]),
// when the state may be older than Config.MaxStaleness ([ErrStale], unless
// Config.StalePolicy says otherwise), and when more revocations are live
// than Config.Capacity ([ErrOverCapacity]) it never accepts a token it
// cannot vouch for.
//
// # Revocation state
//
// Events are applied monotonically: the union of revoked ids and the
// maximum of epochs, so duplicates, replays and reordering change nothing
// and no event can un-revoke a token. Each revocation leaves memory by
// itself once every token it affects has expired: a jti at its token's exp
// plus leeway, a session and a subject epoch after MaxTokenLifetime plus
// leeway, a key never. The memory is a ristretto cache used with care: every
// write is checked and repaired, a stream position is recorded as applied
// only once its writes are visible, entries are counted not weighed, and a
// revocation lost to capacity makes the verifier fail closed and say so in
// [Verifier.Health] and metrics.
//
// # Observability
//
// OpenTelemetry metrics (Config.MeterProvider): jwtrevoke.verifier.verifications
// by outcome and reason, events.applied, events.rejected, propagation.lag,
// revocations.held, capacity.used, capacity.exceeded, staleness,
// replay.duration, ready. Applying an event continues the trace carried in
// its NATS headers (Config.TracerProvider).
package verifier
