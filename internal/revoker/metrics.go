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
	outcomeUnavailable = "unavailable" // 503, NATS or Redis down
	outcomeError       = "error"       // 500, a bug
)

// metrics holds the revoker's instruments. Safe for concurrent use.
type metrics struct {
	revocations    metric.Int64Counter
	publish        metric.Float64Histogram
	introspections metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
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

func (m *metrics) introspection(ctx context.Context, result string) {
	m.introspections.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}
