package feed_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/feed"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
	"github.com/nats-io/nats.go/jetstream"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 20 * time.Second

// mapApplier is a test Applier: the set of applied event ids behind a mutex. Sync
// does nothing (every Apply is visible at once), unless failSync is set.
type mapApplier struct {
	// mu guards the fields below.
	mu       sync.Mutex
	events   map[string]struct{} // ids of the applied events
	calls    int                 // Apply calls, duplicates included
	failSync error               // returned by Sync when set
}

func newMapApplier() *mapApplier { return &mapApplier{events: map[string]struct{}{}} }

func (a *mapApplier) Apply(e events.Event) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	_, seen := a.events[e.ID]
	a.events[e.ID] = struct{}{}
	return !seen, nil
}

func (a *mapApplier) Sync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failSync
}

func (a *mapApplier) setFailSync(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failSync = err
}

func (a *mapApplier) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.events)
}

func (a *mapApplier) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.events[id]
	return ok
}

// ids returns the set of applied event ids.
func (a *mapApplier) ids() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := make(map[string]bool, len(a.events))
	for id := range a.events {
		s[id] = true
	}
	return s
}

// recObserver records what the feed reports.
type recObserver struct {
	// mu guards the fields below.
	mu       sync.Mutex
	applied  int
	rejected []error
}

func (o *recObserver) EventApplied(events.Event, time.Time, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.applied++
}

func (o *recObserver) EventRejected(_ string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejected = append(o.rejected, err)
}

// appliedCount is how many events the feed reported applied.
func (o *recObserver) appliedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.applied
}

func (o *recObserver) rejections() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.rejected...)
}

// streamOptions is the stream every test uses: MaxAge 2h.
var streamOptions = events.StreamOptions{MaxTokenLifetime: time.Hour}

// env is a JetStream server with the revocation stream and a client.
type env struct {
	srv *verifiertest.Server
	js  jetstream.JetStream
}

func newEnv(tb testing.TB, withStream bool) *env {
	tb.Helper()
	srv := verifiertest.RunJetStream(tb)
	if withStream {
		srv.EnsureStream(tb, streamOptions)
	}
	_, js := srv.Connect(tb)
	return &env{srv: srv, js: js}
}

// runFeed creates a feed with cfg (JetStream filled in when nil) and runs
// it until the test ends; Run must then return nil.
func runFeed(tb testing.TB, cfg feed.Config) *feed.Feed {
	tb.Helper()
	f, err := feed.New(cfg)
	if err != nil {
		tb.Fatalf("feed.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run returned %v, want nil after cancel", err)
			}
		case <-time.After(testTimeout):
			tb.Errorf("Run did not return within %s of cancel", testTimeout)
		}
	})
	return f
}

// waitReady waits for f to be ready within testTimeout.
func waitReady(tb testing.TB, f *feed.Feed) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := f.WaitReady(ctx); err != nil {
		tb.Fatalf("WaitReady: %v (status %+v)", err, f.Status())
	}
}

// tokenEvent returns the i-th test event of a run named prefix.
func tokenEvent(prefix string, i int) events.Event {
	now := time.Now()
	return events.NewToken(fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("%s-jti-%d", prefix, i), now.Add(time.Hour), now)
}

// publishMany publishes n events named prefix asynchronously, in windows,
// and returns their ids once every one is acknowledged.
func publishMany(tb testing.TB, js jetstream.JetStream, prefix string, n int) []string {
	tb.Helper()
	const window = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += window {
		futures := make([]jetstream.PubAckFuture, 0, window)
		for i := start; i < min(start+window, n); i++ {
			e := tokenEvent(prefix, i)
			m, err := events.NewMsg(ctx, verifiertest.Encoded(tb, e))
			if err != nil {
				tb.Fatalf("NewMsg: %v", err)
			}
			fut, err := js.PublishMsgAsync(m, jetstream.WithMsgID(e.ID))
			if err != nil {
				tb.Fatalf("PublishMsgAsync: %v", err)
			}
			futures = append(futures, fut)
			ids = append(ids, e.ID)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			tb.Fatalf("async publish not complete: %v", ctx.Err())
		}
		for _, fut := range futures {
			select {
			case <-fut.Ok():
			case err := <-fut.Err():
				tb.Fatalf("publish %s: %v", fut.Msg().Header.Get(events.HeaderMsgID), err)
			}
		}
	}
	return ids
}

// observedFeed runs a feed on e's stream with a map applier and a
// recording observer, and waits until it is ready.
func observedFeed(tb testing.TB, e *env) (*mapApplier, *recObserver, *feed.Feed) {
	tb.Helper()
	a, obs := newMapApplier(), &recObserver{}
	f := runFeed(tb, feed.Config{JetStream: e.js, Applier: a, Observer: obs})
	waitReady(tb, f)
	return a, obs, f
}
