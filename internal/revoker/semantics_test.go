package revoker

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestRetryIsReissued: a retry of a session revocation whose first attempt
// was recorded long ago publishes the event reissued now, so verifiers hold
// it as long as a fresh one (a stale issued_at would make them drop it at
// once, and the session's tokens would live on).
func TestRetryIsReissued(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	long := time.Now().Add(-2 * time.Hour) // past the 1h token lifetime
	first := events.NewSession(NewEventID(), "s-old", long)
	first.Reason = "logout"
	idem := &store.Idempotency{Caller: httpx.CallerID(testCredential), Key: "k-old"}
	if _, err := e.store.Record(ctx, verifiertest.Encoded(t, first), time.Second, idem); err != nil {
		t.Fatal(err)
	}
	res := e.revokeJSON(t, `{"type":"session","sid":"s-old","reason":"logout"}`, "k-old").result(t)
	if res.ID != first.ID {
		t.Fatalf("retry published %s, want the first attempt's %s", res.ID, first.ID)
	}
	ev, _ := e.lastEvent(t, events.KindSession, "s-old")
	if time.Since(ev.IssuedAt) > time.Minute {
		t.Fatalf("stream holds issued_at %s, want now (the first attempt's was %s)", ev.IssuedAt, long)
	}
	if hold := ev.HoldUntil(time.Hour, time.Second); !hold.After(time.Now().Add(50 * time.Minute)) {
		t.Fatalf("hold until %s, want about an hour from now", hold)
	}
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-old"})
	eventually.True(t, 5*time.Second, "introspection to refuse the session's token", func() bool {
		return e.introspect(t, tok).introspection(t)["active"] == false
	})
}

// TestIdempotencyKeysScopedByCaller: two credential holders using the same
// Idempotency-Key get their own revocations; neither can pre-claim the
// other's key (turning its logout into a 409).
func TestIdempotencyKeysScopedByCaller(t *testing.T) {
	const other = "another-service-credential-42"
	e := newEnv(t, func(c *Config) { c.Credentials = append(c.Credentials, other) })
	post := func(cred, body string) answer {
		return e.do(t, http.MethodPost, "/v1/revocations", "application/json", []byte(body),
			map[string]string{"Authorization": "Bearer " + cred, "Idempotency-Key": "logout.s-victim"})
	}
	// The attacker claims the victim's key for something else first.
	a := post(other, `{"type":"session","sid":"s-decoy","reason":"logout"}`)
	if a.status != http.StatusCreated {
		t.Fatalf("attacker's revocation: %d %s", a.status, a.body)
	}
	v := post(testCredential, `{"type":"session","sid":"s-victim","reason":"logout"}`)
	if v.status != http.StatusCreated {
		t.Fatalf("victim's logout with the same key: %d %s, want 201", v.status, v.body)
	}
	victim := v.result(t)
	if ev, _ := e.lastEvent(t, events.KindSession, "s-victim"); ev.ID != victim.ID {
		t.Fatalf("stream holds %s for the victim's session, answer said %s", ev.ID, victim.ID)
	}
	// Each caller's retry still answers its own event.
	if again := post(testCredential, `{"type":"session","sid":"s-victim","reason":"logout"}`).result(t); again != victim {
		t.Fatalf("victim's retry answered %+v, want %+v", again, victim)
	}
	if c := post(other, `{"type":"session","sid":"s-victim","reason":"logout"}`); c.status != http.StatusConflict {
		t.Fatalf("attacker reusing its key for another session: %d, want 409", c.status)
	}
}

// TestIntrospectionCountsRecorded: a revocation recorded in Redis but not
// yet on the stream (waiting in the outbox) already makes introspection
// answer inactive.
func TestIntrospectionCountsRecorded(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-recorded"})
	if got := e.introspect(t, tok).introspection(t); got["active"] != true {
		t.Fatalf("before: %v", got)
	}
	// What a revoker does before its publish: the record and the outbox entry.
	if _, err := e.store.Record(ctx, verifiertest.Encoded(t, events.NewSession(NewEventID(), "s-recorded", time.Now())), time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(t, tok).introspection(t); got["active"] != false {
		t.Fatalf("recorded, not published: introspection %v, want inactive", got)
	}
	// Redis down: introspection cannot know, so it fails closed.
	e.redis.Stop()
	a := e.introspect(t, e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-other"}))
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("Redis down: introspection %d %s, want 503", a.status, a.body)
	}
	a.errorBody(t)
}

// TestTokenWithinLeeway: a token past its exp but inside the verifiers'
// leeway is still accepted by them, so its revocation is accepted too (and,
// like every jti revocation, held for the longest token lifetime); past
// exp+leeway there is nothing left to revoke.
func TestTokenWithinLeeway(t *testing.T) {
	e := newEnv(t, nil) // Leeway: verifier.DefaultLeeway (5s)
	within := time.Now().Add(-2 * time.Second).Unix()
	res := e.revokeJSON(t, fmt.Sprintf(`{"type":"token","jti":"j-leeway","exp":%d}`, within), "").result(t)
	ev, _ := e.lastEvent(t, events.KindToken, "j-leeway")
	if ev.ID != res.ID || ev.Expiry.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("stream holds %+v, want %s held about an hour", ev, res.ID)
	}
	past := time.Now().Add(-10 * time.Second).Unix()
	if a := e.revokeJSON(t, fmt.Sprintf(`{"type":"token","jti":"j-gone","exp":%d}`, past), ""); a.status != http.StatusBadRequest {
		t.Fatalf("exp+leeway passed: %d %s, want 400", a.status, a.body)
	}
}
