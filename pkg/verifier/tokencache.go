package verifier

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// tokenCache remembers tokens whose signature and claims verified, so a token
// seen again skips parsing and the signature check. It never skips the expiry
// or revocation checks, which the caller runs on every hit.
//
// It is a set-associative table: a token's hash picks a bucket of cacheWays
// slots. A slot holds the token's verified *Claims, which keep the whole
// compact token, compared on every hit, so two different tokens can never
// share an entry: a hash collision is only a miss.
//
// get only loads: no lock, no clock, nothing written to shared memory, so
// repeat verifications scale across cores. (ristretto's Get, used before,
// took a shard's read lock, pushed to its admission buffer and read the
// clock for its TTL: more than the rest of a repeat Verify, and slower on
// two cores than on one.) add takes a mutex; it follows a signature check
// of tens of microseconds, so it does not contend.
//
// A full bucket drops the entry that expires first; beyond the byte budget a
// clock hand clears slots in turn. Losing an entry only costs one more
// signature check.
//
// A tokenCache is safe for concurrent use; a nil one caches nothing.
type tokenCache struct {
	seed maphash.Seed
	mask uint64 // buckets - 1; buckets is a power of two

	// hashes[i] is the hash of the token in claims[i]. A reader may see
	// the two out of step while a slot is replaced; the hash only filters,
	// the token comparison decides.
	hashes []atomic.Uint64
	claims []atomic.Pointer[Claims]

	// mu serializes writers and guards bytes and hand.
	mu       sync.Mutex
	bytes    int64 // the cost of the entries held
	maxBytes int64
	hand     int // the next slot the byte budget clears
}

const (
	// entryOverhead approximates the bytes an entry costs beyond the token
	// itself (Claims, its strings, the slot).
	entryOverhead = 400
	// typicalToken is the token size the table is sized for.
	typicalToken = 600
	// cacheWays is the slots per bucket: one token's candidates share a
	// CPU cache line of hashes.
	cacheWays = 4
	// hashedTail is how much of a token, from its end, its hash covers:
	// part of the signature, which differs between any two tokens that
	// were signed (only those are added). Hashing a whole RS256 token cost
	// as much as the rest of a hit. Tokens that share a tail (forged ones,
	// say) only share a bucket: a hit still compares the whole token.
	hashedTail = 32
)

func newTokenCache(maxBytes int64) *tokenCache {
	entries := uint64(max(maxBytes/(entryOverhead+typicalToken), 16*cacheWays))
	buckets := uint64(1) << bits.Len64((entries+cacheWays-1)/cacheWays-1)
	return &tokenCache{
		seed:     maphash.MakeSeed(),
		mask:     buckets - 1,
		hashes:   make([]atomic.Uint64, buckets*cacheWays),
		claims:   make([]atomic.Pointer[Claims], buckets*cacheWays),
		maxBytes: maxBytes,
	}
}

// bucket returns the hash of raw and the index of its bucket's first slot.
// The hash covers only raw's last hashedTail bytes.
func (t *tokenCache) bucket(raw string) (uint64, int) {
	h := maphash.String(t.seed, raw[max(len(raw)-hashedTail, 0):])
	return h, int(h&t.mask) * cacheWays
}

// get returns the cached claims of raw, if any.
func (t *tokenCache) get(raw string) (*Claims, bool) {
	if t == nil {
		return nil, false
	}
	h, b := t.bucket(raw)
	for i := b; i < b+cacheWays; i++ {
		if t.hashes[i].Load() != h {
			continue
		}
		if c := t.claims[i].Load(); c != nil && c.raw == raw {
			return c, true
		}
	}
	return nil, false
}

func entryCost(c *Claims) int64 { return int64(len(c.raw) + entryOverhead) }

// add caches c, the claims of raw, unless it has already expired as seen
// from notBefore (now minus leeway). A dropped add is harmless.
func (t *tokenCache) add(raw string, c *Claims, notBefore time.Time) {
	if t == nil || !c.ExpiresAt.After(notBefore) {
		return
	}
	cost := entryCost(c)
	h, b := t.bucket(raw)
	t.mu.Lock()
	defer t.mu.Unlock()
	// The slot to fill: an empty one, else the one expiring first. A
	// concurrent Verify of the same token may have added it already.
	victim := b
	for i := b; i < b+cacheWays; i++ {
		old := t.claims[i].Load()
		if old == nil {
			victim = i
			break
		}
		if old.raw == raw {
			return
		}
		if old.ExpiresAt.Before(t.claims[victim].Load().ExpiresAt) {
			victim = i
		}
	}
	t.clear(victim)
	for n := 0; t.bytes+cost > t.maxBytes && n < len(t.claims); n++ {
		t.clear(t.hand)
		t.hand = (t.hand + 1) % len(t.claims)
	}
	if t.bytes+cost > t.maxBytes {
		return // larger than the whole budget
	}
	t.bytes += cost
	t.claims[victim].Store(c)
	t.hashes[victim].Store(h)
}

// clear empties slot i. The caller holds mu.
func (t *tokenCache) clear(i int) {
	if old := t.claims[i].Swap(nil); old != nil {
		t.bytes -= entryCost(old)
	}
	t.hashes[i].Store(0)
}

// close drops every entry, so the claims they hold can be collected; the
// cache stays usable.
func (t *tokenCache) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.claims {
		t.clear(i)
	}
}
