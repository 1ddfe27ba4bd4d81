package revoker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// replicas is GET /v1/replicas with the service credential.
func (e *env) replicas(t *testing.T) Replicas {
	t.Helper()
	a := e.do(t, http.MethodGet, "/v1/replicas", "", nil, map[string]string{"Authorization": "Bearer " + testCredential})
	if a.status != http.StatusOK {
		t.Fatalf("GET /v1/replicas: %d %s", a.status, a.body)
	}
	var r Replicas
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("GET /v1/replicas: %v in %s", err, a.body)
	}
	return r
}

// TestReplicas: the revoker learns the live fleet from the verifiers'
// announcements, with no registry: two replicas are listed with their
// service, readiness and the sequence they applied, which follows a new
// revocation; a replica that stops is gone after three intervals; an
// announcement on another replica's subject or a malformed one is
// refused and counted; the endpoint needs the service credential.
func TestReplicas(t *testing.T) {
	e := newEnv(t, nil)
	orders, _ := e.announcing(t, "orders", 50*time.Millisecond)
	billing, stopBilling := e.announcing(t, "billing", 50*time.Millisecond)

	byID := func(r Replicas) map[string]Replica {
		m := map[string]Replica{}
		for _, x := range r.Replicas {
			m[x.ID] = x
		}
		return m
	}
	eventually.True(t, 10*time.Second, "both replicas listed, deciding", func() bool {
		m := byID(e.replicas(t))
		o, b := m[orders.ReplicaID()], m[billing.ReplicaID()]
		return len(m) == 2 && o.Service == "orders" && b.Service == "billing" && o.Deciding && b.Deciding && o.ServiceVersion == "1.0.0"
	})

	res := e.revokeJSON(t, `{"type":"session","sid":"s-fleet"}`, "").result(t)
	eventually.True(t, 5*time.Second, "both report the new revocation's sequence", func() bool {
		m := byID(e.replicas(t))
		return m[orders.ReplicaID()].AppliedSeq == res.Seq && m[billing.ReplicaID()].AppliedSeq == res.Seq
	})

	// Forged and malformed announcements.
	good, _ := json.Marshal(events.Announcement{Version: 1, ID: "r-forged", Started: time.Now(), IntervalMs: 1000})
	for subject, data := range map[string][]byte{
		events.AnnounceSubject(events.DefaultStreamName, orders.ReplicaID()): good,
		events.AnnounceSubject(events.DefaultStreamName, "r-x"):              []byte(`{"v":1,"id":"r-x"`),
	} {
		if err := e.nc.Publish(subject, data); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, 5*time.Second, "two announcements refused", func() bool { return e.replicas(t).Rejected == 2 })
	if _, ok := byID(e.replicas(t))["r-forged"]; ok {
		t.Error("a replica announced itself on another's subject and was listed")
	}

	stopBilling()
	stopped := time.Now()
	eventually.True(t, 5*time.Second, "the stopped replica gone", func() bool {
		m := byID(e.replicas(t))
		_, there := m[billing.ReplicaID()]
		return !there && len(m) == 1
	})
	if d := time.Since(stopped); d < 100*time.Millisecond {
		t.Errorf("the stopped replica was gone after %s, before three 50 ms intervals", d)
	}

	if a := e.do(t, http.MethodGet, "/v1/replicas", "", nil, nil); a.status != http.StatusUnauthorized {
		t.Errorf("without the credential: %d, want 401", a.status)
	}
}

