package feed_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/feed"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestNewValidatesConfig(t *testing.T) {
	e := newEnv(t, false)
	tests := []struct {
		name    string
		cfg     feed.Config
		wantErr error
	}{
		{name: "ok", cfg: feed.Config{JetStream: e.js, Applier: newMapApplier()}},
		{name: "no jetstream", cfg: feed.Config{Applier: newMapApplier()}, wantErr: feed.ErrInvalidConfig},
		{name: "no applier", cfg: feed.Config{JetStream: e.js}, wantErr: feed.ErrInvalidConfig},
		{name: "negative min max age", cfg: feed.Config{JetStream: e.js, Applier: newMapApplier(), MinMaxAge: -time.Second}, wantErr: feed.ErrInvalidConfig},
		{name: "negative probe interval", cfg: feed.Config{JetStream: e.js, Applier: newMapApplier(), ProbeInterval: -time.Second}, wantErr: feed.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := feed.New(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New: err %v, want %v", err, tt.wantErr)
			}
			if (f == nil) != (tt.wantErr != nil) {
				t.Fatalf("New: feed %v with err %v", f, err)
			}
		})
	}
}

// TestReplay: events stored before the feed starts are all applied before
// it says ready, and not before.
func TestReplay(t *testing.T) {
	e := newEnv(t, true)
	const n = 3000
	ids := publishMany(t, e.js, "replay", n)
	a := newMapApplier()
	obs := &recObserver{}
	f, err := feed.New(feed.Config{JetStream: e.js, Applier: a, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if f.Ready() {
		t.Fatal("ready before Run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if got := a.len(); got != n {
		t.Fatalf("ready with %d events applied, want %d", got, n)
	}
	for _, id := range ids {
		if !a.has(id) {
			t.Fatalf("event %s not applied", id)
		}
	}
	st := f.Status()
	if !st.Ready || st.Applied != n || st.AppliedSeq != n || st.Rejected != 0 || st.ReplayDuration <= 0 {
		t.Fatalf("status %+v, want ready, %d applied through seq %d", st, n, n)
	}
	obs.mu.Lock()
	if obs.applied != n {
		t.Errorf("observer saw %d applied by the time the feed was ready, want %d", obs.applied, n)
	}
	obs.mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := f.Run(context.Background()); !errors.Is(err, feed.ErrRunning) {
		t.Fatalf("second Run: %v, want %v", err, feed.ErrRunning)
	}
}

// TestLive: events published after ready are applied promptly.
func TestLive(t *testing.T) {
	e := newEnv(t, true)
	a := newMapApplier()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a})
	waitReady(t, f)
	for i := range 20 {
		ev := tokenEvent("live", i)
		e.srv.Revoke(t, ev)
		eventually.True(t, testTimeout, "live event "+ev.ID, func() bool { return a.has(ev.ID) })
	}
	if st := f.Status(); st.Applied != 20 || st.AppliedSeq != 20 {
		t.Fatalf("status %+v, want 20 applied through seq 20", st)
	}
}

// TestEmptyStream: nothing to replay means ready at once.
func TestEmptyStream(t *testing.T) {
	e := newEnv(t, true)
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: newMapApplier()})
	waitReady(t, f)
	if st := f.Status(); st.Applied != 0 || st.LastSync.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

// TestRemovedTail: the messages that were the stream's head when the feed
// started may be removed (here: replaced by a newer message on the same
// subject, the stream keeping one per subject); readiness does not wait for
// their sequence.
func TestRemovedTail(t *testing.T) {
	e := newEnv(t, true)
	now := time.Now()
	// Same subject: the stream keeps only the last, sequence 3, and
	// sequences 1 and 2 are gone.
	for i := range 3 {
		e.srv.Revoke(t, events.NewSubject(fmt.Sprintf("sub-%d", i), "alice", now.Add(time.Duration(i)), now.Add(time.Duration(i))))
	}
	a := newMapApplier()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a})
	waitReady(t, f)
	if !a.has("sub-2") || a.len() != 1 {
		t.Fatalf("applied %v, want only sub-2", a.ids())
	}
}

