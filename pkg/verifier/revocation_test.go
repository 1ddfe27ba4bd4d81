package verifier

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestEachKindOnThreeVerifiers revokes one thing of each kind and checks
// that three verifiers, each with its own connection, reject exactly the
// tokens it covers, with the right reason, and keep accepting the others.
func TestEachKindOnThreeVerifiers(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	applied := make(chan string, 16)

	type tokenCase struct {
		name string
		raw  string
		want error
	}
	tok := func(o verifiertest.TokenOptions) string { return e.iss.Token(t, o) }
	oldKey := e.iss.KeyID()
	byOldKey := tok(verifiertest.TokenOptions{Subject: "carol"})
	newKey := e.iss.RotateKey(t)
	if newKey == oldKey {
		t.Fatal("RotateKey kept the kid")
	}
	// Started after the rotation, so the JWKS they fetch lists both keys.
	// The first reports what it applies through OnApplied.
	vs := []*Verifier{e.verifier(t, func(c *Config) {
		c.OnApplied = func(e events.Event, at time.Time) {
			if at.Before(e.IssuedAt) {
				t.Errorf("event %s applied at %v, before it was issued at %v", e.ID, at, e.IssuedAt)
			}
			applied <- string(e.Kind)
		}
	}), e.verifier(t, nil), e.verifier(t, nil)}
	cases := []tokenCase{
		{"revoked jti", tok(verifiertest.TokenOptions{Subject: "dave", JTI: "jti-revoked"}), ErrTokenRevoked},
		{"same subject, other jti", tok(verifiertest.TokenOptions{Subject: "dave", JTI: "jti-fine"}), nil},
		{"revoked session", tok(verifiertest.TokenOptions{Subject: "erin", SessionID: "sid-revoked"}), ErrSessionRevoked},
		{"other session", tok(verifiertest.TokenOptions{Subject: "erin", SessionID: "sid-fine"}), nil},
		{"subject logged out", tok(verifiertest.TokenOptions{Subject: "alice", IssuedAt: now.Add(-time.Second)}), ErrSubjectRevoked},
		{"other subject", tok(verifiertest.TokenOptions{Subject: "bob", IssuedAt: now.Add(-time.Second)}), nil},
		{"revoked key", byOldKey, ErrKeyRevoked},
		{"current key", tok(verifiertest.TokenOptions{Subject: "carol"}), nil},
	}
	// Every token is accepted everywhere before the revocations.
	for _, v := range vs {
		for _, c := range cases {
			if _, err := v.Verify(context.Background(), c.raw); err != nil {
				t.Fatalf("%s before revocation: %v", c.name, err)
			}
		}
	}
	e.srv.Revoke(t, events.NewToken(eventID("tok"), "jti-revoked", now.Add(5*time.Minute), now))
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "sid-revoked", now))
	e.srv.Revoke(t, events.NewSubject(eventID("sub"), "alice", now, now))
	e.srv.Revoke(t, events.NewKey(eventID("key"), oldKey, now))

	for i, v := range vs {
		for _, c := range cases {
			if c.want == nil {
				continue
			}
			eventually.True(t, 5*time.Second, c.name+" rejected", func() bool {
				_, err := v.Verify(context.Background(), c.raw)
				return errors.Is(err, c.want)
			})
		}
		for _, c := range cases {
			_, err := v.Verify(context.Background(), c.raw)
			if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
				t.Errorf("verifier %d, %s: Verify = %v, want %v", i, c.name, err, c.want)
			}
			if c.want != nil && !errors.Is(err, ErrInvalidToken) {
				t.Errorf("verifier %d, %s: %v is not ErrInvalidToken", i, c.name, err)
			}
		}
	}
	kinds := map[string]bool{}
	for range 4 {
		select {
		case k := <-applied:
			kinds[k] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("OnApplied reported only %v", kinds)
		}
	}
	if len(kinds) != 4 {
		t.Fatalf("OnApplied reported kinds %v, want all four", kinds)
	}
	// The subject logs in again after the logout: accepted.
	again := tok(verifiertest.TokenOptions{Subject: "alice", IssuedAt: time.Now()})
	for i, v := range vs {
		if _, err := v.Verify(context.Background(), again); err != nil {
			t.Errorf("verifier %d: new login after logout: %v", i, err)
		}
	}
}

