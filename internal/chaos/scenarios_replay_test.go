//go:build chaos

// Replicas restarted in the middle of replaying a large stream. See
// docs/failure-testing.md.

package chaos

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestRestartMidReplay fills the stream with a large live set of token
// revocations (20,000; 100,000 with -chaos.long), the last of them
// revoking tokens of the workload's pool, then restarts replica r1 again
// and again while it replays, each time once it has applied a random part
// of the stream and before it is ready, while the workload keeps revoking. Every
// incarnation must replay everything acknowledged before it started before
// it reports ready (property 3), and none may accept a preloaded-revoked
// pool token.
func TestRestartMidReplay(t *testing.T) {
	e := newEnv(t, envOptions{})
	n := 20_000
	if *long {
		n = 100_000
	}
	e.preload(t, n, 10)
	e.start()
	r1 := e.reps[1]
	interrupted := 0
	for range 3 * e.sz.repeat {
		r1.restart(t)
		r1.mu.RLock()
		in := r1.cur
		r1.mu.RUnlock()
		part := 1 + mrand.IntN(n*9/10) // somewhere in the replay
		eventually.True(t, 60*time.Second, in.name+" to apply part of the stream", func() bool {
			return e.rec.AppliedBy(in.name) >= part || in.v.Ready()
		})
		if !in.v.Ready() {
			interrupted++
			t.Logf("%s stopped mid-replay after %d of %d+ events", in.name, e.rec.AppliedBy(in.name), n)
		}
	}
	r1.restart(t)
	r1.waitDeciding(t, 2*time.Minute)
	if interrupted == 0 {
		t.Errorf("no restart landed mid-replay: the replay of %d events is too fast to interrupt", n)
	}
	hold(e.sz.phase)
	e.finish(t, "restart a replica mid-replay", "stream preloaded with live revocations; r1 restarted repeatedly before its replay finished")
}

// preload publishes n token revocations straight to the stream, the last
// pooled of them revoking fresh tokens added to the workload's pool, and
// records each as acknowledged when JetStream acknowledged it.
func (e *env) preload(tb testing.TB, n, pooled int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const window = 2000
	for start := 0; start < n; start += window {
		type sent struct {
			rev Revocation
			ack jetstream.PubAckFuture
		}
		var batch []sent
		for i := start; i < min(start+window, n); i++ {
			jti := rand.Text()
			exp := time.Now().Add(verifiertest.DefaultTTL)
			if i >= n-pooled {
				t := e.mint(i % subjects)
				e.mu.Lock()
				e.pool = append(e.pool, t)
				e.mu.Unlock()
				jti, exp = t.jti, t.exp
			}
			ev := events.NewToken(newID(), jti, exp, time.Now())
			m, err := events.NewMsg(ctx, verifiertest.Encoded(tb, ev))
			if err != nil {
				tb.Fatalf("NewMsg: %v", err)
			}
			rev := Revocation{ID: ev.ID, Kind: KindToken, Value: jti, Start: e.rec.Now()}
			f, err := e.js.PublishMsgAsync(m, jetstream.WithMsgID(ev.ID))
			if err != nil {
				tb.Fatalf("PublishMsgAsync: %v", err)
			}
			batch = append(batch, sent{rev, f})
		}
		for _, s := range batch {
			select {
			case <-s.ack.Ok():
			case err := <-s.ack.Err():
				tb.Fatalf("preload publish: %v", err)
			case <-ctx.Done():
				tb.Fatalf("preload: %v", ctx.Err())
			}
			s.rev.End, s.rev.Acked = e.rec.Now(), true
			e.rec.Revocation(s.rev)
		}
	}
}

// newID returns an event id like the revoker's.
func newID() string { return "pre." + rand.Text() }

// TestDelayedDuplicateDelivery freezes, again and again for 0.5 to 1.5 s,
// either the revoker's links to NATS or replica r0's, with 100 ms of
// latency on both throughout. A frozen link holds what was sent on it and
// delivers it late on healing; the NATS client meanwhile declares the
// connection stale, reconnects and resends what it buffered. So publishes
// arrive late, after the client was told 503 and retried with the same
// Idempotency-Key, and twice (the resend and the retry); r0's ordered
// consumer is reset and redelivered from its last sequence. Besides
// properties 1-4: every event is stored in the stream once, however many
// times it was sent.
func TestDelayedDuplicateDelivery(t *testing.T) {
	e := newEnv(t, envOptions{proxied: true})
	_, rvProxies := e.proxiedRevoker(t)
	seen := e.watchStream(t)
	for _, p := range append(slices.Clone(rvProxies), e.proxies...) {
		p.SetLatency(100 * time.Millisecond)
	}
	e.start()
	freezes := 6 * e.sz.repeat
	for i := range freezes {
		e.waitAcks(t, 2, 30*time.Second)
		group, name := rvProxies, "revoker"
		if i%2 == 1 {
			group, name = e.proxies, "r0"
		}
		d := 500*time.Millisecond + mrand.N(time.Second)
		for _, p := range group {
			p.Partition()
		}
		hold(d)
		for _, p := range group {
			p.Heal()
		}
		t.Logf("froze the %s's links to NATS for %v", name, d.Round(time.Millisecond))
		drainAcks(e)
	}
	e.waitAcks(t, 2, 30*time.Second)
	hold(e.sz.phase)
	e.finish(t, "delayed and duplicate delivery", "100ms latency; the revoker's or r0's NATS links frozen 0.5-1.5 s, repeatedly (late publishes, client retries, reconnect resends, consumer redelivery)")

	if e.storedOnce(t, seen) == 0 {
		t.Errorf("no revocation was retried: the freezes did not exercise duplicate sends")
	}
}

// storedOnce checks that the stream stored every event once, however many
// times its revocation was sent, and returns how many revocations were sent
// more than once.
func (e *env) storedOnce(t *testing.T, seen *streamWatch) int {
	t.Helper()
	retried := 0
	for _, r := range e.rec.History().Revocations {
		if r.Attempts > 1 {
			retried++
		}
	}
	stored := seen.counts(t, e)
	for id, n := range stored {
		if n > 1 {
			t.Errorf("event %s stored %d times in the stream, want once", id, n)
		}
	}
	t.Logf("%d revocations sent more than once; %d events stored, each once", retried, len(stored))
	return retried
}

// TestKillRevoker kills the revoker again and again at a random moment of
// the workload (its NATS and client connections cut at once, as a killed
// process's are: a request may be caught after its Redis write and before
// its publish, or after its publish and before its answer) and starts a
// new one on the same Redis; the client retries with the same
// Idempotency-Key against the new one. Properties 1-4 must hold, and the
// stream must store every event once.
func TestKillRevoker(t *testing.T) {
	e := newEnv(t, envOptions{})
	seen := e.watchStream(t)
	e.start()
	kills := 5 * e.sz.repeat
	for range kills {
		e.waitAcks(t, 2, 30*time.Second)
		hold(mrand.N(e.sz.revokeTick)) // anywhere in a revocation's cycle
		e.rv.Load().crash()
		e.rv.Store(e.startRevoker(t, nil))
		drainAcks(e)
	}
	e.waitAcks(t, 2, 30*time.Second)
	hold(e.sz.phase)
	e.finish(t, "kill the revoker", fmt.Sprintf("the revoker's NATS and client connections cut at once, %d times, a new revoker each time; the client retries with the same key", kills))
	e.storedOnce(t, seen)
}