// TestExpiredTail: the stream's newest message expired while an older one
// lives on (key revocations never expire). The stream's last sequence then
// names no message; the feed must still replay the key revocation before
// it reports ready, not take the stream for empty.
func TestExpiredTail(t *testing.T) {
	e := newEnv(t, true)
	now := time.Now()
	key := events.NewKey("key-1", "kid-1", now)
	e.srv.Revoke(t, key)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m, err := events.NewMsg(ctx, verifiertest.Encoded(t, events.NewToken("tok-1", "jti-1", now.Add(time.Hour), now)))
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(events.HeaderTTL, "1s")
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish with a TTL: %v", err)
	}
	stream, err := e.js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, testTimeout, "the token event to expire", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 1 && info.State.LastSeq == 2
	})
	a, obs, _ := observedFeed(t, e)
	if n := obs.appliedCount(); n != 1 || !a.has("key-1") {
		t.Fatalf("ready having applied %d events (%v), want the key revocation", n, a.ids())
	}
}

// TestMissingStream: a missing stream is not fatal; the feed stays not ready
// and attaches once the stream exists.
func TestMissingStream(t *testing.T) {
	e := newEnv(t, false)
	a := newMapApplier()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a})
	eventually.True(t, testTimeout, "the missing stream to be reported", func() bool {
		return strings.Contains(f.Status().LastError, "stream not found")
	})
	if f.Ready() {
		t.Fatal("ready without a stream")
	}
	e.srv.EnsureStream(t, streamOptions)
	waitReady(t, f)
	ev := tokenEvent("late", 0)
	e.srv.Revoke(t, ev)
	eventually.True(t, testTimeout, "event applied", func() bool { return a.has(ev.ID) })
}

// TestMinMaxAge: a stream that forgets events before tokens expire is
// refused.
func TestMinMaxAge(t *testing.T) {
	e := newEnv(t, true) // MaxAge 2h
	tests := []struct {
		name      string
		minMaxAge time.Duration
		wantErr   error
	}{
		{name: "longer than the stream keeps", minMaxAge: 3 * time.Hour, wantErr: feed.ErrMaxAgeTooShort},
		{name: "exactly what the stream keeps", minMaxAge: streamOptions.MaxAge()},
		{name: "check disabled", minMaxAge: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := feed.New(feed.Config{JetStream: e.js, Applier: newMapApplier(), MinMaxAge: tt.minMaxAge})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			if tt.wantErr == nil {
				if err := f.WaitReady(ctx); err != nil {
					t.Fatalf("WaitReady: %v", err)
				}
				cancel()
			}
			err = <-done
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "2h0m0s") {
				t.Errorf("error %q does not say what the stream keeps", err)
			}
		})
	}
}

// TestRejectsInvalidEvents: broken or misplaced events are skipped, counted
// and reported; later valid events still apply.
func TestRejectsInvalidEvents(t *testing.T) {
	e := newEnv(t, true)
	a, obs, f := observedFeed(t, e)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	subj, err := events.Subject(events.KindToken, "broken")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(ctx, subj, []byte(`{"v":1,"id":"x","kind":"tok`)); err != nil {
		t.Fatal(err)
	}
	// A valid event on another event's subject.
	misplaced := tokenEvent("misplaced", 0)
	data, err := events.Encode(misplaced)
	if err != nil {
		t.Fatal(err)
	}
	other, err := events.Subject(events.KindToken, "someone-else")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(ctx, other, data); err != nil {
		t.Fatal(err)
	}
	good := tokenEvent("good", 0)
	e.srv.Revoke(t, good)
	eventually.True(t, testTimeout, "valid event applied", func() bool { return a.has(good.ID) })

	if a.has(misplaced.ID) || a.len() != 1 {
		t.Fatalf("applied %v, want only %s", a.ids(), good.ID)
	}
	st := f.Status()
	if st.Rejected != 2 || st.Applied != 1 || st.AppliedSeq != 3 {
		t.Fatalf("status %+v, want 2 rejected, 1 applied through seq 3", st)
	}
	rej := obs.rejections()
	if len(rej) != 2 {
		t.Fatalf("observer saw %d rejections, want 2", len(rej))
	}
	wants := []error{events.ErrMalformed, feed.ErrWrongSubject}
	for i, want := range wants {
		if !errors.Is(rej[i], want) || !errors.Is(rej[i], events.ErrInvalid) {
			t.Errorf("rejection %d: %v, want %v and %v", i, rej[i], want, events.ErrInvalid)
		}
	}
}

