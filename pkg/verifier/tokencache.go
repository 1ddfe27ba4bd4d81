package verifier

import (
	"fmt"
	"sync"
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
// Adds are handed to ristretto in batches by a flusher goroutine: a Set wakes
// ristretto's own goroutine, and paying that wake-up on every first-sight
// Verify cost about 5% of an EdDSA verification on this project's 2-core
// benchmark machine. A token verified in the last millisecond may therefore
// be verified once more.
//
// A tokenCache is safe for concurrent use; a nil one caches nothing.
type tokenCache struct {
	c *ristretto.Cache[string, *Claims]

	// mu guards pending.
	mu      sync.Mutex
	pending []pendingToken

	kick chan struct{} // wakes the flusher when pending stops being empty
	stop chan struct{} // closed by close
	done chan struct{} // closed when the flusher has returned
}

type pendingToken struct {
	raw string
	c   *Claims
	ttl time.Duration
}

const (
	// entryOverhead approximates the bytes an entry costs beyond the token
	// itself (Claims, strings, ristretto's bookkeeping).
	entryOverhead = 400
	// maxPending bounds the adds waiting for the flusher; beyond it adds
	// are dropped (the token is just verified again next time).
	maxPending = 4096
	// flushDelay is how long the flusher lets adds gather.
	flushDelay = time.Millisecond
)

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
	t := &tokenCache{c: c, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go t.flusher()
	return t, nil
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
	t.mu.Lock()
	first := len(t.pending) == 0
	if len(t.pending) < maxPending {
		t.pending = append(t.pending, pendingToken{raw, c, ttl})
	}
	t.mu.Unlock()
	if first {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// flusher moves pending adds into ristretto, a batch at a time.
func (t *tokenCache) flusher() {
	defer close(t.done)
	delay := time.NewTimer(flushDelay)
	var spare []pendingToken
	for {
		select {
		case <-t.kick:
		case <-t.stop:
			return
		}
		delay.Reset(flushDelay)
		select {
		case <-delay.C:
		case <-t.stop:
			return
		}
		spare = t.flush(spare)
	}
}

// flush hands every pending add to ristretto and returns the emptied batch
// slice for reuse.
func (t *tokenCache) flush(spare []pendingToken) []pendingToken {
	t.mu.Lock()
	batch := t.pending
	t.pending = spare[:0]
	t.mu.Unlock()
	for _, p := range batch {
		t.c.SetWithTTL(p.raw, p.c, int64(len(p.raw)+entryOverhead), p.ttl)
	}
	clear(batch)
	return batch
}

// wait makes every add made so far visible to get (tests and benchmarks).
func (t *tokenCache) wait() {
	t.flush(nil)
	t.c.Wait()
}

func (t *tokenCache) close() {
	close(t.stop)
	<-t.done
	t.c.Close()
}
