package keyset

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// rsaKeys caches generated RSA keys by size: generating them is slow under
// -race, and the keys are never modified.
var rsaKeys = struct {
	mu     sync.Mutex // guards byBits
	byBits map[int][]*rsa.PrivateKey
}{byBits: map[int][]*rsa.PrivateKey{}}

// newRSAKey returns the n-th RSA key of the given size, generating it once.
func newRSAKey(tb testing.TB, bits, n int) *rsa.PrivateKey {
	tb.Helper()
	rsaKeys.mu.Lock()
	defer rsaKeys.mu.Unlock()
	for len(rsaKeys.byBits[bits]) <= n {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			tb.Fatalf("generate rsa %d: %v", bits, err)
		}
		rsaKeys.byBits[bits] = append(rsaKeys.byBits[bits], k)
	}
	return rsaKeys.byBits[bits][n]
}

func newEd25519Key(tb testing.TB) ed25519.PublicKey {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

func newECKey(tb testing.TB, c elliptic.Curve) *ecdsa.PublicKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &k.PublicKey
}

// jwksOf marshals keys with MarshalJWKS, failing the test on error.
func jwksOf(tb testing.TB, keys ...Key) []byte {
	tb.Helper()
	b, err := MarshalJWKS(keys...)
	if err != nil {
		tb.Fatalf("MarshalJWKS: %v", err)
	}
	return b
}

// jwkMaps returns the keys of a marshalled set as generic maps, for tests
// that edit members.
func jwkMaps(tb testing.TB, keys ...Key) []map[string]any {
	tb.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwksOf(tb, keys...), &set); err != nil {
		tb.Fatal(err)
	}
	return set.Keys
}

// setOf encodes maps as a JWKS document.
func setOf(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// with returns a copy of m with the given members set (nil deletes).
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		name := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, name)
			continue
		}
		out[name] = kv[i+1]
	}
	return out
}

// fakeClock is a settable clock for RemoteConfig.Now.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