// TestBatchMessages: a batch message's events are all applied and
// reported, counted at the message's one sequence; a batch with one
// broken event is refused whole (one rejection, nothing of it applied).
func TestBatchMessages(t *testing.T) {
	e := newEnv(t, true)
	a, obs, f := observedFeed(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	xs := make([]events.Encoded, 40)
	for i := range xs {
		x, err := events.NewEncoded(tokenEvent("batched", i))
		if err != nil {
			t.Fatal(err)
		}
		xs[i] = x
	}
	m, err := events.NewBatchMsg(ctx, xs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Broken: the same body with a last event cut short, on the subject
	// of that body, so only the line is wrong.
	bad := append(append([]byte{}, m.Data...), []byte("\n{\"v\":1,\"id\":\"cut\"")...)
	if _, err := e.js.Publish(ctx, events.BatchSubject(bad), bad); err != nil {
		t.Fatal(err)
	}
	good := tokenEvent("after", 0)
	e.srv.Revoke(t, good)
	eventually.True(t, testTimeout, "the event after the batches applied", func() bool { return a.has(good.ID) })

	if a.len() != 41 {
		t.Fatalf("applied %d events, want the batch's 40 and the last", a.len())
	}
	st := f.Status()
	if st.Applied != 41 || st.Rejected != 1 || st.AppliedSeq != 3 {
		t.Fatalf("status %+v, want 41 applied through seq 3, 1 rejected", st)
	}
	if rej, applied := obs.rejections(), obs.appliedCount(); applied != 41 || len(rej) != 1 || !errors.Is(rej[0], events.ErrMalformed) {
		t.Fatalf("observer saw %d applied and %v, want 41 and one malformed batch", applied, rej)
	}
}

// TestSyncFailure: while the applier cannot Sync, the feed keeps consuming
// but does not claim to be ready or fresh; it is once Sync succeeds.
func TestSyncFailure(t *testing.T) {
	e := newEnv(t, true)
	publishMany(t, e.js, "sync", 100)
	a := newMapApplier()
	a.setFailSync(errors.New("over capacity"))
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a, ProbeInterval: 50 * time.Millisecond})
	eventually.True(t, testTimeout, "events applied", func() bool { return a.len() == 100 })
	eventually.True(t, testTimeout, "sync error reported", func() bool {
		return strings.Contains(f.Status().LastError, "over capacity")
	})
	if st := f.Status(); st.Ready || !st.LastSync.IsZero() || st.AppliedSeq != 0 {
		t.Fatalf("status %+v while Sync fails, want not ready, never synced", st)
	}
	a.setFailSync(nil)
	waitReady(t, f)
	if st := f.Status(); st.AppliedSeq != 100 {
		t.Fatalf("status %+v, want applied through 100", st)
	}
}

// TestServerRestart: the server goes away mid-replay and comes back on the
// same port and store; every acknowledged event ends up applied, before and
// after the restart.
func TestServerRestart(t *testing.T) {
	e := newEnv(t, true)
	n := 20000
	if testing.Short() || raceEnabled {
		n = 5000
	}
	acked := publishMany(t, e.js, "before", n)
	a := newMapApplier()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a, ProbeInterval: 100 * time.Millisecond})
	eventually.True(t, testTimeout, "replay to start", func() bool { return a.len() > 0 })
	e.srv.Shutdown()
	applied := a.len()
	e.srv.Restart(t)
	acked = append(acked, publishMany(t, e.js, "after", 500)...)
	waitReady(t, f)
	eventually.True(t, testTimeout, "every acked event applied", func() bool { return a.len() == len(acked) })
	got := a.ids()
	for _, id := range acked {
		if !got[id] {
			t.Fatalf("acked event %s not applied", id)
		}
	}
	if len(got) != len(acked) {
		t.Fatalf("applied %d distinct events, acked %d", len(got), len(acked))
	}
	st := f.Status()
	if st.Applied < uint64(len(acked)) || st.Rejected != 0 {
		t.Fatalf("status %+v, want at least %d applied, none rejected", st, len(acked))
	}
	eventually.True(t, testTimeout, "applied seq at the head", func() bool { return f.Status().AppliedSeq == uint64(len(acked)) })
	t.Logf("shut down after %d of %d events; %d Apply calls for %d events", applied, n, st.Applied, len(acked))
}

