package verifier

import "github.com/jwtrevoke/jwtrevoke/internal/keyset"

// StaticKeys returns a [KeySource] of fixed public keys, from configuration.
// It validates every key (kids unique and non-empty, supported types, an
// Algorithm matching its key type, RSA of 2048 to 8192 bits). It is ready
// at once.
func StaticKeys(keys ...Key) (KeySource, error) {
	s, err := keyset.NewStatic(keys...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// JWKS is a [KeySource] that fetches a JSON Web Key Set from the URL it is
// configured with (never from a token) and caches it; an unknown kid
// triggers a rate-limited refetch. It is ready after its first successful
// fetch. Its Run method keeps it fresh; [Verifier.Run] runs it, and a
// [Checker]'s user runs it.
type JWKS = keyset.Remote

// JWKSConfig configures a [JWKS]: URL (https, or http on a loopback host
// unless InsecureAllowHTTP, which MUST NOT be set in production: keys
// fetched in clear text can be replaced by anyone on the path), refresh
// intervals, body bound, clock and logger.
type JWKSConfig = keyset.RemoteConfig

// NewJWKS validates cfg and returns a [JWKS]. It does not fetch: run it.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) { return keyset.NewRemote(cfg) }

// Discovery is a [KeySource] for an OpenID provider: its JWKS URL is the
// jwks_uri of the discovery document below the configured issuer
// (Issuer + "/.well-known/openid-configuration", never from a token), which
// must name that issuer exactly. It is ready once the document was read and
// the key set fetched; its Run reads the document, retrying until the
// provider answers, then keeps the key set fresh as a [JWKS] does.
type Discovery = keyset.Discovery

// DiscoveryConfig configures a [Discovery]: the issuer, and the settings of
// the key set it finds (every [JWKSConfig] field but URL).
type DiscoveryConfig = keyset.DiscoveryConfig

// NewDiscovery validates cfg and returns a [Discovery]. It does not fetch:
// run it.
func NewDiscovery(cfg DiscoveryConfig) (*Discovery, error) { return keyset.NewDiscovery(cfg) }
