package store

import (
	"errors"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestPipelined: RecordAll, EpochAll, FinishRecordAll and DeliveredAll do
// what Record, Epoch, FinishRecord and Delivered do, each event with its
// own result, also on a Redis whose script cache is empty (EVALSHA answers
// NOSCRIPT inside the pipeline).
func TestPipelined(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	createSession(t, ctx, e.st, "s1", time.Hour)
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, events.NewSession("rev.old", "s-old", now)), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	evs := []events.Event{
		events.NewSession("rev.a", "s1", now),
		events.NewSubject("rev.b", "bob", now, now),
		events.NewToken("rev.c", "jti-c", now.Add(time.Hour), now),
		events.NewSession("rev.d", "s-old", now), // recorded before: not First
		events.NewKey("rev.e", "kid-e", now),
	}
	xs := make([]events.Encoded, 0, len(evs)+1)
	for _, ev := range evs {
		xs = append(xs, verifiertest.Encoded(t, ev))
	}
	xs = append(xs, events.Encoded{}) // refused alone

	recs, errs := e.st.RecordAll(ctx, xs, time.Second)
	for i, rec := range recs[:len(evs)] {
		if errs[i] != nil || !rec.Event.Event().Equal(evs[i]) || rec.Held || rec.First != (evs[i].ID != "rev.d") {
			t.Errorf("RecordAll[%d] = %+v, %v; want recorded, First unless recorded before", i, rec, errs[i])
		}
	}
	if err := errs[len(evs)]; !errors.Is(err, events.ErrInvalid) {
		t.Errorf("RecordAll of the zero Encoded: %v, want ErrInvalid", err)
	}
	if err := e.st.Check(ctx, Query{Sub: "bob", IssuedAt: now.Add(-time.Second)}); !errors.Is(err, events.ErrSubjectRevoked) {
		t.Errorf("bob's earlier token after RecordAll: %v, want ErrSubjectRevoked", err)
	}
	if ob, err := e.st.Outbox(ctx); err != nil || ob.Depth != int64(len(evs))+1 {
		t.Errorf("Outbox = %+v, %v; want the %d events and the earlier one", ob, err, len(evs))
	}

	epochs, errs := e.st.EpochAll(ctx, []events.Event{evs[1], events.NewSubject("", "nobody", now, now), evs[0]})
	if errs[0] != nil || !epochs[0].Equal(now) || errs[1] != nil || !epochs[1].IsZero() || errs[2] == nil {
		t.Errorf("EpochAll = %v, %v; want bob's epoch, zero for nobody, an error for a session", epochs, errs)
	}

	if errs := e.st.FinishRecordAll(ctx, evs); errors.Join(errs...) != nil {
		t.Fatalf("FinishRecordAll: %v", errs)
	}
	if sess, err := e.st.GetSession(ctx, "s1"); err != nil || !sess.Revoked {
		t.Errorf("session after FinishRecordAll = %+v, %v; want revoked", sess, err)
	}

	removed, errs := e.st.DeliveredAll(ctx, xs)
	for i := range evs {
		if errs[i] != nil || !removed[i] {
			t.Errorf("DeliveredAll[%d] = %t, %v; want removed", i, removed[i], errs[i])
		}
	}
	if err := errs[len(evs)]; !errors.Is(err, events.ErrInvalid) {
		t.Errorf("DeliveredAll of the zero Encoded: %v, want ErrInvalid", err)
	}
	if ob, err := e.st.Outbox(ctx); err != nil || ob.Depth != 1 {
		t.Errorf("Outbox after DeliveredAll = %+v, %v; want the earlier event only", ob, err)
	}
}