// TestReplayBeforeReady publishes revocations before a verifier starts: it
// must enforce every one of them before it reports ready, and its middleware
// answers 503 until then.
func TestReplayBeforeReady(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	const n = 2000
	for i := range n {
		e.srv.Revoke(t, events.NewSession(eventID("ses"), sid(i), now))
	}
	v, err := New(e.config(t))
	if err != nil {
		t.Fatal(err)
	}
	api := v.Middleware(MiddlewareConfig{})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	good := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "sid-live"})
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+good)
		api.ServeHTTP(rec, req)
		return rec
	}
	// Not running yet: certainly not ready.
	if rec := get(); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("before replay: status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	run(t, v)
	// During the replay every answer is a 503 until Ready.
	for !v.Ready() {
		rec := get()
		if rec.Code != http.StatusServiceUnavailable && !v.Ready() {
			t.Fatalf("during replay: status %d before ready", rec.Code)
		}
	}
	waitReady(t, v)
	// Everything replayed is enforced at the moment Ready is true.
	for i := range n {
		raw := e.iss.Token(t, verifiertest.TokenOptions{SessionID: sid(i)})
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrSessionRevoked) {
			t.Fatalf("session %d after ready: %v, want ErrSessionRevoked", i, err)
		}
	}
	if rec := get(); rec.Code != http.StatusOK {
		t.Fatalf("after ready: status %d, want 200", rec.Code)
	}
}

func sid(i int) string { return "sid-" + string(rune('a'+i%26)) + "-" + itoa(i) }

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

// TestServerRestartMidStream stops and restarts the NATS server (same store
// directory) while revocations keep being published: nothing acknowledged is
// lost and the verifiers resume.
func TestServerRestartMidStream(t *testing.T) {
	e := newEnv(t)
	vs := []*Verifier{e.verifier(t, nil), e.verifier(t, nil)}
	now := time.Now()
	var acked []string
	for i := range 50 {
		id := "before-" + itoa(i)
		e.srv.Revoke(t, events.NewToken(eventID("tok"), id, now.Add(5*time.Minute), now))
		acked = append(acked, id)
	}
	e.srv.Shutdown()
	e.srv.Restart(t)
	_, js := e.srv.Connect(t)
	for i := range 50 {
		id := "after-" + itoa(i)
		ev := events.NewToken(eventID("tok"), id, now.Add(5*time.Minute), now)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := events.Publish(ctx, js, ev); err != nil {
			cancel()
			t.Fatalf("publish after restart: %v", err)
		}
		cancel()
		acked = append(acked, id)
	}
	for i, v := range vs {
		for _, jti := range acked {
			raw := e.iss.Token(t, verifiertest.TokenOptions{JTI: jti})
			eventually.True(t, 15*time.Second, "verifier "+itoa(i)+" enforces "+jti, func() bool {
				_, err := v.Verify(context.Background(), raw)
				return errors.Is(err, ErrTokenRevoked)
			})
		}
	}
}

