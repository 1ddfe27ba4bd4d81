package revocation

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

const benchHeld = 1_000_000

// jtis returns n distinct jti strings.
func jtis(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "5f0c6c1e-" + strconv.Itoa(i)
	}
	return ids
}

// tokenEvent revokes the jti id.
func tokenEvent(_ int, id string) events.Event {
	return events.NewToken("e", id, t0.Add(time.Hour), t0)
}

// mixedEvent revokes id as a jti (70%), a session (20%), a subject (10%), and
// every 100,000th as a signing key.
func mixedEvent(i int, id string) events.Event {
	switch {
	case i%100_000 == 0:
		return events.NewKey("e", id, t0)
	case i%10 < 7:
		return events.NewToken("e", id, t0.Add(time.Hour), t0)
	case i%10 < 9:
		return events.NewSession("e", id, t0)
	}
	return events.NewSubject("e", id, t0, t0)
}

// fill applies one event per id from GOMAXPROCS goroutines, then Syncs.
func fill(tb testing.TB, s *Store, ids []string, event func(int, string) events.Event) {
	tb.Helper()
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for g := range workers {
		wg.Go(func() {
			for i := g; i < len(ids); i += workers {
				if _, err := s.Apply(event(i, ids[i])); err != nil {
					tb.Errorf("Apply: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustSync(tb, s)
}

// BenchmarkRevocationCheck measures Check with 1M revocations of all four
// kinds held (see mixedEvent): a revoked jti (hit) and a token whose jti,
// sid, sub and kid are all looked up and none is revoked (miss).
func BenchmarkRevocationCheck(b *testing.B) {
	s := newStore(b, Config{Capacity: benchHeld})
	ids := jtis(benchHeld)
	fill(b, s, ids, mixedEvent)
	hits := make([]Token, 4096)
	misses := make([]Token, 4096)
	for i := range hits {
		hits[i] = Token{JTI: ids[((i*7919)%(len(ids)/10))*10+1], IssuedAt: t0}
		n := strconv.Itoa(i)
		misses[i] = Token{JTI: "miss-" + n, SID: "sid-" + n, Sub: "sub-" + n, KID: "kid-" + strconv.Itoa(i%4), IssuedAt: t0}
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := s.Check(hits[i%len(hits)]); !errors.Is(err, ErrTokenRevoked) {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := s.Check(misses[i%len(misses)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHeldMemory reports the heap bytes per held revocation with 1M jti
// revocations held at a capacity of 1M: ristretto's store maps and policy
// cost map, the entries, the expiry buckets and the Bloom filter (4
// to 16 bytes per entry held, 4 at 1M). The ids are not kept.
func BenchmarkHeldMemory(b *testing.B) {
	var perRev float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := New(Config{Capacity: benchHeld, MaxTokenLifetime: lifetime, Leeway: leeway, Now: func() time.Time { return t0 }})
		if err != nil {
			b.Fatal(err)
		}
		fill(b, s, jtis(benchHeld), tokenEvent)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if h := s.Stats().Held; h != benchHeld {
			b.Fatalf("Held = %d", h)
		}
		perRev = float64(after.HeapAlloc-before.HeapAlloc) / benchHeld
		runtime.KeepAlive(s)
		s.Close()
	}
	b.ReportMetric(perRev, "B/revocation")
}

// BenchmarkApply measures Apply of distinct token revocations from parallel
// goroutines, followed by one Sync, per event.
func BenchmarkApply(b *testing.B) {
	s := newStore(b, Config{Capacity: b.N + 1})
	ids := jtis(b.N)
	exp := t0.Add(time.Hour)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := s.Apply(events.NewToken("e", ids[i], exp, t0)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := s.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if h := s.Stats().Held; h != b.N {
		b.Fatalf("Held = %d, want %d", h, b.N)
	}
}
