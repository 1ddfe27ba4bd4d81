// Package keyset holds the public keys that JWT signatures are verified
// with: a fixed set given at start ([Static]) or a JSON Web Key Set fetched
// from a configured URL and kept fresh ([Remote]).
//
// Security: this package only ever fetches the URL it is configured with. It
// MUST NOT be handed a URL taken from a token (the jku and x5u header
// parameters); the verifier refuses such tokens before a key is looked up.
//
// Only three signature algorithms are supported, each bound to one key type:
// EdDSA (Ed25519), ES256 (ECDSA P-256) and RS256 (RSA, at least 2048 bits).
package keyset

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors returned by a [Source]. Callers tell a bad token (ErrUnknownKey,
// answer 401) from a verifier that cannot decide now (ErrKeysUnavailable,
// answer 503) with errors.Is.
var (
	// ErrUnknownKey means no key with the token's kid is known, after the
	// source did what it could to learn new keys. The token is bad.
	ErrUnknownKey = errors.New("verifier: unknown signing key")
	// ErrKeysUnavailable means the source has never obtained a key set, so it
	// cannot tell whether the kid exists. The cause is wrapped as well.
	ErrKeysUnavailable = errors.New("verifier: signing keys unavailable")
)

// Configuration and input errors, for errors.Is.
var (
	// ErrInvalidKey means a key given to [NewStatic] (or found in a JWKS) is
	// malformed, of an unsupported type, too weak, or inconsistent with its
	// algorithm.
	ErrInvalidKey = errors.New("keyset: invalid key")
	// ErrInvalidJWKS means a JSON Web Key Set document was rejected as a whole.
	ErrInvalidJWKS = errors.New("keyset: invalid jwks")
	// ErrInvalidConfig means a [RemoteConfig] was rejected by [NewRemote].
	ErrInvalidConfig = errors.New("keyset: invalid configuration")
)

// JWS algorithm names supported by this package.
const (
	AlgEdDSA = "EdDSA" // Ed25519 (RFC 8037)
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
)

// RSA modulus size bounds, in bits. The upper bound keeps a hostile key set
// from making every verification expensive.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// Key is one public verification key.
type Key struct {
	// ID is the key id (the JWS "kid"). Never empty in a validated key.
	ID string
	// Algorithm is the JWS algorithm this key may verify: "EdDSA", "ES256"
	// or "RS256". Empty means any algorithm compatible with the key type
	// (of which there is exactly one for each supported type).
	Algorithm string
	// Public is an ed25519.PublicKey, a *ecdsa.PublicKey on P-256, or a
	// *rsa.PublicKey of at least [MinRSABits] bits.
	Public crypto.PublicKey
}

// AllowsAlgorithm reports whether a token whose header names alg may be
// verified with k: alg must be the one algorithm matching k's key type, and
// equal k.Algorithm when that is set. A verifier MUST call it before checking
// a signature, so that a key is never used with an algorithm it was not
// published for.
func (k Key) AllowsAlgorithm(alg string) bool {
	want, err := algorithmFor(k.Public)
	if err != nil || alg != want {
		return false
	}
	return k.Algorithm == "" || k.Algorithm == alg
}

// Source looks up verification keys by kid. Implementations are safe for
// concurrent use.
type Source interface {
	// Key returns the key with the given kid. It returns an error wrapping
	// [ErrUnknownKey] when the kid is not known, or [ErrKeysUnavailable] when
	// the source cannot decide now.
	Key(ctx context.Context, kid string) (Key, error)
	// Ready returns a channel closed once the source can answer Key
	// (static keys: at once; a JWKS: after its first successful fetch).
	Ready() <-chan struct{}
}

// closed is a channel closed from the start: the readiness of a source
// that is always ready.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Static is a fixed set of keys. It is safe for concurrent use; it is never
// modified after [NewStatic] returns.
type Static struct {
	keys map[string]Key
}

var (
	_ Source = (*Static)(nil)
	_ Source = (*Remote)(nil)
)

// NewStatic returns a [Static] source holding keys. It validates every key:
// kids are non-empty and unique, key types are supported, an Algorithm set
// on a key matches its type, and RSA moduli are between [MinRSABits] and
// [MaxRSABits] bits. Errors wrap [ErrInvalidKey].
func NewStatic(keys ...Key) (*Static, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys given", ErrInvalidKey)
	}
	s := &Static{keys: make(map[string]Key, len(keys))}
	for i, k := range keys {
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("keyset: key %d: %w", i, err)
		}
		if _, dup := s.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate kid %s", ErrInvalidKey, quoteKID(k.ID))
		}
		s.keys[k.ID] = k
	}
	return s, nil
}