// TestDuplicatesAndReordering applies the same events, duplicated and in two
// different orders, to two verifiers: same final state, and an older epoch
// never lowers a newer one.
func TestDuplicatesAndReordering(t *testing.T) {
	now := time.Now()
	var evs []events.Event
	for i := range 30 {
		evs = append(evs, events.NewSubject("sub."+itoa(i), "user-"+itoa(i%5), now.Add(-time.Duration(i)*time.Second), now))
		evs = append(evs, events.NewSession("ses."+itoa(i), "sid-"+itoa(i%7), now))
		evs = append(evs, events.NewToken("tok."+itoa(i), "jti-"+itoa(i%11), now.Add(time.Minute), now))
	}
	probe := func(e *env) []string {
		var toks []string
		for i := range 12 {
			for _, d := range []time.Duration{-40 * time.Second, -25 * time.Second, -2 * time.Second, time.Millisecond} {
				toks = append(toks, e.iss.Token(t, verifiertest.TokenOptions{
					Subject: "user-" + itoa(i%6), SessionID: "sid-" + itoa(i%8), JTI: "jti-" + itoa(i), IssuedAt: now.Add(d),
				}))
			}
		}
		return toks
	}
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Two servers: one gets the events in order, the other shuffled with
	// every event twice (new ids, so JetStream's de-duplication does not
	// hide them). Both verifiers run before anything is published and apply
	// the events live in those orders.
	e2 := &env{srv: verifiertest.RunJetStream(t), iss: e.iss}
	e2.srv.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: testMaxLifetime})
	v1, v2 := e.verifier(t, nil), e2.verifier(t, nil)
	for _, ev := range evs {
		e.srv.Revoke(t, ev)
	}
	shuffled := append(append([]events.Event(nil), evs...), evs...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i, ev := range shuffled {
		ev.ID = "dup." + itoa(i)
		e2.srv.Revoke(t, ev)
	}
	for _, p := range []struct {
		v *Verifier
		e *env
	}{{v1, e}, {v2, e2}} {
		_, js := p.e.srv.Connect(t)
		s, err := js.Stream(context.Background(), events.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		last := s.CachedInfo().State.LastSeq
		eventually.True(t, 10*time.Second, "every event applied", func() bool { return p.v.Health().AppliedSeq >= last })
	}
	for _, raw := range probe(e) {
		_, err1 := v1.Verify(context.Background(), raw)
		_, err2 := v2.Verify(context.Background(), raw)
		if Reason(err1) != Reason(err2) {
			t.Fatalf("in order: %v; shuffled with duplicates: %v", err1, err2)
		}
	}
	// user-0's epochs were now, now-5s, ...: the max (now) holds even though
	// older epochs arrived later.
	raw := e.iss.Token(t, verifiertest.TokenOptions{Subject: "user-0", IssuedAt: now.Add(-time.Millisecond)})
	for _, v := range []*Verifier{v1, v2} {
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrSubjectRevoked) {
			t.Fatalf("older epochs lowered the newest: %v", err)
		}
	}
}

// TestEpochBoundary: a token issued 1 ms before a subject's logout is
// rejected, one issued 1 ms after is accepted (the user logged in again
// within the same second).
func TestEpochBoundary(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, nil)
	epoch := time.Now().Add(-2 * time.Second).Truncate(time.Second).Add(500 * time.Millisecond)
	e.srv.Revoke(t, events.NewSubject(eventID("sub"), "alice", epoch, time.Now()))
	before := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: epoch.Add(-time.Millisecond)})
	at := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: epoch})
	after := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: epoch.Add(time.Millisecond)})
	eventually.True(t, 5*time.Second, "logout applied", func() bool {
		_, err := v.Verify(context.Background(), before)
		return errors.Is(err, ErrSubjectRevoked)
	})
	if _, err := v.Verify(context.Background(), at); !errors.Is(err, ErrSubjectRevoked) {
		t.Fatalf("token issued at the epoch: %v, want ErrSubjectRevoked", err)
	}
	if _, err := v.Verify(context.Background(), after); err != nil {
		t.Fatalf("token issued 1ms after the epoch: %v, want accepted", err)
	}
}

