package verifier

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// cached returns claims for a made-up token raw expiring at exp.
func cached(raw string, exp time.Time) *Claims { return &Claims{ExpiresAt: exp, raw: raw} }

func TestTokenCacheHit(t *testing.T) {
	tc := newTokenCache(1 << 20)
	now := time.Now()
	c := cached("a.b.c", now.Add(time.Minute))
	tc.add(c.raw, c, now)
	if got, ok := tc.get("a.b.c"); !ok || got != c {
		t.Fatalf("get = %p, %v; want %p", got, ok, c)
	}
	if _, ok := tc.get("a.b.d"); ok {
		t.Fatal("get of another token hit")
	}
	tc.add("x.y.z", cached("x.y.z", now), now)
	if _, ok := tc.get("x.y.z"); ok {
		t.Fatal("an expired token was cached")
	}
	tc.close()
	if _, ok := tc.get("a.b.c"); ok {
		t.Fatal("get after close hit")
	}
}

// A slot whose hash matches but whose token differs (a hash collision) is a
// miss: the whole token is compared.
func TestTokenCacheCollisionIsMiss(t *testing.T) {
	tc := newTokenCache(1 << 20)
	h, b := tc.bucket("a.b.c")
	tc.claims[b].Store(cached("a.b.other", time.Now().Add(time.Minute)))
	tc.hashes[b].Store(h)
	if c, ok := tc.get("a.b.c"); ok {
		t.Fatalf("get = %q on a colliding hash, want a miss", c.raw)
	}
	// Tokens that differ only before the hashed tail share a hash: each
	// hit is still its own token.
	tail := strings.Repeat("s", hashedTail)
	now := time.Now()
	for _, raw := range []string{"h.p1." + tail, "h.p2." + tail} {
		tc.add(raw, cached(raw, now.Add(time.Minute)), now)
	}
	for _, raw := range []string{"h.p1." + tail, "h.p2." + tail} {
		if c, ok := tc.get(raw); !ok || c.raw != raw {
			t.Fatalf("get(%s) = %v, %v", raw, c, ok)
		}
	}
}

// A full bucket drops the entry that expires first.
func TestTokenCacheFullBucket(t *testing.T) {
	tc := newTokenCache(1 << 20)
	now := time.Now()
	_, want := tc.bucket("t0")
	var same []string // tokens of one bucket
	for i := 0; len(same) < cacheWays+1; i++ {
		raw := fmt.Sprintf("t%d", i)
		if _, b := tc.bucket(raw); b == want {
			same = append(same, raw)
		}
	}
	for i, raw := range same[:cacheWays] {
		// same[1] expires first.
		exp := now.Add(time.Duration(10+i) * time.Minute)
		if i == 1 {
			exp = now.Add(time.Minute)
		}
		tc.add(raw, cached(raw, exp), now)
	}
	last := same[cacheWays]
	tc.add(last, cached(last, now.Add(time.Hour)), now)
	for i, raw := range same {
		if _, ok := tc.get(raw); ok == (i == 1) {
			t.Errorf("get(%s) hit = %v", raw, ok)
		}
	}
}

// The entries held never cost more than the byte budget.
func TestTokenCacheByteBudget(t *testing.T) {
	const budget = 64 << 10
	tc := newTokenCache(budget)
	now := time.Now()
	pad := strings.Repeat("x", 2000)
	for i := range 1000 {
		raw := fmt.Sprintf("%s.%d", pad, i) // distinct tails: distinct buckets
		tc.add(raw, cached(raw, now.Add(time.Minute)), now)
		if tc.bytes > budget {
			t.Fatalf("after %d adds: %d bytes held, budget %d", i+1, tc.bytes, budget)
		}
	}
	var held, bytes int64
	for i := range tc.claims {
		if c := tc.claims[i].Load(); c != nil {
			held++
			bytes += entryCost(c)
		}
	}
	if bytes != tc.bytes || held < budget/(2400*2) {
		t.Fatalf("%d entries of %d bytes held, accounted %d", held, bytes, tc.bytes)
	}
	huge := strings.Repeat("y", budget)
	tc.add(huge, cached(huge, now.Add(time.Minute)), now)
	if _, ok := tc.get(huge); ok || tc.bytes > budget {
		t.Fatalf("a token larger than the budget was cached (%d bytes held)", tc.bytes)
	}
}

// Concurrent gets and adds (run under -race): every hit is the token asked.
func TestTokenCacheConcurrent(t *testing.T) {
	tc := newTokenCache(16 << 10)
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				raw := fmt.Sprintf("%d.%d", g, i%100)
				if c, ok := tc.get(raw); ok && c.raw != raw {
					t.Errorf("get(%s) = %s", raw, c.raw)
					return
				}
				tc.add(raw, cached(raw, now.Add(time.Minute)), now)
			}
		})
	}
	wg.Wait()
}
