//go:build chaos

// More fault scenarios: Redis restart, the Redis fallback policy while a
// replica is cut off from NATS, and the revoker's own NATS connection
// partitioned between its Redis write and its publish. See
// docs/failure-testing.md.

package chaos

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// TestRestartRedis kills redis-server mid-workload, keeps it down for a
// phase and starts it again (empty: nothing is persisted). While it is
// down every revocation is refused (503) and none is acknowledged; the
// client retries with the same Idempotency-Key and is acknowledged after
// the restart. The replicas never need Redis.
func TestRestartRedis(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.start()
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		e.redis.Stop()
		down := e.rec.Now()
		hold(e.sz.phase)
		up := e.rec.Now()
		e.redis.Restart(t)
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)

		// No acknowledgement while Redis was down; the revocation in
		// flight meanwhile (the client sends one at a time, so it may have
		// been asked for just before the kill) was retried until
		// acknowledged after the restart. The margin covers an answer in
		// flight at the kill.
		spanned := 0
		for _, r := range e.rec.History().Revocations {
			if r.Acked && r.End > down+200*time.Millisecond && r.End < up {
				t.Errorf("revocation %s acknowledged at %v while redis was down [%v, %v]", r.ID, r.End, down, up)
			}
			if r.Acked && r.Start < up && r.End > up && r.Attempts > 1 {
				spanned++
			}
		}
		if spanned == 0 {
			t.Errorf("no revocation in flight while redis was down [%v, %v] was retried and acknowledged after the restart", down, up)
		}
	}
	hold(e.sz.phase)
	e.finish(t, "restart Redis", "redis-server killed for one phase (503s, client retries same key), restarted empty")
}

// TestFallbackWhileCutOff runs replica r0 with verifier.StaleFallback and
// revoker.NewRedisFallback behind proxies, partitions it from NATS past
// MaxStaleness while revocations continue, then heals. Cut off, r0 must
// keep deciding (no 503) through Redis, and must never accept a token whose
// revocation was acknowledged before the request started: the Redis record
// is written before the acknowledgement, so the bound is 0 there. Then,
// still cut off, Redis is stopped too: r0 must accept nothing (503, fail
// closed) until NATS heals.
//
// r0 records Deciding samples only while it decides from its own stream
// state (Health.Deciding and not Stale): property 1 is about applying the
// stream, which a cut-off replica cannot do; what it enforces through Redis
// is checked per request, by property 2, with P and again with 0.
func TestFallbackWhileCutOff(t *testing.T) {
	e := newEnv(t, envOptions{proxied: true})
	rv := e.rv.Load()
	r0 := e.reps[0]
	r0.stop()
	r0.startWith(t, func(c *verifier.Config) {
		c.StalePolicy = verifier.StaleFallback
		c.Fallback = revoker.NewRedisFallback(rv.store)
	}, func(h verifier.Health) bool { return h.Deciding() && !h.Stale })
	r0.waitDeciding(t, 30*time.Second)
	r0.mu.RLock()
	r0name := r0.cur.name
	r0.mu.RUnlock()
	stale := func() bool {
		r0.mu.RLock()
		defer r0.mu.RUnlock()
		return r0.cur != nil && r0.cur.v.Health().Stale
	}

	e.start()
	type window struct{ from, to time.Duration }
	var cutOff, redisDown []window
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		for _, p := range e.proxies {
			p.Partition()
		}
		eventually.True(t, 20*time.Second, "r0 to be stale while cut off", stale)
		from := e.rec.Now()
		drainAcks(e)
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		to := e.rec.Now()
		cutOff = append(cutOff, window{from, to})

		// Still cut off, Redis goes too: r0 can decide nothing and must
		// fail closed. NATS heals before Redis restarts: this test's Redis
		// keeps nothing across a restart (production runs it with AOF), and
		// a stale replica falling back to an emptied Redis would accept
		// what it had revoked.
		e.redis.Stop()
		down := e.rec.Now()
		hold(e.sz.phase)
		redisDown = append(redisDown, window{down, e.rec.Now()})
		for _, p := range e.proxies {
			p.Heal()
		}
		eventually.True(t, 30*time.Second, "r0 fresh again after the heal", func() bool { return !stale() && r0.deciding() })
		e.redis.Restart(t)
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)
		hold(e.sz.phase)
	}
	e.finish(t, "fallback while cut off", "r0 (StaleFallback, Redis) fully partitioned from NATS past MaxStaleness, revocations continue; then Redis down too; heal")

	// With Redis gone as well, r0 accepted nothing (fail closed).
	var whileDown, acceptedDown, unavailableDown int
	for _, q := range e.rec.History().Requests {
		for _, w := range redisDown {
			if q.Replica == r0name && q.Start >= w.from && q.End <= w.to {
				whileDown++
				switch q.Outcome {
				case Accepted:
					acceptedDown++
				case Unavailable:
					unavailableDown++
				}
			}
		}
	}
	t.Logf("r0 while cut off and Redis down: %d requests (%d accepted, %d unavailable)", whileDown, acceptedDown, unavailableDown)
	if acceptedDown > 0 || unavailableDown == 0 {
		t.Errorf("r0 cut off with Redis down: %d accepted, %d unavailable; want none accepted, some unavailable", acceptedDown, unavailableDown)
	}

	// While cut off and stale, r0 decided every request itself, and the
	// Redis fallback enforced every acknowledged revocation at once.
	h := e.rec.History()
	var reqs []Request
	for _, q := range h.Requests {
		for _, w := range cutOff {
			if q.Replica == r0name && q.Start >= w.from && q.End <= w.to {
				reqs = append(reqs, q)
			}
		}
	}
	var accepted, revoked, unavailable int
	for _, q := range reqs {
		switch q.Outcome {
		case Accepted:
			accepted++
		case Revoked:
			revoked++
		case Unavailable:
			unavailable++
		}
	}
	t.Logf("r0 while cut off: %d requests (%d accepted, %d revoked, %d unavailable)", len(reqs), accepted, revoked, unavailable)
	if accepted == 0 || unavailable > 0 {
		t.Errorf("r0 did not keep deciding through the fallback while cut off: %d accepted, %d unavailable", accepted, unavailable)
	}
	strict := History{Revocations: h.Revocations, Requests: reqs, Incarnations: h.Incarnations, Applied: h.Applied}
	vs, _ := Check(strict, 0)
	for _, v := range vs {
		if v.Property == NoLateAccept || v.Property == NoPhantom {
			t.Errorf("fallback, bound 0: %s", v)
		}
	}
}