// TestOverCapacityFailsClosed: more live revocations than capacity → every
// token is refused with ErrOverCapacity (503 class); never is a revoked one
// accepted; health and readiness say so.
func TestOverCapacityFailsClosed(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, func(c *Config) { c.Capacity = 100 })
	now := time.Now()
	var revoked []string
	for i := range 150 {
		jti := "cap-" + itoa(i)
		e.srv.Revoke(t, events.NewToken(eventID("tok"), jti, now.Add(10*time.Minute), now))
		revoked = append(revoked, e.iss.Token(t, verifiertest.TokenOptions{JTI: jti}))
	}
	eventually.True(t, 10*time.Second, "over capacity reported", func() bool { return v.Health().OverCapacity })
	for i, raw := range revoked {
		_, err := v.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("revoked token %d accepted over capacity", i)
		}
		if !errors.Is(err, ErrTokenRevoked) && !errors.Is(err, ErrOverCapacity) {
			t.Fatalf("revoked token %d: %v", i, err)
		}
	}
	fresh := e.iss.Token(t, verifiertest.TokenOptions{})
	if _, err := v.Verify(context.Background(), fresh); !errors.Is(err, ErrOverCapacity) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unrevoked token over capacity: %v, want ErrOverCapacity (unavailable)", err)
	}
	rec := httptest.NewRecorder()
	v.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz over capacity = %d, want 503", rec.Code)
	}
}

// TestStaleness stops the NATS server: past MaxStaleness Verify returns
// ErrStale; after a restart it recovers.
func TestStaleness(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, func(c *Config) { c.MaxStaleness = 1500 * time.Millisecond })
	raw := e.iss.Token(t, verifiertest.TokenOptions{})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify while fresh: %v", err)
	}
	e.srv.Shutdown()
	eventually.True(t, 15*time.Second, "ErrStale after the server stopped", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return errors.Is(err, ErrStale)
	})
	if !v.Health().Stale {
		t.Fatal("Health().Stale = false while Verify says stale")
	}
	e.srv.Restart(t)
	eventually.True(t, 20*time.Second, "recovery after restart", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return err == nil
	})
}

// fallbackFunc adapts a function to Fallback.
type fallbackFunc func(context.Context, *Claims) error

func (f fallbackFunc) Check(ctx context.Context, c *Claims) error { return f(ctx, c) }

func TestStalePolicies(t *testing.T) {
	e := newEnv(t)
	errDown := errors.New("fallback store down")
	fbRevoked := fallbackFunc(func(_ context.Context, c *Claims) error {
		if c.Subject == "mallory" {
			return ErrSubjectRevoked
		}
		if c.Subject == "unknown" {
			return errDown
		}
		return nil
	})
	fb := e.verifier(t, func(c *Config) {
		c.MaxStaleness = time.Second
		c.StalePolicy = StaleFallback
		c.Fallback = fbRevoked
	})
	accept := e.verifier(t, func(c *Config) { c.MaxStaleness = time.Second; c.StalePolicy = InsecureStaleAccept })
	ok := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice"})
	bad := e.iss.Token(t, verifiertest.TokenOptions{Subject: "mallory"})
	unknown := e.iss.Token(t, verifiertest.TokenOptions{Subject: "unknown"})
	e.srv.Shutdown()
	eventually.True(t, 15*time.Second, "both stale", func() bool { return fb.Health().Stale && accept.Health().Stale })
	if _, err := fb.Verify(context.Background(), ok); err != nil {
		t.Fatalf("fallback, clean token: %v", err)
	}
	if _, err := fb.Verify(context.Background(), bad); !errors.Is(err, ErrSubjectRevoked) {
		t.Fatalf("fallback, revoked token: %v, want ErrSubjectRevoked", err)
	}
	if _, err := fb.Verify(context.Background(), unknown); !errors.Is(err, ErrStale) || !errors.Is(err, errDown) {
		t.Fatalf("fallback down: %v, want ErrStale wrapping the cause", err)
	}
	if _, err := accept.Verify(context.Background(), bad); err != nil {
		t.Fatalf("insecure accept: %v", err)
	}
}
