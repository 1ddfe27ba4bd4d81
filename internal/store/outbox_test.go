package store

import (
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestOutbox: Record enqueues every event it records, in the same step; a
// drainer gets it only after the grace and once per lease; Delivered removes
// it only if it still holds the event published.
func TestOutbox(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now()
	evs := []events.Event{
		events.NewSession("rev.a", "sid-a", now),
		events.NewSubject("rev.b", "bob", now, now),
		events.NewToken("rev.c", "jti-c", now.Add(time.Hour), now),
		events.NewKey("rev.d", "kid-d", now),
	}
	for _, ev := range evs {
		if _, err := e.st.Record(ctx, verifiertest.Encoded(t, ev), time.Second, nil); err != nil {
			t.Fatalf("Record(%s): %v", ev.ID, err)
		}
	}
	st, err := e.st.Outbox(ctx)
	if err != nil || st.Depth != 4 || st.Oldest.IsZero() || time.Since(st.Oldest) > 5*time.Second {
		t.Fatalf("Outbox = %+v, %v; want depth 4 and a recent oldest", st, err)
	}

	// Within the grace the recording request publishes; drainers wait.
	got, err := e.st.ClaimOutbox(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("ClaimOutbox within the grace = %d entries, %v; want none", len(got), err)
	}
	after := time.Now().Add(OutboxGrace + 10*time.Millisecond)
	got, err = e.st.ClaimOutbox(ctx, after, time.Minute, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("ClaimOutbox(3) = %d entries, %v; want 3", len(got), err)
	}
	claimed := map[string]OutboxEntry{}
	for _, en := range got {
		claimed[en.Event.Event().ID] = en
		if en.QueuedAt.IsZero() || en.QueuedAt.After(time.Now()) {
			t.Errorf("%s: QueuedAt %s", en.Event.Event().ID, en.QueuedAt)
		}
	}
	// Leased: the next claim gets only the fourth; after the lease, all.
	rest, err := e.st.ClaimOutbox(ctx, after, time.Minute, 10)
	if err != nil || len(rest) != 1 || !claimed[rest[0].Event.Event().ID].Event.IsZero() {
		t.Fatalf("second claim = %+v, %v; want the one entry not leased", rest, err)
	}
	again, err := e.st.ClaimOutbox(ctx, after.Add(2*time.Minute), time.Minute, 10)
	if err != nil || len(again) != 4 {
		t.Fatalf("claim after the lease = %d entries, %v; want 4", len(again), err)
	}
	for _, en := range again {
		want := evs[0]
		for _, ev := range evs {
			if ev.ID == en.Event.Event().ID {
				want = ev
			}
		}
		if !en.Event.Event().Equal(want) {
			t.Errorf("entry %s = %+v, want %+v", en.Event.Event().ID, en.Event, want)
		}
	}

	// A retry replaced rev.a's entry with a reissued event: delivering the
	// old one must not remove the new one.
	old := again[0]
	for _, en := range again {
		if en.Event.Event().ID == "rev.a" {
			old = en
		}
	}
	reissued, err := old.Event.Reissued(now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Record(ctx, reissued, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.st.Delivered(ctx, old.Event); err != nil || ok {
		t.Fatalf("Delivered(old event) = %t, %v; want not removed", ok, err)
	}
	for _, en := range again {
		if en.Event.Event().ID == "rev.a" {
			continue
		}
		if ok, err := e.st.Delivered(ctx, en.Event); err != nil || !ok {
			t.Fatalf("Delivered(%s) = %t, %v; want removed", en.Event.Event().ID, ok, err)
		}
	}
	st, err = e.st.Outbox(ctx)
	if err != nil || st.Depth != 1 {
		t.Fatalf("Outbox after delivering 3 = %+v, %v; want depth 1", st, err)
	}
	last, err := e.st.ClaimOutbox(ctx, after.Add(10*time.Minute), time.Minute, 10)
	if err != nil || len(last) != 1 || !last[0].Event.Event().IssuedAt.Equal(now.Add(time.Minute).UTC()) {
		t.Fatalf("claim = %+v, %v; want the reissued rev.a", last, err)
	}
	if ok, err := e.st.Delivered(ctx, last[0].Event); err != nil || !ok {
		t.Fatalf("Delivered(reissued) = %t, %v", ok, err)
	}
	if st, err = e.st.Outbox(ctx); err != nil || st.Depth != 0 || !st.Oldest.IsZero() {
		t.Fatalf("Outbox when empty = %+v, %v", st, err)
	}
	// Delivered twice is harmless.
	if ok, err := e.st.Delivered(ctx, last[0].Event); err != nil || ok {
		t.Fatalf("Delivered again = %t, %v", ok, err)
	}
}

// TestFinishRecord: a session event flags the session itself (its refresh
// tokens stop), other kinds need nothing outside the revocation slot.
func TestFinishRecord(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	createSession(t, ctx, e.st, "s1", time.Hour)
	ev := events.NewSession("rev.s1", "s1", time.Now())
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, ev), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishRecord(ctx, ev); err != nil {
		t.Fatal(err)
	}
	sess, err := e.st.GetSession(ctx, "s1")
	if err != nil || !sess.Revoked {
		t.Fatalf("session after FinishRecord = %+v, %v; want revoked", sess, err)
	}
	if err := e.st.FinishRecord(ctx, events.NewKey("rev.k", "k", time.Now())); err != nil {
		t.Fatal(err)
	}
}