// TestStaleness: staleness stays near the probe interval while the server
// is up, grows while it is down, and recovers after it comes back.
func TestStaleness(t *testing.T) {
	e := newEnv(t, true)
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: newMapApplier(), ProbeInterval: 100 * time.Millisecond})
	waitReady(t, f)
	const fresh = 600 * time.Millisecond
	for range 10 {
		eventually.True(t, testTimeout, "staleness under "+fresh.String(), func() bool { return f.Staleness() < fresh })
	}
	e.srv.Shutdown()
	eventually.True(t, testTimeout, "staleness over 1s", func() bool { return f.Staleness() > time.Second })
	e.srv.Restart(t)
	eventually.True(t, testTimeout, "staleness under "+fresh.String()+" again", func() bool { return f.Staleness() < fresh })
	ev := tokenEvent("after", 0)
	e.srv.Revoke(t, ev)
	eventually.True(t, testTimeout, "staleness under "+fresh.String()+" after an event", func() bool {
		return f.Status().Applied == 1 && f.Staleness() < fresh
	})
}

// TestFreshWhileEventsKeepComing: a probe's answer (the leader's last
// message) is often an event still on its way to the feed when events keep
// coming; the feed confirms freshness once it gets there instead of
// dropping the probe, so staleness stays near ProbeInterval.
func TestFreshWhileEventsKeepComing(t *testing.T) {
	e := newEnv(t, true)
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: newMapApplier(), ProbeInterval: 100 * time.Millisecond})
	waitReady(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			<-tick.C
			ev := tokenEvent("steady", n)
			m, err := events.NewMsg(ctx, verifiertest.Encoded(t, ev))
			if err == nil {
				_, err = e.js.PublishMsg(ctx, m)
			}
			if err != nil {
				return
			}
			n++
		}
	}()
	// Staleness sampled over 1.5 s of steady events stays under ten
	// probe intervals (it is about one while the feed keeps up).
	const bound = time.Second
	var worst time.Duration
	sample := time.NewTicker(10 * time.Millisecond)
	defer sample.Stop()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		<-sample.C
		worst = max(worst, f.Staleness())
	}
	cancel()
	n := <-published
	applied := f.Status().Applied
	t.Logf("%d events published, %d applied; worst staleness %v", n, applied, worst)
	if n < 100 || applied == 0 {
		t.Fatalf("only %d events published, %d applied: no steady stream", n, applied)
	}
	if worst >= bound {
		t.Errorf("staleness reached %v while events kept coming, want under %v", worst, bound)
	}
}

// TestTraceContext: the apply span continues the publisher's trace.
func TestTraceContext(t *testing.T) {
	e := newEnv(t, true)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	a := newMapApplier()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a, TracerProvider: tp})
	waitReady(t, f)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ctx, span := tp.Tracer("test").Start(ctx, "revoke")
	ev := tokenEvent("traced", 0)
	ack, err := events.Publish(ctx, e.js, ev)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	var got sdktrace.ReadOnlySpan
	eventually.True(t, testTimeout, "apply span", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == feed.SpanName {
				got = s
				return true
			}
		}
		return false
	})
	if got.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("apply span in trace %s, publisher in %s", got.SpanContext().TraceID(), span.SpanContext().TraceID())
	}
	if got.Parent().SpanID() != span.SpanContext().SpanID() {
		t.Errorf("apply span parent %s, want the publisher's span %s", got.Parent().SpanID(), span.SpanContext().SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range got.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	want := map[string]string{
		string(feed.AttrEventKind): string(events.KindToken),
		string(feed.AttrEventID):   ev.ID,
		string(feed.AttrStreamSeq): fmt.Sprint(ack.Sequence),
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
}

// TestReplaySpeed measures start → ready over a stream of 100k events (10k
// with -short or -race) with the test applier.
func TestReplaySpeed(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 10_000
	}
	e := newEnv(t, true)
	publishMany(t, e.js, "speed", n)
	a := newMapApplier()
	start := time.Now()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a})
	waitReady(t, f)
	took := time.Since(start)
	if got := a.len(); got != n {
		t.Fatalf("ready with %d events, want %d", got, n)
	}
	t.Logf("replayed %d events in %s (%.0f events/s); feed says %s", n, took, float64(n)/took.Seconds(), f.Status().ReplayDuration)
}