// Ready implements [Source]: static keys are ready at once.
func (s *Static) Ready() <-chan struct{} { return closed }

// Key returns the key with the given kid, or an error wrapping
// [ErrUnknownKey]. It never blocks.
func (s *Static) Key(_ context.Context, kid string) (Key, error) {
	k, ok := s.keys[kid]
	if !ok {
		return Key{}, unknownKey(kid)
	}
	return k, nil
}

// validate checks k as described on [NewStatic]. Errors wrap ErrInvalidKey.
func (k Key) validate() error {
	if k.ID == "" {
		return fmt.Errorf("%w: empty kid", ErrInvalidKey)
	}
	want, err := algorithmFor(k.Public)
	if err != nil {
		return fmt.Errorf("kid %s: %w", quoteKID(k.ID), err)
	}
	if k.Algorithm != "" && k.Algorithm != want {
		return fmt.Errorf("%w: kid %s: algorithm %q does not match key type (want %s)",
			ErrInvalidKey, quoteKID(k.ID), truncate(k.Algorithm), want)
	}
	return nil
}

// algorithmFor returns the JWS algorithm for a supported, well-formed public
// key, or an error wrapping ErrInvalidKey.
func algorithmFor(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: ed25519 key of %d bytes", ErrInvalidKey, len(p))
		}
		return AlgEdDSA, nil
	case *ecdsa.PublicKey:
		if p == nil || p.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ecdsa key not on P-256", ErrInvalidKey)
		}
		// Bytes and ParseUncompressedPublicKey reject points that are
		// invalid, off the curve or at infinity.
		b, err := p.Bytes()
		if err != nil {
			return "", fmt.Errorf("%w: ecdsa: %w", ErrInvalidKey, err)
		}
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil {
			return "", fmt.Errorf("%w: ecdsa: %w", ErrInvalidKey, err)
		}
		return AlgES256, nil
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return "", fmt.Errorf("%w: rsa key without modulus", ErrInvalidKey)
		}
		if bits := p.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return "", fmt.Errorf("%w: rsa modulus of %d bits (want %d to %d)",
				ErrInvalidKey, bits, MinRSABits, MaxRSABits)
		}
		if p.E < 3 || p.E%2 == 0 {
			return "", fmt.Errorf("%w: rsa public exponent %d", ErrInvalidKey, p.E)
		}
		return AlgRS256, nil
	case nil:
		return "", fmt.Errorf("%w: no public key", ErrInvalidKey)
	default:
		return "", fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, pub)
	}
}

// unknownKey returns an error wrapping ErrUnknownKey that names kid safely.
func unknownKey(kid string) error {
	return fmt.Errorf("%w: kid %s", ErrUnknownKey, quoteKID(kid))
}

// maxKIDInError bounds how much of a kid, which may come from an untrusted
// token, is ever copied into an error message.
const maxKIDInError = 40

// quoteKID quotes kid for an error message, cut to maxKIDInError bytes.
func quoteKID(kid string) string {
	return fmt.Sprintf("%q", truncate(kid))
}

// truncate cuts s to at most maxKIDInError bytes on a rune boundary, marking
// the cut with "...".
func truncate(s string) string {
	if len(s) <= maxKIDInError {
		return s
	}
	cut := maxKIDInError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
