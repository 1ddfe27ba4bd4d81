package revoker

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of the revoker's instruments.
const meterName = "github.com/jwtrevoke/jwtrevoke/internal/revoker"

// Outcomes of a revocation request, the "outcome" attribute of
// jwtrevoke.revoker.revocations.
const (
	outcomeCreated     = "created"     // 201, the stream acknowledged
	outcomeInvalid     = "invalid"     // 4xx, nothing changed
	outcomeUnavailable = "unavailable" // 503, nothing recorded (Redis down)
	outcomeRecorded    = "recorded"    // 503, recorded, the outbox delivers it
	outcomeError       = "error"       // 500, a bug
)

// metrics holds the revoker's instruments. Safe for concurrent use.
type metrics struct {
	revocations    metric.Int64Counter
	publish        metric.Float64Histogram
	introspections metric.Int64Counter
	republishes    metric.Int64Counter
	signals        metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider, ob *outboxState) (*metrics, error) {
	meter := mp.Meter(meterName)
	m := &metrics{}
	var errs []error
	var err error
	m.revocations, err = meter.Int64Counter("jwtrevoke.revoker.revocations",
		metric.WithDescription("Revocation requests by type (token, session, subject, key) and outcome (created, invalid, unavailable, error)"),
		metric.WithUnit("{request}"))
	errs = append(errs, err)
	m.publish, err = meter.Float64Histogram("jwtrevoke.revoker.publish.duration",
		metric.WithDescription("Time from publishing a revocation event to the stream's acknowledgement"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	errs = append(errs, err)
	m.introspections, err = meter.Int64Counter("jwtrevoke.revoker.introspections",
		metric.WithDescription("Introspection requests by result (active, inactive, unavailable, invalid)"),
		metric.WithUnit("{request}"))
	errs = append(errs, err)
	m.republishes, err = meter.Int64Counter("jwtrevoke.revoker.outbox.republished",
		metric.WithDescription("Recorded revocations the outbox drainer delivered to the stream (the request that recorded them did not)"),
		metric.WithUnit("{event}"))
	errs = append(errs, err)
	m.signals, err = meter.Int64Counter("jwtrevoke.revoker.provider.signals",
		metric.WithDescription("Logout signals from outside providers by provider, signal (backchannel_logout), outcome (accepted, refused, replay, unavailable) and reason (why it was refused)"),
		metric.WithUnit("{signal}"))
	errs = append(errs, err)
	_, err = meter.Int64ObservableGauge("jwtrevoke.revoker.outbox.depth",
		metric.WithDescription("Revocations recorded in Redis and not yet acknowledged by the stream, as last seen by this replica's drainer"),
		metric.WithUnit("{event}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(ob.depth.Load())
			return nil
		}))
	errs = append(errs, err)
	_, err = meter.Float64ObservableGauge("jwtrevoke.revoker.outbox.oldest_age",
		metric.WithDescription("Age of the oldest revocation waiting in the outbox; 0 when empty"),
		metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			age := 0.0
			if ms := ob.oldestMilli.Load(); ms != 0 {
				age = max(time.Since(time.UnixMilli(ms)).Seconds(), 0)
			}
			o.Observe(age)
			return nil
		}))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) revocation(ctx context.Context, typ, outcome string) {
	if typ == "" {
		typ = "unknown"
	}
	m.revocations.Add(ctx, 1, metric.WithAttributes(attribute.String("type", typ), attribute.String("outcome", outcome)))
}

func (m *metrics) published(ctx context.Context, d time.Duration, ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.publish.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("result", result)))
}

func (m *metrics) republished(ctx context.Context) { m.republishes.Add(ctx, 1) }

func (m *metrics) introspection(ctx context.Context, result string) {
	m.introspections.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}

func (m *metrics) signal(ctx context.Context, provider, signal, outcome, reason string) {
	m.signals.Add(ctx, 1, metric.WithAttributes(attribute.String("provider", provider), attribute.String("signal", signal),
		attribute.String("outcome", outcome), attribute.String("reason", reason)))
}