// TestRevokerRetryAfterPublishFailure puts the revoker's own NATS
// connection behind proxies and partitions it: a revocation is written to
// Redis, its publish times out and the client gets 503. After the heal the
// client's retry with the same Idempotency-Key is acknowledged with one
// event id, and the stream stored that event exactly once (the publish
// buffered across the partition and the retry's are de-duplicated by
// Nats-Msg-Id). The workload revokes through the same revoker throughout.
func TestRevokerRetryAfterPublishFailure(t *testing.T) {
	e := newEnv(t, envOptions{})
	rv, proxies := e.proxiedRevoker(t)
	seen := e.watchStream(t)
	e.start()
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		for _, p := range proxies {
			p.Partition()
		}

		// One revocation of a token outside the pool, asked for while cut
		// off: refused, but already in Redis.
		tok := e.mint(0)
		exp := float64(tok.exp.UnixMicro()) / 1e6
		req := revoker.Request{Type: "token", JTI: tok.jti, Exp: &exp}
		key := "retry-" + tok.jti
		rec := Revocation{Kind: KindToken, Value: tok.jti, Start: e.rec.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := rv.client.Revoke(ctx, req, key)
		cancel()
		if !errors.Is(err, revoker.ErrUnavailable) {
			t.Fatalf("revoke while the revoker is cut off from NATS: got %v, want %v", err, revoker.ErrUnavailable)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		err = rv.store.Check(ctx, store.Query{JTI: tok.jti})
		cancel()
		if !errors.Is(err, verifier.ErrTokenRevoked) {
			t.Fatalf("after the failed publish, redis check of the jti: got %v, want %v", err, verifier.ErrTokenRevoked)
		}
		hold(e.sz.phase)
		for _, p := range proxies {
			p.Heal()
		}

		// The client's retries, same key, until acknowledged; then once
		// more, which must name the same event.
		var id string
		eventually.True(t, 30*time.Second, "the retried revocation to be acknowledged", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := rv.client.Revoke(ctx, req, key)
			if err != nil {
				return false
			}
			id = res.ID
			return true
		})
		rec.End, rec.ID, rec.Acked = e.rec.Now(), id, true
		e.rec.Revocation(rec)
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		again, err := rv.client.Revoke(ctx, req, key)
		cancel()
		if err != nil || again.ID != id {
			t.Errorf("repeated retry: got %+v, %v; want event %s", again, err, id)
		}
		if n := seen.count(t, e, id); n != 1 {
			t.Errorf("event %s stored %d times in the stream, want exactly once", id, n)
		}
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)
	}
	hold(e.sz.phase)
	e.finish(t, "revoker publish fails, client retries", "the revoker's NATS connection partitioned (Redis written, publish times out, 503), heal, retry with the same Idempotency-Key")
}

