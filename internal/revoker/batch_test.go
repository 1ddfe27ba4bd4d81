package revoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestBatch: POST /v1/revocations/batch records and publishes each valid
// revocation as a single request would, refuses each invalid one with the
// single request's error, and answers them all in order; a body that is
// not such a list is a 400 and records nothing.
func TestBatch(t *testing.T) {
	e := newEnv(t, nil)
	svc := e.service(t)
	ctx := context.Background()
	post := func(body string, hdr map[string]string) answer {
		t.Helper()
		h := map[string]string{"Authorization": "Bearer " + testCredential}
		for k, v := range hdr {
			h[k] = v
		}
		return e.do(t, http.MethodPost, "/v1/revocations/batch", "application/json", []byte(body), h)
	}
	soon := time.Now().Add(10 * time.Minute).Unix()
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-b1"})
	carol := e.iss.Token(t, verifiertest.TokenOptions{Subject: "carol", IssuedAt: time.Now().Add(-time.Second)})
	a := post(fmt.Sprintf(`{"revocations":[
		{"type":"session","sid":"s-b1"},
		{"type":"subject","sub":"carol","reason":"offboarded"},
		{"type":"token","jti":"j-b3","exp":%d},
		{"type":"user","sub":"x"},
		{"type":"session","sid":"s-b5","admin":true},
		{"type":"scope","claim":"tenant","value":"acme"}
	]}`, soon), nil)
	if a.status != http.StatusOK {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	var got BatchAnswer
	if err := json.Unmarshal(a.body, &got); err != nil || len(got.Results) != 6 {
		t.Fatalf("answer %s: %v", a.body, err)
	}
	for i, want := range []int{201, 201, 201, 400, 400, 400} {
		r := got.Results[i]
		if r.Status != want || (want == 201) != (r.ID != "" && r.Seq != 0) || (want == 400) != (r.Error == "invalid_request") {
			t.Errorf("item %d: %+v, want status %d", i, r, want)
		}
	}
	if !strings.Contains(got.Results[3].Description, `unknown "type"`) || !strings.Contains(got.Results[5].Description, "not an epoch scope") {
		t.Errorf("the refused items say %q and %q", got.Results[3].Description, got.Results[5].Description)
	}
	for what, raw := range map[string]string{"the session's token": tok, "carol's token": carol} {
		eventually.True(t, 5*time.Second, what+" refused", func() bool {
			_, err := svc.Verify(ctx, raw)
			return errors.Is(err, verifier.ErrInvalidToken)
		})
	}

	keys, seq := e.dbsize(t), e.lastSeq(t)
	many := `{"revocations":[` + strings.Repeat(`{"type":"session","sid":"s"},`, MaxBatch) + `{"type":"session","sid":"s"}]}`
	for name, tt := range map[string]struct {
		body   string
		hdr    map[string]string
		status int
	}{
		"empty list":         {`{"revocations":[]}`, nil, 400},
		"no list":            {`{}`, nil, 400},
		"1,001 revocations":  {many, nil, 400},
		"malformed":          {`{"revocations":[`, nil, 400},
		"an unknown field":   {`{"revocations":[{"type":"session","sid":"s"}],"all":true}`, nil, 400},
		"an Idempotency-Key": {`{"revocations":[{"type":"session","sid":"s"}]}`, map[string]string{"Idempotency-Key": "k"}, 400},
		"no credential":      {`{"revocations":[{"type":"session","sid":"s"}]}`, map[string]string{"Authorization": ""}, 401},
	} {
		if a := post(tt.body, tt.hdr); a.status != tt.status {
			t.Errorf("%s: %d %.200s, want %d", name, a.status, a.body, tt.status)
		}
	}
	if n, s := e.dbsize(t), e.lastSeq(t); n != keys || s != seq {
		t.Errorf("refused batches changed Redis (%d → %d keys) or the stream (seq %d → %d)", keys, n, seq, s)
	}
}

// postBatch posts revocations (JSON objects) as one batch with the
// credential and decodes the 200 answer.
func (e *env) postBatch(tb testing.TB, revocations ...string) BatchAnswer {
	tb.Helper()
	a := e.do(tb, http.MethodPost, "/v1/revocations/batch", "application/json",
		[]byte(`{"revocations":[`+strings.Join(revocations, ",")+`]}`), map[string]string{"Authorization": "Bearer " + testCredential})
	var got BatchAnswer
	if err := json.Unmarshal(a.body, &got); a.status != http.StatusOK || err != nil || len(got.Results) != len(revocations) {
		tb.Fatalf("batch: %d %.300s (%v), want 200 with %d results", a.status, a.body, err, len(revocations))
	}
	return got
}

// TestBatchMixedKinds: on an R3 stream, a batch of every kind is
// acknowledged item by item, in order, each with its own sequence, each
// event the stream's last for what it revokes.
func TestBatchMixedKinds(t *testing.T) {
	e := newClusterEnv(t, func(c *Config) { c.EpochScopes = []string{"tenant"} })
	soon := time.Now().Add(10 * time.Minute).Unix()
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-m0"})
	got := e.postBatch(t,
		fmt.Sprintf(`{"type":"token","jti":"j-m1","exp":%d}`, soon),
		fmt.Sprintf(`{"type":"token","token":%q}`, tok),
		`{"type":"session","sid":"s-m3"}`,
		`{"type":"subject","sub":"mallory","reason":"offboarded"}`,
		`{"type":"key","kid":"k-m5"}`,
		`{"type":"scope","claim":"tenant","value":"acme"}`,
		fmt.Sprintf(`{"type":"issuer","iss":%q}`, e.iss.Issuer()),
		`{"type":"session","sid":"s-m8","iss":"https://other.example"}`,
	)
	want := []struct {
		iss   string
		kind  events.Kind
		value string
	}{
		{"", events.KindToken, "j-m1"}, {"", events.KindToken, ""}, {"", events.KindSession, "s-m3"},
		{"", events.KindSubject, "mallory"}, {"", events.KindKey, "k-m5"}, {"", events.KindScope, "acme"},
		{"", events.KindScope, e.iss.Issuer()}, {"https://other.example", events.KindSession, "s-m8"},
	}
	for i, r := range got.Results {
		if r.Status != http.StatusCreated || r.ID == "" || r.Seq == 0 || r.Error != "" || r.Recorded {
			t.Fatalf("item %d: %+v, want 201 with a sequence", i, r)
		}
		w := want[i]
		ev := verifiertest.EventAt(t, e.js, r.Seq, r.ID)
		value := ev.Value()
		if ev.Kind == events.KindScope {
			value = ev.ScopeValue
		}
		if ev.Kind != w.kind || ev.Issuer != w.iss || (w.value != "" && value != w.value) {
			t.Errorf("item %d: the message at %d carries %+v, want a %s of %q (issuer %q)", i, r.Seq, ev, w.kind, w.value, w.iss)
		}
	}
	// Every First event but the key went out in one batch message; the
	// key alone, with its TTL.
	if r := got.Results; r[0].Seq != r[2].Seq || r[0].Seq != r[7].Seq || r[4].Seq == r[0].Seq {
		t.Errorf("sequences %d, %d, %d and the key's %d: want the first three equal (one batch), the key's apart", r[0].Seq, r[2].Seq, r[7].Seq, r[4].Seq)
	}
	ob, err := e.store.Outbox(testCtx(t))
	if err != nil || ob.Depth != 0 {
		t.Errorf("outbox %+v, %v: want empty once every item is acknowledged", ob, err)
	}
}

// TestBatchNATSDown: with NATS down, every valid item of a batch is
// recorded and answered 503 "recorded":true, with its id; once NATS is
// back the outbox delivers each one without a retry.
func TestBatchNATSDown(t *testing.T) {
	e := newEnv(t, nil)
	e.revokeJSON(t, `{"type":"session","sid":"s-warm"}`, "").result(t) // the publisher knows the stream
	e.nats.Shutdown()
	eventually.True(t, 10*time.Second, "the revoker to notice NATS is down", func() bool { return !e.nc.IsConnected() })
	got := e.postBatch(t,
		`{"type":"session","sid":"s-d1"}`,
		`{"type":"subject","sub":"dana"}`,
		`{"type":"nonsense"}`,
		`{"type":"key","kid":"k-d4"}`,
	)
	values := map[int]struct {
		kind  events.Kind
		value string
	}{0: {events.KindSession, "s-d1"}, 1: {events.KindSubject, "dana"}, 3: {events.KindKey, "k-d4"}}
	for i, r := range got.Results {
		if i == 2 {
			if r.Status != http.StatusBadRequest || r.Recorded {
				t.Errorf("invalid item: %+v, want 400", r)
			}
			continue
		}
		if r.Status != http.StatusServiceUnavailable || !r.Recorded || r.ID == "" || r.Seq != 0 ||
			r.Error != codeUnavailable || r.Description != recordedDescription {
			t.Errorf("item %d: %+v, want 503 recorded:true with its id", i, r)
		}
	}
	ctx := testCtx(t)
	if ob, err := e.store.Outbox(ctx); err != nil || ob.Depth != 3 {
		t.Fatalf("outbox %+v, %v: want the 3 recorded items", ob, err)
	}
	e.nats.Restart(t)
	eventually.True(t, 30*time.Second, "the outbox to deliver the batch", func() bool {
		ob, err := e.store.Outbox(ctx)
		return err == nil && ob.Depth == 0
	})
	for i, v := range values {
		// The outbox publishes a reissue of the recorded event: same id.
		if ev, _ := e.lastEvent(t, v.kind, v.value); ev.ID != got.Results[i].ID {
			t.Errorf("item %d: the stream holds %s for %s, want %s", i, ev.ID, v.value, got.Results[i].ID)
		}
	}
}

// TestBatchEpochsGrow: items of one batch for one subject get distinct,
// growing epochs, as requests one after the other do, even on a clock that
// stands still; one scoped to an issuer grows past the one for every
// issuer (its look-up reads that record too).
func TestBatchEpochsGrow(t *testing.T) {
	now := time.Now()
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return now } })
	const other = "https://other.example"
	raws := []json.RawMessage{
		json.RawMessage(`{"type":"subject","sub":"carol"}`),
		json.RawMessage(`{"type":"session","sid":"s-e2"}`),
		json.RawMessage(`{"type":"subject","sub":"carol"}`),
		json.RawMessage(fmt.Sprintf(`{"type":"subject","sub":"carol","iss":%q}`, other)),
		json.RawMessage(`{"type":"subject","sub":"dave"}`),
	}
	ctx := testCtx(t)
	items := e.srv.parseBatch(ctx, raws)
	e.srv.revokeBatch(ctx, items)
	for i, it := range items {
		if it.err != nil || it.res.Seq == 0 {
			t.Fatalf("item %d: %+v, %v; want acknowledged", i, it.res, it.err)
		}
	}
	epoch := func(i int) time.Time { return items[i].x.Event().Epoch }
	if !epoch(0).Equal(now) || !epoch(2).After(epoch(0)) || !epoch(3).After(epoch(2)) || !epoch(4).Equal(now) {
		t.Errorf("epochs carol %s, carol %s, carol of %s %s, dave %s: want carol's growing from now, dave's now",
			epoch(0), epoch(2), other, epoch(3), epoch(4))
	}
	if items[2].res.Seq <= items[0].res.Seq {
		t.Errorf("carol's second event at %d, first at %d: want it later", items[2].res.Seq, items[0].res.Seq)
	}
	if ev, seq := e.lastEvent(t, events.KindSubject, "carol"); ev.ID != items[2].res.ID || !ev.Epoch.Equal(epoch(2)) || seq != items[2].res.Seq {
		t.Errorf("the stream holds %s (epoch %s) at %d for carol, want the later %s", ev.ID, ev.Epoch, seq, items[2].res.ID)
	}
	recorded, err := e.store.SubjectEpoch(ctx, "", "carol")
	if err != nil || !recorded.Equal(epoch(2)) {
		t.Errorf("recorded epoch of carol %s, %v; want %s", recorded, err, epoch(2))
	}
}
