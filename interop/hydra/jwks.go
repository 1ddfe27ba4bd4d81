package hydra

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// JWK is one key of Hydra's JWKS as served.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKS fetches Hydra's public keys (the ID token set, which also signs
// back-channel logout tokens, and the access token set).
func (h *Hydra) JWKS(t testing.TB) []JWK {
	t.Helper()
	var set struct {
		Keys []JWK `json:"keys"`
	}
	if err := h.getJSON(context.Background(), h.JWKSURL(), &set); err != nil {
		t.Fatalf("fetching JWKS: %v", err)
	}
	return set.Keys
}

// Keyfunc fetches the JWKS now and returns a jwt.Keyfunc that finds an RSA
// key by the token's kid, refusing a kid not in the set or an alg that the
// key does not declare.
func (h *Hydra) Keyfunc(t testing.TB) jwt.Keyfunc {
	t.Helper()
	keys := map[string]*rsa.PublicKey{}
	algs := map[string]string{}
	for _, k := range h.JWKS(t) {
		if k.Kty != "RSA" {
			continue
		}
		pub, err := k.rsaPublicKey()
		if err != nil {
			t.Fatalf("JWKS key %s: %v", k.Kid, err)
		}
		keys[k.Kid], algs[k.Kid] = pub, k.Alg
	}
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		pub, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q not in Hydra's JWKS", kid)
		}
		if alg := algs[kid]; alg != "" && alg != tok.Method.Alg() {
			return nil, fmt.Errorf("kid %q is a %s key, token says %s", kid, alg, tok.Method.Alg())
		}
		return pub, nil
	}
}

func (k JWK) rsaPublicKey() (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	if len(n) == 0 || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("malformed modulus or exponent")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}
