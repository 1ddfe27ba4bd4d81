// Package verifiertest provides test doubles for code that embeds package
// verifier: a token issuer with its own JWKS server ([Issuer]) and an
// in-process NATS JetStream server to publish revocations on ([RunJetStream]).
//
// It is for tests only and MUST NOT be used in production: keys are
// generated per test and kept in memory, servers listen on loopback without
// TLS, and helpers fail the test through testing.TB instead of returning
// errors. Everything it starts is stopped by the test's Cleanup.
//
// A typical test:
//
//	iss := verifiertest.NewIssuer(t)
//	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: iss.JWKSURL()})
//	v, err := verifier.New(verifier.Config{Keys: keys, Issuer: iss.Issuer(), ...})
//	token := iss.Token(t, verifiertest.TokenOptions{Subject: "alice"})
//	claims, err := v.Verify(ctx, token)
package verifiertest