// BenchmarkReplay measures start → ready over a stream of 100k and 1M
// events with the test applier; one replay per iteration, the stream filled
// once.
func BenchmarkReplay(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			srv := verifiertest.RunJetStream(b)
			srv.EnsureStream(b, streamOptions)
			_, js := srv.Connect(b)
			publishMany(b, js, "bench", n)
			b.ResetTimer()
			for b.Loop() {
				replayOnce(b, js, n)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func replayOnce(b *testing.B, js jetstream.JetStream, n int) {
	a := newMapApplier()
	f, err := feed.New(feed.Config{JetStream: js, Applier: a})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if err := f.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if a.len() != n {
		b.Fatalf("replayed %d, want %d", a.len(), n)
	}
}

// TestStreamRecreated: a stream deleted and created again restarts its
// sequence numbers; the feed replays it from the start instead of resuming
// after a sequence of the old stream.
func TestStreamRecreated(t *testing.T) {
	e := newEnv(t, true)
	publishMany(t, e.js, "old", 5)
	a := newMapApplier()
	f := runFeed(t, feed.Config{JetStream: e.js, Applier: a, ProbeInterval: 50 * time.Millisecond})
	waitReady(t, f)
	eventually.True(t, testTimeout, "old events applied", func() bool { return a.len() == 5 })

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := e.js.DeleteStream(ctx, events.DefaultStreamName); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, testTimeout, "the deleted stream to be noticed", func() bool {
		return strings.Contains(f.Status().LastError, "stream not found")
	})
	e.srv.EnsureStream(t, streamOptions)
	ids := publishMany(t, e.js, "new", 3) // sequences 1..3 again
	eventually.True(t, testTimeout, "events of the new stream applied", func() bool {
		for _, id := range ids {
			if !a.has(id) {
				return false
			}
		}
		return true
	})
	eventually.True(t, testTimeout, "applied seq of the new stream", func() bool { return f.Status().AppliedSeq == 3 })
}

// TestConnectionClosed: a connection closed by its owner ends Run with an
// error saying so.
func TestConnectionClosed(t *testing.T) {
	e := newEnv(t, true)
	nc, js := e.srv.Connect(t)
	f, err := feed.New(feed.Config{JetStream: js, Applier: newMapApplier()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run: %v, want %v", err, nats.ErrConnectionClosed)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the connection closed")
	}
}

// TestRunEndsAfterRestart: Run returns promptly when cancelled just after
// it recovered from a server restart that outlasted two heartbeats, while
// the ordered consumer may still be recreating itself. Before the reader
// watched a context of its own, Run hung in 2 of 3 runs of 8 rounds (in
// round 3 or 4), held by a subscription nats.go created after Stop.
func TestRunEndsAfterRestart(t *testing.T) {
	e := newEnv(t, true)
	for i := range 4 {
		f, err := feed.New(feed.Config{JetStream: e.js, Applier: newMapApplier(), ProbeInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		waitReady(t, f)
		e.srv.Shutdown()
		eventually.True(t, testTimeout, "stale while the server is down", func() bool { return f.Staleness() > 2500*time.Millisecond })
		e.srv.Restart(t)
		eventually.True(t, testTimeout, "fresh again", func() bool { return f.Staleness() < 500*time.Millisecond })
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Run: %v, want nil after cancel", i, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("round %d: Run did not return within 2s of cancel", i)
		}
	}
}
