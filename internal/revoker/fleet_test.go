package revoker

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
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
	start := func(service string) (*verifier.Verifier, context.CancelFunc) {
		v, err := verifier.New(verifier.Config{
			Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm()},
			Keys: e.serviceKeys(t), JetStream: e.js, MaxTokenLifetime: time.Hour, Logger: slog.New(slog.DiscardHandler),
			Service: service, ServiceVersion: "1.0.0", AnnounceInterval: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = v.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done; v.Close() })
		return v, func() { cancel(); <-done }
	}
	orders, _ := start("orders")
	billing, stopBilling := start("billing")

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