// TestWaitEnforced: POST /v1/revocations?wait=enforced answers once every
// live replica that decides has applied the revocation — each refuses the
// token the moment the answer arrives; a replica that cannot decide is
// listed as failing closed, one that lags as pending when the timeout
// passes (the answer stays 201: the revocation is durable). Bad wait
// options get 400 and record nothing; without wait nothing waits.
func TestWaitEnforced(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	start := func(keys verifier.KeySource) *verifier.Verifier {
		v, err := verifier.New(verifier.Config{
			Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm()},
			Keys: keys, JetStream: e.js, MaxTokenLifetime: time.Hour, Logger: slog.New(slog.DiscardHandler),
			AnnounceInterval: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = v.Run(runCtx); close(done) }()
		t.Cleanup(func() { cancel(); <-done; v.Close() })
		return v
	}
	a, b := start(e.serviceKeys(t)), start(e.serviceKeys(t))
	eventually.True(t, 10*time.Second, "two deciding replicas", func() bool {
		n := 0
		for _, r := range e.replicas(t).Replicas {
			if r.Deciding {
				n++
			}
		}
		return n == 2
	})
	revokeWait := func(query, body string) answer {
		t.Helper()
		return e.do(t, http.MethodPost, "/v1/revocations"+query, "application/json", []byte(body),
			map[string]string{"Authorization": "Bearer " + testCredential})
	}

	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-wait"})
	got := revokeWait("?wait=enforced", `{"type":"session","sid":"s-wait"}`).result(t)
	for _, v := range []*verifier.Verifier{a, b} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verifier.ErrSessionRevoked) {
			t.Errorf("replica %s right after the answer: %v, want revoked_session", v.ReplicaID(), err)
		}
	}
	en := got.Enforcement
	if en == nil || !en.Complete || en.Replicas != 2 || en.Confirmed != 2 || len(en.Pending) != 0 || len(en.FailingClosed) != 0 {
		t.Fatalf("enforcement %+v, want complete over 2 confirmed replicas", en)
	}
	t.Logf("wait=enforced over 2 replicas: %d ms", en.TookMs)

	// A replica that cannot decide (its keys never arrive) and one that
	// says it has not applied anything (announced by hand, on its own
	// subject, as a lagging replica would).
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	deadKeys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: dead.URL + "/jwks", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	blind := start(deadKeys)
	stuck, _ := json.Marshal(events.Announcement{Version: 1, ID: "r-stuck", Ready: true, Deciding: true, Started: time.Now(), IntervalMs: 1000})
	stop := make(chan struct{})
	go func() {
		for {
			_ = e.nc.Publish(events.AnnounceSubject(events.DefaultStreamName, "r-stuck"), stuck)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer close(stop)
	eventually.True(t, 10*time.Second, "four replicas live", func() bool { return len(e.replicas(t).Replicas) == 4 })
	began := time.Now()
	got = revokeWait("?wait=enforced&timeout=300ms", `{"type":"session","sid":"s-wait-2"}`).result(t)
	en = got.Enforcement
	if en == nil || en.Complete || en.Replicas != 4 || en.Confirmed != 2 ||
		len(en.Pending) != 1 || en.Pending[0] != "r-stuck" || len(en.FailingClosed) != 1 || en.FailingClosed[0] != blind.ReplicaID() {
		t.Fatalf("enforcement %+v; want incomplete: 2 confirmed, r-stuck pending, %s failing closed", en, blind.ReplicaID())
	}
	if took := time.Since(began); took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("the incomplete wait took %s, want the 300ms timeout", took)
	}

	// Bad options: 400, nothing recorded or published.
	keys, seq := e.dbsize(t), e.lastSeq(t)
	for _, q := range []string{"?wait=yes", "?timeout=1s", "?wait=enforced&timeout=1m", "?wait=enforced&timeout=0s",
		"?wait=enforced&timeout=soon", "?wait=enforced&wait=enforced", "?wait=enforced&verbose=1"} {
		if a := revokeWait(q, `{"type":"session","sid":"s-bad-wait"}`); a.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, a.status, a.body)
		}
	}
	if n, s := e.dbsize(t), e.lastSeq(t); n != keys || s != seq {
		t.Errorf("bad wait options changed Redis (%d → %d keys) or the stream (seq %d → %d)", keys, n, seq, s)
	}
	if r := e.revokeJSON(t, `{"type":"session","sid":"s-nowait"}`, "").result(t); r.Enforcement != nil {
		t.Errorf("without wait: enforcement %+v, want none", r.Enforcement)
	}
}
