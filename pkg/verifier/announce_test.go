package verifier

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestAnnounceAfterApplied: a replica announces right after it applied an
// event (not at its next interval), and under a steady stream of events
// still announces, at most every announceGap, ending with the last
// sequence: confirmations keep coming without one message per event.
func TestAnnounceAfterApplied(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, func(c *Config) { c.AnnounceInterval = 30 * time.Second })
	nc, err := nats.Connect(e.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type heard struct {
		seq uint64
		at  time.Time
	}
	var mu sync.Mutex
	var got []heard
	sub, err := nc.Subscribe(events.AnnounceSubject(events.DefaultStreamName, v.ReplicaID()), func(m *nats.Msg) {
		a, err := events.DecodeAnnouncement(m.Data)
		if err != nil {
			t.Errorf("announcement: %v", err)
			return
		}
		mu.Lock()
		got = append(got, heard{a.AppliedSeq, time.Now()})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func(i int) uint64 {
		ack, err := events.Publish(ctx, e.js, events.NewSession(eventID("ann"), sid(i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	// waitHeard waits until an announcement of seq or later arrived and
	// returns how many announcements came before it, counting it.
	waitHeard := func(seq uint64, within time.Duration) int {
		t.Helper()
		n := 0
		eventually.True(t, within, fmt.Sprintf("an announcement of seq %d (interval 30s)", seq), func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i, h := range got {
				if h.seq >= seq {
					n = i + 1
					return true
				}
			}
			return false
		})
		return n
	}

	seq := publish(0)
	waitHeard(seq, 2*time.Second)

	mu.Lock()
	got = nil
	mu.Unlock()
	start := time.Now()
	const n = 300
	var last uint64
	for i := 1; i <= n; i++ {
		last = publish(i)
	}
	published := time.Now()
	count := waitHeard(last, 2*time.Second)
	elapsed := time.Since(start)
	if limit := int(elapsed/announceGap) + 2; count > limit {
		t.Errorf("%d announcements for %d events over %s: want at most %d (one per %s)", count, n, elapsed, limit, announceGap)
	}
	// While the events kept coming, announcements did too (a debounce
	// that every event pushes back would stay silent until the end).
	if published.Sub(start) > 10*announceGap {
		mu.Lock()
		during := 0
		for _, h := range got {
			if h.at.Before(published) {
				during++
			}
		}
		mu.Unlock()
		if during == 0 {
			t.Errorf("no announcement during %s of events", published.Sub(start))
		}
	}
	t.Logf("%d events over %s: %d announcements", n, elapsed.Round(time.Millisecond), count)
}
