package verifiertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestJetStreamRestart: events revoked through the helper are stored, and
// survive a shutdown and a restart on the same port and store directory;
// the helper's own connections reconnect by themselves.
func TestJetStreamRestart(t *testing.T) {
	s := verifiertest.RunJetStream(t)
	s.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	_, js := s.Connect(t)
	now := time.Now()

	ack := s.Revoke(t, events.NewSession("ev-1", "sid-1", now))
	if ack.Stream != events.DefaultStreamName || ack.Sequence != 1 {
		t.Fatalf("ack %+v, want %s seq 1", ack, events.DefaultStreamName)
	}
	// A retried publish of the same event is stored once.
	if ack := s.Revoke(t, events.NewSession("ev-1", "sid-1", now)); !ack.Duplicate {
		t.Fatalf("ack %+v of a retried event, want Duplicate", ack)
	}

	url := s.URL()
	s.Shutdown()
	s.Shutdown() // idempotent
	s.Restart(t)
	if s.URL() != url {
		t.Fatalf("URL %s after restart, want %s", s.URL(), url)
	}
	ack = s.Revoke(t, events.NewSession("ev-2", "sid-2", now))
	if ack.Sequence != 2 {
		t.Fatalf("ack %+v after restart, want seq 2", ack)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().State.Msgs; got != 2 {
		t.Fatalf("stream holds %d messages after restart, want 2", got)
	}
}
