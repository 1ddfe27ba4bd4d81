package revoker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// recordN records n session revocations straight into Redis, as revokers
// that recorded them and then lost NATS (or died) leave them: in the
// outbox, not in the stream.
func (e *env) recordN(tb testing.TB, prefix string, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				ev := events.NewSession(NewEventID(), fmt.Sprintf("%s-%d", prefix, i), time.Now())
				if _, err := e.store.Record(ctx, verifiertest.Encoded(tb, ev), time.Second, nil); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		tb.Fatalf("%d of %d records failed", f, n)
	}
}

// TestOutboxSeveralDrainers: what revokers recorded and never published is
// delivered by the replicas still running, several draining at once, and
// the stream stores every event exactly once.
func TestOutboxSeveralDrainers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	const n = 500
	before := e.lastSeq(t)
	runServer(t, e.cfg) // a second replica, draining the same outbox
	runServer(t, e.cfg) // and a third
	e.recordN(t, "s-left", n)
	eventually.True(t, 30*time.Second, "the outbox to be drained", func() bool {
		ob, err := e.store.Outbox(ctx)
		return err == nil && ob.Depth == 0
	})
	if got := e.lastSeq(t) - before; got != n {
		t.Fatalf("the stream stored %d messages for %d recorded events, want each once", got, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if ev, _ := e.lastEvent(t, events.KindSession, fmt.Sprintf("s-left-%d", i)); time.Since(ev.IssuedAt) > time.Minute {
			t.Errorf("event %s issued at %s", ev.ID, ev.IssuedAt)
		}
	}
}

// BenchmarkOutboxDrain: how long the outbox takes to deliver 10,000
// recorded revocations once NATS is back, beside the baseline of publishing
// the same number directly with as many publishers (no Redis), in the same
// run. "drain" is timed from the NATS server's restart to an empty outbox,
// so it includes the revoker's reconnect.
func BenchmarkOutboxDrain(b *testing.B) {
	const n = 10_000
	e := newEnv(b, nil)
	b.Run("publisher-10k", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			var next, failed atomic.Int64
			start := time.Now()
			for range drainWorkers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						j := next.Add(1) - 1
						if j >= n {
							return
						}
						ev := events.NewSession(NewEventID(), fmt.Sprintf("b-pub-%d-%d", i, j), time.Now())
						if _, err := e.srv.publisher.Publish(context.Background(), ev); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if failed.Load() > 0 {
				b.Fatalf("%d publishes failed", failed.Load())
			}
			b.ReportMetric(time.Since(start).Seconds(), "s/10k")
		}
	})
	b.Run("drain-10k", func(b *testing.B) {
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			e.nats.Shutdown()
			eventually.True(b, 10*time.Second, "the revoker to notice NATS is down", func() bool { return !e.nc.IsConnected() })
			e.recordN(b, fmt.Sprintf("b-drain-%d", i), n)
			b.StartTimer()
			start := time.Now()
			e.nats.Restart(b)
			eventually.True(b, 5*time.Minute, "the outbox to be drained", func() bool {
				ob, err := e.store.Outbox(ctx)
				return err == nil && ob.Depth == 0
			})
			b.ReportMetric(time.Since(start).Seconds(), "s/10k")
		}
	})
}