// TestOutboxWithoutRetry cuts the revoker off from NATS and, meanwhile,
// asks for revocations whose clients never retry: each is recorded, answered
// 503 with recorded:true and its event id, and must be delivered by the
// revoker's outbox once NATS is reachable again, then enforced by every
// deciding replica within P of that (property 6). The workload, with its
// retrying client, runs through the same revoker throughout.
func TestOutboxWithoutRetry(t *testing.T) {
	e := newEnv(t, envOptions{})
	rv, proxies := e.proxiedRevoker(t)
	e.start()
	perRound := 8 * e.sz.repeat
	var recorded int
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		for _, p := range proxies {
			p.Partition()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex // guards recorded
		for range perRound {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if e.revokeOnce(t, rv) {
					mu.Lock()
					recorded++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		hold(e.sz.phase / 2)
		for _, p := range proxies {
			p.Heal()
		}
		e.rec.Reachable()
		// Nobody retries: the outbox empties by itself.
		eventually.True(t, 30*time.Second, "the revoker's outbox to deliver what it recorded", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			ob, err := rv.store.Outbox(ctx)
			return err == nil && ob.Depth == 0
		})
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)
	}
	if recorded == 0 {
		t.Fatal("no revocation was answered as recorded: the scenario proved nothing")
	}
	hold(e.sz.phase)
	e.finish(t, "outbox without retry", fmt.Sprintf("the revoker's NATS connection partitioned; %d revocations asked for once each meanwhile (503 recorded), never retried; heal", recorded))
}

// revokeOnce revokes a pooled token's jti, session or subject once, with no
// retry, and records the attempt: recorded (503 with recorded:true and the
// event id), acknowledged, or neither. It reports whether it was recorded.
func (e *env) revokeOnce(t *testing.T, rv *testRevoker) bool {
	tok, i := e.pick()
	var req revoker.Request
	r := Revocation{Attempts: 1}
	switch n := mrand.IntN(3); n {
	case 0:
		exp := float64(tok.exp.UnixMicro()) / 1e6
		req, r.Kind, r.Value = revoker.Request{Type: "token", JTI: tok.jti, Exp: &exp}, KindToken, tok.jti
	case 1:
		req, r.Kind, r.Value = revoker.Request{Type: "session", SID: tok.sid}, KindSession, tok.sid
	default:
		req, r.Kind, r.Value = revoker.Request{Type: "subject", Sub: tok.sub}, KindSubject, tok.sub
	}
	r.Start = e.rec.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	res, err := rv.client.Revoke(ctx, req, rand.Text())
	cancel()
	r.End = e.rec.Now()
	var rec *revoker.RecordedError
	switch {
	case err == nil:
		r.ID, r.Acked = res.ID, true
	case errors.As(err, &rec):
		r.ID, r.Recorded = rec.ID, true
	default:
		t.Logf("revocation while cut off, neither recorded nor acknowledged: %v", err)
	}
	e.rec.Revocation(r)
	fresh := e.mint(mrand.IntN(subjects))
	e.mu.Lock()
	e.pool[i] = fresh
	e.mu.Unlock()
	return r.Recorded
}

// streamWatch counts every message the stream stores from its creation on,
// by event id, through an ordered consumer. It is safe for concurrent use.
type streamWatch struct {
	// mu guards ids and last.
	mu   sync.Mutex
	ids  map[string]int
	last uint64 // highest stream sequence seen
}

// watchStream starts a streamWatch, stopped at tb's Cleanup.
func (e *env) watchStream(tb testing.TB) *streamWatch {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.stream(tb).OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		tb.Fatalf("ordered consumer: %v", err)
	}
	w := &streamWatch{ids: map[string]int{}}
	cc, err := c.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		evs, err := events.MsgEvents(m.Subject(), m.Data())
		w.mu.Lock()
		defer w.mu.Unlock()
		if err == nil {
			for _, ev := range evs {
				w.ids[ev.ID]++
			}
		}
		w.last = max(w.last, md.Sequence.Stream)
	})
	if err != nil {
		tb.Fatalf("consume: %v", err)
	}
	tb.Cleanup(cc.Stop)
	return w
}

// count waits until the watch has seen every message stored so far and
// returns how many of them carry event id.
func (w *streamWatch) count(tb testing.TB, e *env, id string) int {
	tb.Helper()
	return w.counts(tb, e)[id]
}

// counts waits until the watch has seen every message stored so far and
// returns, per event id, how many of them carry it.
func (w *streamWatch) counts(tb testing.TB, e *env) map[string]int {
	tb.Helper()
	last := lastSeq(tb, e.stream(tb))
	eventually.True(tb, 10*time.Second, "the stream watch to catch up", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.last >= last
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.ids)
}

// proxiedRevoker starts a revoker that reaches every NATS node through a
// Proxy of its own, makes the workload revoke through it, and returns it
// with its proxies.
func (e *env) proxiedRevoker(tb testing.TB) (*testRevoker, []*Proxy) {
	tb.Helper()
	var proxies []*Proxy
	var urls []string
	for _, nd := range e.cluster.Nodes() {
		p := NewProxy(tb, nd.URL()[len("nats://"):])
		proxies = append(proxies, p)
		urls = append(urls, p.URL())
	}
	rv := e.startRevoker(tb, urls)
	e.rv.Store(rv)
	return rv, proxies
}
