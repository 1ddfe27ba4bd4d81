package verifier

import (
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/dgraph-io/ristretto/v2/z"
)

// tokenCache remembers tokens whose signature and claims verified, so a token
// seen again skips parsing and the signature check. It never skips the expiry
// or revocation checks, which the caller runs on every hit.
//
// Keys are the whole compact token; ristretto keeps two independent 64-bit
// hashes of it, and the entry keeps the token itself, compared on every hit,
// so two different tokens can never share an entry. Losing an entry (a
// dropped Set, an eviction) only costs one more signature check.
//
// A tokenCache is safe for concurrent use; a nil one caches nothing.
type tokenCache struct {
	c *ristretto.Cache[string, *Claims]
}

// entryOverhead approximates the bytes an entry costs beyond the token
// itself (Claims, strings, ristretto's bookkeeping).
const entryOverhead = 400

func newTokenCache(maxBytes int64) (*tokenCache, error) {
	entries := maxBytes / (entryOverhead + 600)
	c, err := ristretto.NewCache(&ristretto.Config[string, *Claims]{
		NumCounters: max(10*entries, 1000),
		MaxCost:     maxBytes,
		BufferItems: 64,
		KeyToHash: func(k string) (uint64, uint64) {
			return z.MemHashString(k), xxhash.Sum64String(k)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("verifier: token cache: %w", err)
	}
	return &tokenCache{c: c}, nil
}

// get returns the cached claims of raw, if any.
func (t *tokenCache) get(raw string) (*Claims, bool) {
	if t == nil {
		return nil, false
	}
	c, ok := t.c.Get(raw)
	if !ok || c.raw != raw {
		return nil, false
	}
	return c, true
}

// add caches c for raw until its expiry as seen from notBefore (now minus
// leeway). A dropped add is harmless.
func (t *tokenCache) add(raw string, c *Claims, notBefore time.Time) {
	if t == nil {
		return
	}
	ttl := c.ExpiresAt.Sub(notBefore)
	if ttl <= 0 {
		return
	}
	t.c.SetWithTTL(raw, c, int64(len(raw)+entryOverhead), ttl)
}

func (t *tokenCache) close() { t.c.Close() }
