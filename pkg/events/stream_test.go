package events_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStreamConfig(t *testing.T) {
	cfg, err := events.StreamConfig(events.StreamOptions{MaxTokenLifetime: 15 * time.Minute, Leeway: 5 * time.Second, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxAge != 15*time.Minute+5*time.Second+time.Hour {
		t.Errorf("MaxAge = %v", cfg.MaxAge)
	}
	if cfg.Storage != jetstream.FileStorage || cfg.Retention != jetstream.LimitsPolicy || cfg.MaxMsgsPerSubject != 1 ||
		!cfg.DenyDelete || !cfg.DenyPurge || cfg.Replicas != 3 || !cfg.AllowMsgTTL || cfg.Subjects[0] != "revocations.>" {
		t.Errorf("unexpected config %+v", cfg)
	}
	for _, bad := range []events.StreamOptions{{}, {MaxTokenLifetime: time.Minute, Replicas: 7}, {MaxTokenLifetime: time.Minute, Leeway: -1}} {
		if _, err := events.StreamConfig(bad); err == nil {
			t.Errorf("StreamConfig(%+v) accepted", bad)
		}
	}
}

func TestEnsureStreamIsIdempotent(t *testing.T) {
	srv := verifiertest.RunJetStream(t)
	_, js := srv.Connect(t)
	ctx := ctxT(t)
	o := events.StreamOptions{MaxTokenLifetime: 10 * time.Minute}
	for range 3 {
		if _, err := events.EnsureStream(ctx, js, o); err != nil {
			t.Fatalf("EnsureStream: %v", err)
		}
	}
	// A longer token lifetime later updates MaxAge in place.
	o.MaxTokenLifetime = time.Hour
	s, err := events.EnsureStream(ctx, js, o)
	if err != nil {
		t.Fatalf("EnsureStream with a new lifetime: %v", err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Fatalf("MaxAge after update = %v, want 2h", got)
	}
}

// TestPublisherKeepsMostRestrictive: the stream keeps one message per
// subject, so publishing an older epoch after a newer one must not replace
// it; a retried publish is stored once.
func TestPublisherKeepsMostRestrictive(t *testing.T) {
	srv := verifiertest.RunJetStream(t)
	srv.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	_, js := srv.Connect(t)
	ctx := ctxT(t)
	now := time.Now()
	newer := events.NewSubject("sub.newer", "alice", now, now)
	older := events.NewSubject("sub.older", "alice", now.Add(-time.Minute), now)
	ack1, err := events.Publish(ctx, js, newer)
	if err != nil {
		t.Fatal(err)
	}
	ack2, err := events.Publish(ctx, js, older)
	if err != nil {
		t.Fatal(err)
	}
	if !ack2.Duplicate || ack2.Sequence != ack1.Sequence {
		t.Fatalf("older epoch: ack %+v, want the newer event's sequence %d as a duplicate", ack2, ack1.Sequence)
	}
	ack3, err := events.Publish(ctx, js, newer)
	if err != nil || ack3.Sequence != ack1.Sequence {
		t.Fatalf("retry of the same event: %+v, %v", ack3, err)
	}
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := newer.Subject()
	last, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Decode(last.Data)
	if err != nil || !got.Epoch.Equal(newer.Epoch) {
		t.Fatalf("stream holds %+v (%v), want the newer epoch", got, err)
	}
	if last.Header.Get(events.HeaderMsgID) != newer.ID {
		t.Fatalf("Nats-Msg-Id = %q, want %q", last.Header.Get(events.HeaderMsgID), newer.ID)
	}
	// A newer epoch replaces it.
	newest := events.NewSubject("sub.newest", "alice", now.Add(time.Millisecond), now.Add(time.Millisecond))
	ack4, err := events.Publish(ctx, js, newest)
	if err != nil || ack4.Duplicate || ack4.Sequence <= ack1.Sequence {
		t.Fatalf("newest epoch: %+v, %v", ack4, err)
	}
}

// TestPublishExpectFirst: a publish that expects to be the subject's first
// event keeps the publisher's rules when the guess is wrong: an event the
// stream holds that covers it wins, an older one is replaced.
func TestPublishExpectFirst(t *testing.T) {
	_, js, ctx, p := publisherEnv(t)
	now := time.Now()
	encode := func(e events.Event) events.Encoded {
		x, err := events.NewEncoded(e)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	// Right guess: published.
	newer := events.NewSubject("first.newer", "dave", now, now)
	ack1, err := p.PublishEncoded(ctx, encode(newer), events.ExpectFirst())
	if err != nil || ack1.Duplicate {
		t.Fatalf("first event: %+v, %v", ack1, err)
	}
	// Wrong guess, and the stream's event covers it: not published.
	older := events.NewSubject("first.older", "dave", now.Add(-time.Minute), now)
	ack2, err := p.PublishEncoded(ctx, encode(older), events.ExpectFirst())
	if err != nil || !ack2.Duplicate || ack2.Sequence != ack1.Sequence {
		t.Fatalf("older epoch expecting first: %+v, %v; want the newer event's sequence %d as a duplicate", ack2, err, ack1.Sequence)
	}
	// Wrong guess, and it is newer: published after the stream's event.
	newest := events.NewSubject("first.newest", "dave", now.Add(time.Second), now.Add(time.Second))
	ack3, err := p.PublishEncoded(ctx, encode(newest), events.ExpectFirst())
	if err != nil || ack3.Duplicate || ack3.Sequence <= ack1.Sequence {
		t.Fatalf("newer epoch expecting first: %+v, %v", ack3, err)
	}
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := newest.Subject()
	last, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := events.Decode(last.Data); err != nil || !got.Epoch.Equal(newest.Epoch) || last.Sequence != ack3.Sequence {
		t.Fatalf("stream holds %+v at %d (%v), want the newest epoch at %d", got, last.Sequence, err, ack3.Sequence)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream info %+v, %v: want 1 message (one per subject)", info, err)
	}
}

// TestConcurrentPublishersConverge: many publishers racing on one subject
// with different epochs leave the largest in the stream.
func TestConcurrentPublishersConverge(t *testing.T) {
	srv := verifiertest.RunJetStream(t)
	srv.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	ctx := ctxT(t)
	base := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := range 4 {
		_, js := srv.Connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				epoch := base.Add(time.Duration(i*4+w) * time.Millisecond)
				e := events.NewSubject("sub."+epoch.Format("150405.000000000"), "bob", epoch, epoch)
				if _, err := events.Publish(ctx, js, e); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, js := srv.Connect(t)
	s, _ := js.Stream(ctx, events.DefaultStreamName)
	subj, _ := events.Subject(events.KindSubject, "bob")
	last, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := events.Decode(last.Data)
	if want := base.Add(39 * time.Millisecond); !got.Epoch.Equal(want) {
		t.Fatalf("stream holds epoch %v, want the largest %v", got.Epoch, want)
	}
}

// TestKeyRevocationOutlivesMaxAge: events leave the stream after MaxAge,
// except key revocations, published with "Nats-TTL: never".
func TestKeyRevocationOutlivesMaxAge(t *testing.T) {
	srv := verifiertest.RunJetStream(t)
	srv.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Second, Margin: time.Nanosecond})
	_, js := srv.Connect(t)
	ctx := ctxT(t)
	now := time.Now()
	if _, err := events.Publish(ctx, js, events.NewToken("tok.1", "j1", now.Add(time.Second), now)); err != nil {
		t.Fatal(err)
	}
	if _, err := events.Publish(ctx, js, events.NewKey("key.1", "k1", now)); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, "the token event to age out", func() bool {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs == 1
	})
	subj, _ := events.Subject(events.KindKey, "k1")
	if _, err := s.GetLastMsgForSubject(ctx, subj); err != nil {
		t.Fatalf("key revocation gone after MaxAge: %v", err)
	}
	tsubj, _ := events.Subject(events.KindToken, "j1")
	if _, err := s.GetLastMsgForSubject(ctx, tsubj); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("token event still there: %v", err)
	}
}

// TestPublishAll: many events published together each get the outcome
// PublishEncoded would give: a new event its own sequence, one marked First
// whose subject does hold an event (a wrong guess) and one not marked First
// the publisher's rules (a covering event wins, a newer one replaces it), a
// key revocation its "Nats-TTL: never"; and a stream that does not exist
// fails every one.
// TestPublishAll: the First events that may share a message go out in
// batch messages (256 to a message), each event acknowledged with its
// batch's sequence and found in that message; a key revocation goes alone
// with its TTL; an event not marked First takes the read-then-publish
// path; an older epoch wrongly marked First, alone, is answered with the
// stream's newer event as a duplicate.
func TestPublishAll(t *testing.T) {
	srv, js, ctx, p := publisherEnv(t)
	now := time.Now()
	held := srv.Revoke(t, events.NewSubject("all.held", "erin", now, now))
	srv.Revoke(t, events.NewSubject("all.old", "frank", now.Add(-time.Minute), now))

	var out []events.Outgoing
	for i := range 300 {
		out = append(out, events.Outgoing{Encoded: verifiertest.Encoded(t, events.NewSession(fmt.Sprintf("all.s%d", i), fmt.Sprintf("s%d", i), now)), First: true})
	}
	out = append(out,
		events.Outgoing{Encoded: verifiertest.Encoded(t, events.NewSubject("all.newer", "frank", now, now))},
		events.Outgoing{Encoded: verifiertest.Encoded(t, events.NewKey("all.k", "k-all", now)), First: true},
	)
	res := p.PublishAll(ctx, out)
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[uint64]int{} // batch message → events acknowledged with it
	for i, r := range res[:300] {
		if r.Err != nil || r.Ack == nil || r.Ack.Duplicate {
			t.Fatalf("session %d: %+v, %v; want published", i, r.Ack, r.Err)
		}
		msgs[r.Ack.Sequence]++
	}
	carried := carriedIDs(t, s, slices.Collect(maps.Keys(msgs)))
	for i, r := range res[:300] {
		if !carried[r.Ack.Sequence][out[i].Encoded.Event().ID] {
			t.Fatalf("session %d: not in the message at its sequence %d", i, r.Ack.Sequence)
		}
	}
	if len(msgs) != 2 || res[0].Ack.Sequence != res[255].Ack.Sequence || msgs[res[299].Ack.Sequence] != 300-events.MaxBatchEvents {
		t.Errorf("300 sessions in messages %v, want two batches of %d and %d", msgs, events.MaxBatchEvents, 300-events.MaxBatchEvents)
	}
	if r := res[300]; r.Err != nil || r.Ack.Duplicate {
		t.Errorf("a newer epoch: %+v, %v; want published", r.Ack, r.Err)
	}
	if r := res[301]; r.Err != nil || r.Ack.Duplicate {
		t.Errorf("a key: %+v, %v; want published", r.Ack, r.Err)
	}
	subj, _ := events.Subject(events.KindSubject, "frank")
	if last, err := s.GetLastMsgForSubject(ctx, subj); err != nil || last.Sequence != res[300].Ack.Sequence {
		t.Errorf("frank's subject holds %+v (%v), want the newer epoch", last, err)
	}
	subj, _ = events.Subject(events.KindKey, "k-all")
	if last, err := s.GetLastMsgForSubject(ctx, subj); err != nil || last.Header.Get(events.HeaderTTL) != "never" {
		t.Errorf("key event %+v, %v; want Nats-TTL: never", last, err)
	}

	older := events.Outgoing{Encoded: verifiertest.Encoded(t, events.NewSubject("all.older", "erin", now.Add(-time.Second), now)), First: true}
	if r := p.PublishAll(ctx, []events.Outgoing{older})[0]; r.Err != nil || !r.Ack.Duplicate || r.Ack.Sequence != held.Sequence {
		t.Errorf("an older epoch marked First: %+v, %v; want the held event's sequence %d as a duplicate", r.Ack, r.Err, held.Sequence)
	}

	for i, r := range events.NewPublisher(js, "NO_SUCH_STREAM").PublishAll(ctx, out[:2]) {
		if r.Err == nil {
			t.Errorf("publish %d to a missing stream: %+v, want an error", i, r.Ack)
		}
	}
}

// carriedIDs reads the stream's message at each of seqs once, by the
// consumers' rule, and returns the ids of the events each carries.
func carriedIDs(t *testing.T, s jetstream.Stream, seqs []uint64) map[uint64]map[string]bool {
	t.Helper()
	out := make(map[uint64]map[string]bool, len(seqs))
	for _, seq := range seqs {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		evs, err := events.MsgEvents(m.Subject, m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out[seq] = map[string]bool{}
		for _, ev := range evs {
			out[seq][ev.ID] = true
		}
	}
	return out
}

// TestPublishAllConcurrent: eight batches of 1,000 published at once by
// one Publisher are all acknowledged, each event found in the batch
// message at its sequence, four messages to a batch. Together they could
// hold more asynchronous publishes than nats.go lets one connection have
// pending (4,000) were they sent one to a message, so the Publisher bounds
// them across calls (docs/propagation.md).
func TestPublishAllConcurrent(t *testing.T) {
	_, js, ctx, p := publisherEnv(t)
	now := time.Now()
	const batches, size = 8, 1000
	results := make([][]events.Published, batches)
	outs := make([][]events.Outgoing, batches)
	var wg sync.WaitGroup
	for b := range batches {
		out := make([]events.Outgoing, size)
		for i := range out {
			id := fmt.Sprintf("conc.%d.%d", b, i)
			out[i] = events.Outgoing{Encoded: verifiertest.Encoded(t, events.NewSession(id, id, now)), First: true}
		}
		outs[b] = out
		wg.Go(func() { results[b] = p.PublishAll(ctx, out) })
	}
	wg.Wait()
	msgs := map[uint64]bool{}
	for b, res := range results {
		for i, r := range res {
			if r.Err != nil || r.Ack == nil || r.Ack.Duplicate {
				t.Fatalf("batch %d, event %d: %+v, %v; want published", b, i, r.Ack, r.Err)
			}
			msgs[r.Ack.Sequence] = true
		}
	}
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	carried := carriedIDs(t, s, slices.Collect(maps.Keys(msgs)))
	for b, res := range results {
		for i, r := range res {
			if !carried[r.Ack.Sequence][outs[b][i].Encoded.Event().ID] {
				t.Fatalf("batch %d, event %d: not in the message at its sequence %d", b, i, r.Ack.Sequence)
			}
		}
	}
	if want := batches * ((size + events.MaxBatchEvents - 1) / events.MaxBatchEvents); len(msgs) != want {
		t.Errorf("%d messages, want %d", len(msgs), want)
	}
}

// publisherEnv is a JetStream server with the revocation stream, a
// connection to it, the test's context and a Publisher on that stream.
func publisherEnv(t *testing.T) (*verifiertest.Server, jetstream.JetStream, context.Context, *events.Publisher) {
	t.Helper()
	srv := verifiertest.RunJetStream(t)
	srv.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	_, js := srv.Connect(t)
	return srv, js, ctxT(t), events.NewPublisher(js, "")
}
