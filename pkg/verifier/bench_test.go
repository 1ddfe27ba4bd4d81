package verifier

import (
	"context"
	"crypto"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// poolSize is how many distinct tokens a first-sight benchmark cycles
// through; the verified-token cache is emptied (timer stopped) after each
// cycle, so every timed Verify sees its token for the first time. Large
// pools keep those pauses rare; RS256 tokens are slow to sign, so fewer.
func poolSize(alg string) int {
	if alg == RS256 {
		return 4096
	}
	return 16384
}

type benchWorld struct {
	e      *env
	v      *Verifier
	tokens []string
	key    crypto.PublicKey
}

// benchWorlds caches one world per algorithm across -count runs: signing
// 2048 RS256 tokens takes seconds.
var benchWorlds sync.Map

func world(b *testing.B, alg string) *benchWorld {
	if w, ok := benchWorlds.Load(alg); ok {
		return w.(*benchWorld)
	}
	// The world outlives this benchmark: it is built on a testing.TB whose
	// cleanups run at the end of the whole benchmark binary (see TestMain).
	tb := benchTB
	e := newEnv(tb, verifiertest.WithAlgorithm(alg))
	v := e.verifier(tb, func(c *Config) {
		c.Algorithms = []string{alg}
		c.Keys = static(tb, Key{ID: e.iss.KeyID(), Algorithm: alg, Public: e.iss.PublicKey()})
	})
	w := &benchWorld{e: e, v: v, key: e.iss.PublicKey()}
	for range poolSize(alg) {
		w.tokens = append(w.tokens, e.iss.Token(tb, verifiertest.TokenOptions{}))
	}
	benchWorlds.Store(alg, w)
	return w
}

var benchAlgs = []string{EdDSA, ES256, RS256}

// BenchmarkVerify measures Verify on tokens seen for the first time (full
// parse and signature check) and on a token seen before (cache hit: expiry
// and revocation checks only).
func BenchmarkVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		w := world(b, alg)
		ctx := context.Background()
		b.Run(alg+"/first", func(b *testing.B) {
			resetTokenCache(w.v)
			b.ReportAllocs()
			b.ResetTimer()
			n := len(w.tokens)
			for i := range b.N {
				if i > 0 && i%n == 0 {
					b.StopTimer()
					resetTokenCache(w.v)
					b.StartTimer()
				}
				if _, err := w.v.Verify(ctx, w.tokens[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/repeat", func(b *testing.B) {
			raw := w.tokens[0]
			if _, err := w.v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := w.v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// resetTokenCache replaces v's verified-token cache with an empty one. Only
// for single-goroutine benchmarks: nothing else may be using v.
func resetTokenCache(v *Verifier) {
	old := v.checker.tokens
	v.checker.tokens = newTokenCache(v.cfg.TokenCacheBytes)
	old.close()
}

// BenchmarkGolangJWT is the baseline: plain golang-jwt ParseWithClaims of the
// same tokens with the same checks (alg allow-list, iss, aud, exp required,
// iat, leeway) and the key known in advance.
func BenchmarkGolangJWT(b *testing.B) {
	for _, alg := range benchAlgs {
		w := world(b, alg)
		p := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(w.e.iss.Issuer()),
			jwt.WithAudience(w.e.iss.Audience()), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
			jwt.WithLeeway(DefaultLeeway))
		keyfunc := func(*jwt.Token) (any, error) { return w.key, nil }
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				var c jwt.RegisteredClaims
				if _, err := p.ParseWithClaims(w.tokens[i%len(w.tokens)], &c, keyfunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyParallel is BenchmarkVerify/repeat from all procs; run it
// with -cpu 1,2.
func BenchmarkVerifyParallel(b *testing.B) {
	for _, alg := range benchAlgs {
		w := world(b, alg)
		raw := w.tokens[1]
		if _, err := w.v.Verify(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
		b.Run(alg+"/repeat", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := w.v.Verify(ctx, raw); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReplay measures a verifier's start over a stream of live
// revocations (subject, session and token events mixed), against the floor
// set by the client library, in one run over the same 1M-message stream:
//
//   - raw-1M: a plain jetstream ordered consumer on a fresh connection
//     reading every message to the stream's last sequence, only counting;
//   - verifier-1M: a verifier from New to ready, with the heap held per
//     revocation once ready;
//   - verifier-100k: the same over a stream of 100k.
//
// Each reports s-to-ready (raw: to the last message).
func BenchmarkReplay(b *testing.B) {
	const n = 1_000_000
	b.Run("raw-1M", func(b *testing.B) {
		e := replayWorld(n)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			replayRaw(b, e, n)
			b.ReportMetric(time.Since(start).Seconds(), "s-to-ready")
		}
	})
	b.Run("verifier-1M", func(b *testing.B) { benchReplayVerifier(b, n) })
	b.Run("verifier-100k", func(b *testing.B) { benchReplayVerifier(b, 100_000) })
}

// replayRaw reads e's stream, of n messages, with an ordered consumer the
// way the jetstream package documents (Messages and Next, default pull
// options), and checks it reached the stream's last message.
func replayRaw(b *testing.B, e *env, n int) {
	nc, err := nats.Connect(e.srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		b.Fatal(err)
	}
	state := stream.CachedInfo().State
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	var msg jetstream.Msg
	for count := uint64(0); count < state.Msgs; count++ {
		if msg, err = it.Next(); err != nil {
			b.Fatal(err)
		}
	}
	meta, err := msg.Metadata()
	if err != nil || state.Msgs != uint64(n) || meta.Sequence.Stream != state.LastSeq {
		b.Fatalf("read %d messages to seq %v (%v), want %d to %d", state.Msgs, meta, err, n, state.LastSeq)
	}
}

// benchReplayVerifier measures a verifier from New to ready over n live
// revocations, and the heap it holds per revocation.
func benchReplayVerifier(b *testing.B, n int) {
	e := replayWorld(n)
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		cfg := e.config(benchTB)
		cfg.Capacity = 2 * n
		start := time.Now()
		v, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- v.Run(ctx) }()
		readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
		if err := v.WaitReady(readyCtx); err != nil {
			b.Fatalf("not ready within a minute: %v (health %+v)", err, v.Health())
		}
		readyCancel()
		elapsed := time.Since(start)
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if h := v.Health(); h.Held < int64(n) {
			b.Fatalf("ready with %d held, want %d", h.Held, n)
		}
		b.ReportMetric(elapsed.Seconds(), "s-to-ready")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/revocation")
		cancel()
		<-done
		v.Close()
		b.StartTimer()
	}
}

// replayWorlds caches one stream per size across -count runs: publishing
// 1M events takes far longer than replaying them.
var replayWorlds sync.Map

func replayWorld(n int) *env {
	if e, ok := replayWorlds.Load(n); ok {
		return e.(*env)
	}
	e := newEnv(benchTB)
	publishMany(benchTB, e.js, n)
	replayWorlds.Store(n, e)
	return e
}

// publishMany publishes n distinct live revocations with async publishes.
func publishMany(b testing.TB, js jetstream.JetStream, n int) {
	b.Helper()
	now := time.Now()
	for i := range n {
		var ev events.Event
		id := fmt.Sprintf("bench.%d", i)
		switch i % 3 {
		case 0:
			ev = events.NewToken(id, "jti-"+id, now.Add(30*time.Minute), now)
		case 1:
			ev = events.NewSession(id, "sid-"+id, now)
		default:
			ev = events.NewSubject(id, "sub-"+id, now, now)
		}
		m, err := events.NewMsg(context.Background(), encodedEvent(b, ev))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		if i%2_000 == 1_999 { // below the default 4000 outstanding async publishes
			waitPublished(b, js)
		}
	}
	waitPublished(b, js)
}

func waitPublished(b testing.TB, js jetstream.JetStream) {
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("async publishes not acknowledged within a minute")
	}
}

// encodedEvent is events.NewEncoded of an event the benchmark built valid.
func encodedEvent(tb testing.TB, ev events.Event) events.Encoded {
	tb.Helper()
	x, err := events.NewEncoded(ev)
	if err != nil {
		tb.Fatalf("NewEncoded(%s): %v", ev.ID, err)
	}
	return x
}
