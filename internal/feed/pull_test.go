package feed_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/feed"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestLostFirstPull: a pull request the server drops without a word (in a
// cluster that formed moments ago, one published before the new consumer's
// interest reached the client's server; here, a subject mapping that sends
// every pull request nowhere) is noticed within about pullCheckAfter, not
// after two missed heartbeats, and the feed attaches anew; once pulls get
// through again it is ready at the next attachment.
func TestLostFirstPull(t *testing.T) {
	srv, js := lostPullServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := events.Publish(ctx, js, tokenEvent("lost", 0)); err != nil {
		t.Fatal(err)
	}
	// Every pull request of the revocation stream goes nowhere.
	const pulls = "$JS.API.CONSUMER.MSG.NEXT.REVOCATIONS.*"
	if err := srv.GlobalAccount().AddMapping(pulls, "nowhere.$1"); err != nil {
		t.Fatal(err)
	}
	f := runFeed(t, feed.Config{JetStream: js, Applier: newMapApplier()})
	start := time.Now()
	eventually.True(t, testTimeout, "the feed to notice its lost pull request", func() bool { return f.Status().LostPulls > 0 })
	// Two missed 1 s heartbeats would take 2 s; the check takes one
	// pullCheckAfter plus a round trip.
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("lost pull noticed after %s, want well under the 2 s of two missed heartbeats", d)
	}
	if f.Ready() {
		t.Fatal("ready though no message was ever delivered")
	}
	srv.GlobalAccount().RemoveMapping(pulls)
	waitReady(t, f)
	if st := f.Status(); st.Applied != 1 {
		t.Fatalf("status %+v, want the one event applied", st)
	}
}

// TestNotReadyWithoutPull: on an empty stream, where no message can show
// that pulls get through, a starting feed is not ready while the server
// drops its pull requests (it attaches anew every pullCheckAfter, counting
// LostPulls), and is ready once they get through; an event published then
// is applied without waiting for heartbeats.
func TestNotReadyWithoutPull(t *testing.T) {
	srv, js := lostPullServer(t)
	const pulls = "$JS.API.CONSUMER.MSG.NEXT.REVOCATIONS.*"
	if err := srv.GlobalAccount().AddMapping(pulls, "nowhere.$1"); err != nil {
		t.Fatal(err)
	}
	f := runFeed(t, feed.Config{JetStream: js, Applier: newMapApplier()})
	eventually.True(t, testTimeout, "the feed to notice its lost pull request twice", func() bool { return f.Status().LostPulls >= 2 })
	if f.Ready() {
		t.Fatal("ready on an empty stream though the server never held a pull request of the feed")
	}
	srv.GlobalAccount().RemoveMapping(pulls)
	waitReady(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	if _, err := events.Publish(ctx, js, tokenEvent("late", 0)); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, testTimeout, "the event to be applied", func() bool { return f.Status().Applied == 1 })
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("event applied %s after its publish, want well under a heartbeat (1 s)", d)
	}
}

// lostPullServer starts a JetStream server of its own (the test changes its
// account's subject mappings) with the revocation stream, and a client.
func lostPullServer(t *testing.T) (*server.Server, jetstream.JetStream) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := events.EnsureStream(ctx, js, streamOptions); err != nil {
		t.Fatal(err)
	}
	return srv, js
}
