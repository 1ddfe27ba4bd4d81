package verifier

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestMetrics checks the instruments a dashboard relies on: verifications
// by outcome and reason, events applied, revocations held, ready.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	reader := sdkmetric.NewManualReader()
	appliedCh := make(chan struct{}, 1)
	v := e.verifier(t, func(c *Config) {
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		// Called after the event is counted: the signal to collect on.
		c.OnApplied = func(events.Event, time.Time) {
			select {
			case appliedCh <- struct{}{}:
			default:
			}
		}
	})
	good := e.iss.Token(t, verifiertest.TokenOptions{})
	revoked := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "gone"})
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "gone", time.Now()))
	// Wait without calling Verify, so the counts below are exact.
	select {
	case <-appliedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("revocation not applied within 10s")
	}
	for range 3 {
		if _, err := v.Verify(context.Background(), good); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := v.Verify(context.Background(), revoked); !errors.Is(err, ErrSessionRevoked) {
			t.Fatalf("revoked token: %v", err)
		}
	}
	_, _ = v.Verify(context.Background(), "not-a-token")

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]map[attribute.Distinct]int64{}
	gauges := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				sums[m.Name] = map[attribute.Distinct]int64{}
				for _, p := range d.DataPoints {
					sums[m.Name][p.Attributes.Equivalent()] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					gauges[m.Name] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					gauges[m.Name] = p.Value
				}
			}
		}
	}
	key := func(outcome, reason string) attribute.Distinct {
		set := attribute.NewSet(attribute.String("outcome", outcome), attribute.String("reason", reason))
		return set.Equivalent()
	}
	ver := sums["jwtrevoke.verifier.verifications"]
	if got := ver[key("accepted", "ok")]; got != 3 {
		t.Errorf("accepted/ok = %d, want 3", got)
	}
	if got := ver[key("rejected", "revoked_session")]; got != 2 {
		t.Errorf("rejected/revoked_session = %d, want 2", got)
	}
	if got := ver[key("rejected", "malformed")]; got != 1 {
		t.Errorf("rejected/malformed = %d, want 1", got)
	}
	var applied int64
	for _, n := range sums["jwtrevoke.verifier.events.applied"] {
		applied += n
	}
	if applied < 1 {
		t.Errorf("events.applied = %d, want >= 1", applied)
	}
	if gauges["jwtrevoke.verifier.ready"] != 1 || gauges["jwtrevoke.verifier.revocations.held"] < 1 {
		t.Errorf("gauges = %v, want ready 1 and held >= 1", gauges)
	}
	if _, ok := gauges["jwtrevoke.verifier.staleness"]; !ok {
		t.Errorf("no staleness gauge in %v", gauges)
	}
}

// TestEventAppliedAllocatesNothing: the feed reports every replayed event;
// with the default (no-op) meter provider that costs no garbage.
func TestEventAppliedAllocatesNothing(t *testing.T) {
	m, err := newMetrics(&Verifier{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	e := events.NewSession("ses-1", "s1", time.Now())
	if n := testing.AllocsPerRun(1000, func() { m.EventApplied(e, e.IssuedAt, time.Now()) }); n != 0 {
		t.Fatalf("EventApplied: %v allocations, want 0", n)
	}
}
